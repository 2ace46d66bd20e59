"""The adaptive Aiven request rate: a token bucket whose rate is found by AIMD.

Aiven's rate limit is not published and differs per account, so no fixed rate is right. The rate
starts at the configured ceiling (`--aiven-requests-per-second`) and:

* grows additively while requests succeed: each answered request adds `increase / rate`, so the
  rate climbs by about `increase` requests/s per second of sending at that rate;
* shrinks multiplicatively (x `decrease`) on a 429, at most once per congestion episode: 429s
  that arrive within `hold` seconds of the last decrease answer requests sent before it and do
  not shrink it again;
* never exceeds the ceiling nor drops below `floor`;
* honours every Retry-After: nothing is granted before the latest pause ends (a pause is never
  shortened).

With no ceiling (`ceiling=None`) nothing is limited and only Retry-After pauses apply.

A pure value: every function takes the current time (seconds on any monotonic clock) and returns
a new value; the adapter keeps one behind a lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class AimdRate:
    ceiling: float | None  # requests/s; None: unlimited (pauses only)
    burst: int = 20
    floor: float = 0.5
    increase: float = 0.5  # requests/s gained per second of successful sending
    decrease: float = 0.75  # factor applied on a 429
    hold: float = 1.0  # seconds after a decrease during which 429s do not decrease again
    rate: float | None = None  # the current rate; None until first used (then the ceiling)
    tokens: float = 0.0
    updated: float | None = None  # when tokens were last refilled
    paused_until: float = -math.inf
    decreased_at: float = -math.inf

    def __post_init__(self) -> None:
        if self.ceiling is not None and self.ceiling <= 0:
            raise ValueError("ceiling must be positive (or None for unlimited)")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")
        if not 0 < self.decrease < 1:
            raise ValueError("decrease must be between 0 and 1")
        if self.floor <= 0 or self.increase < 0 or self.hold < 0:
            raise ValueError("floor must be positive; increase and hold not negative")

    @property
    def current(self) -> float | None:
        """The rate in force now (requests/s), None when unlimited."""
        if self.ceiling is None:
            return None
        return self.ceiling if self.rate is None else self.rate


def start(
    ceiling: float | None,
    burst: int = 20,
    *,
    floor: float = 0.5,
    increase: float = 0.5,
    decrease: float = 0.75,
    hold: float = 1.0,
) -> AimdRate:
    """A fresh limiter at the ceiling with a full bucket (a floor above the ceiling is lowered)."""
    if ceiling is not None and ceiling > 0:
        floor = min(floor, ceiling)
    return AimdRate(
        ceiling=ceiling,
        burst=burst,
        floor=floor,
        increase=increase,
        decrease=decrease,
        hold=hold,
        rate=ceiling,
        tokens=float(burst),
    )


def acquire(limiter: AimdRate, now: float) -> tuple[AimdRate, float]:
    """Take one token: (new value, 0.0); or take nothing: (new value, seconds to wait first)."""
    if now < limiter.paused_until:
        return limiter, limiter.paused_until - now
    rate = limiter.current
    if rate is None:
        return limiter, 0.0
    tokens = _refilled(limiter, rate, now)
    # A remainder far below any clock's resolution counts as a whole token: otherwise a caller
    # adding the wait to its clock could find time not moving at all.
    if tokens >= 1.0 - _EPSILON:
        return replace(limiter, tokens=max(0.0, tokens - 1.0), updated=now), 0.0
    return replace(limiter, tokens=tokens, updated=now), (1.0 - tokens) / rate


def on_success(limiter: AimdRate, now: float) -> AimdRate:
    """An answered request that was not throttled: additive increase, capped at the ceiling."""
    rate = limiter.current
    if rate is None or limiter.ceiling is None or rate >= limiter.ceiling:
        return limiter
    return replace(limiter, rate=min(limiter.ceiling, rate + limiter.increase / rate))


def on_throttle(limiter: AimdRate, now: float, retry_after: float) -> AimdRate:
    """A 429: pause until `now + retry_after` (never shortening a longer pause) and, once per
    episode, decrease the rate multiplicatively and empty the bucket."""
    paused = max(limiter.paused_until, now + max(0.0, retry_after))
    rate = limiter.current
    if rate is None or now < limiter.decreased_at + limiter.hold:
        return replace(limiter, paused_until=paused)
    return replace(
        limiter,
        paused_until=paused,
        rate=max(limiter.floor, rate * limiter.decrease),
        tokens=0.0,
        updated=paused,
        decreased_at=now,
    )


def pause(limiter: AimdRate, until: float) -> AimdRate:
    """Send nothing before `until`; never shortens a longer pause; the rate is unchanged."""
    return replace(limiter, paused_until=max(limiter.paused_until, until))


def _refilled(limiter: AimdRate, rate: float, now: float) -> float:
    if limiter.updated is None:
        return limiter.tokens
    elapsed = max(0.0, now - limiter.updated)
    return min(float(limiter.burst), limiter.tokens + elapsed * rate)
