"""The adaptive Aiven request rate: a token bucket whose rate is found by AIMD.

Aiven's rate limit is not published and differs per account, so no fixed rate is right. The rate
starts at the configured ceiling (`--aiven-requests-per-second`) and:

* grows additively while requests succeed: each answered request adds `step / rate`, so the
  rate climbs by about `step` requests/s per second of sending at that rate, where `step` is
  `increase` but at most `probe` x rate: near a low server limit (a few requests/s) a fixed
  0.5/s per second would be 10 %/s and overshoot the limit every few seconds, each overshoot
  costing a 429 and a whole-second pause;
* shrinks multiplicatively on a 429, at most once per congestion episode: 429s that arrive
  within `hold` seconds of the last decrease answer requests sent before it and do not shrink it
  again. The factor is `decrease`, or `repeat_decrease` when the episode begins within
  `repeat_window` seconds of the previous decrease: the last cut was not enough (typically
  right after starting at a ceiling far above the server's limit), so the rate halves instead
  of taking many small steps down, each of which costs a 429 and a pause;
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
    increase: float = 0.5  # requests/s gained per second of successful sending, at most...
    probe: float = 0.02  # ...this fraction of the rate per second
    decrease: float = 0.75  # factor applied on a 429
    repeat_decrease: float = 0.5  # factor when the previous decrease was under `repeat_window` ago
    repeat_window: float = 5.0
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
        if not 0 < self.decrease < 1 or not 0 < self.repeat_decrease < 1:
            raise ValueError("decrease and repeat_decrease must be between 0 and 1")
        if self.floor <= 0 or self.increase < 0 or self.probe < 0 or self.hold < 0 or self.repeat_window < 0:
            raise ValueError("floor must be positive; increase, probe, hold and repeat_window not negative")

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
    probe: float = 0.02,
    decrease: float = 0.75,
    repeat_decrease: float = 0.5,
    repeat_window: float = 5.0,
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
        probe=probe,
        decrease=decrease,
        repeat_decrease=repeat_decrease,
        repeat_window=repeat_window,
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
    """An answered request that was not throttled: additive increase (at most `probe` x rate
    per second), capped at the ceiling."""
    rate = limiter.current
    if rate is None or limiter.ceiling is None or rate >= limiter.ceiling:
        return limiter
    step = min(limiter.increase, limiter.probe * rate)
    return replace(limiter, rate=min(limiter.ceiling, rate + step / rate))


def on_throttle(limiter: AimdRate, now: float, retry_after: float) -> AimdRate:
    """A 429: pause until `now + retry_after` (never shortening a longer pause) and, once per
    episode, decrease the rate multiplicatively (harder when the previous decrease was recent)
    and empty the bucket."""
    paused = max(limiter.paused_until, now + max(0.0, retry_after))
    rate = limiter.current
    if rate is None or now < limiter.decreased_at + limiter.hold:
        return replace(limiter, paused_until=paused)
    repeated = now < limiter.decreased_at + limiter.repeat_window
    factor = limiter.repeat_decrease if repeated else limiter.decrease
    return replace(
        limiter,
        paused_until=paused,
        rate=max(limiter.floor, rate * factor),
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
