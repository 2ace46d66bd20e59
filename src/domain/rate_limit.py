"""The adaptive Aiven request rate: a token bucket whose rate is found by AIMD.

Aiven's rate limit is not published and differs per account, so no fixed rate is right. The rate
starts at the configured ceiling (`--aiven-requests-per-second`) and:

* grows additively while requests succeed: each answered request adds `step / rate`, so the
  rate climbs by about `step` requests/s per second of sending at that rate, where `step` is
  `increase` but at most `probe` x rate (near a low limit a fixed 0.5/s per second would be
  10 %/s and overshoot it every few seconds), and only `settle` x rate while the rate is within
  `band` x the trusted server rate (below). A server's bucket holds about a second's worth of
  requests, so the first 429 comes only once the overshoot has drained it: about sqrt(2 /
  growth) seconds above the limit whatever the limit is (10 s at 2 %/s, 20 s at 0.5 %/s). Each
  such cycle costs one 429, which at a limit of a few requests/s is one per few dozen requests;
* shrinks multiplicatively on a 429, at most once per congestion episode: 429s that arrive
  within `hold` seconds of the last decrease answer requests sent before it and do not shrink it
  again. The cut is `decrease`, or `repeat_decrease` when the episode begins within
  `repeat_window` seconds of the previous decrease (the last cut was not enough, typically
  right after starting at a ceiling far above the limit); with a trusted server rate it goes
  further, down to `margin` x that rate, but never below `deep` x the rate in one episode;
* never exceeds the ceiling nor drops below `floor`;
* honours every Retry-After: nothing is granted before the latest pause ends (a pause is never
  shortened), and then one request goes at once and the rest at the rate (no burst of every
  worker that waited). A fresh limiter likewise holds one token, not its burst: workers
  starting together at a ceiling far above the limit would all be in flight when the server's
  bucket runs out, and each would be answered 429 (one to three more 429s at 5/s).

The server rate is measured from one decrease to the next: what was answered (not 429) divided
by the time between them. A 429 means the server's bucket was empty, so what it answered from
one 429 to the next is what it refilled in between, i.e. its rate (half a request is added: at
the second 429 the bucket held between 0 and 1). Answers arriving during the pause were admitted
before the 429 and are not counted, and the measurement is void when the client's own bucket
overflowed meanwhile (an idle client measures its own demand). It can still be low, never high:
when the server's bucket cannot hold what it refills during a Retry-After pause, the excess is
lost. That is visible only when the client sent for a while: right after a pause, what the
server answered at once is what its bucket held, which at 5/s with a bucket of 5 looks the same
as at 50/s with a bucket of 5. So a measurement is trusted when the client sent for longer than
it paused, or when the previous measurement, taken at another rate (a different share of
sending), agrees within `agree` and both counted at least `evidence` answers. From a ceiling of
100/s against a limit of 5/s, the rate halves on the first repeat (75 -> 37.5/s) and is cut to
0.9 x the measured 5/s on the second: three 429s instead of the five halvings take.

The client's bucket holds at most `burst_seconds` x the current rate (at least one token, at
most `burst`): after an idle spell a client that has found a limit of 5/s must not send the
20 requests the configured burst allows in one go into a server bucket of about 5.

With no ceiling (`ceiling=None`) nothing is limited and only Retry-After pauses apply.

A pure value: every function takes the current time (seconds on any monotonic clock) and returns
a new value; the adapter keeps one behind a lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class AimdTuning:
    """How the rate moves (see the module docstring); the defaults are the operator's."""

    floor: float = 0.5  # requests/s the rate never drops below
    increase: float = 0.5  # requests/s gained per second of successful sending, at most...
    probe: float = 0.02  # ...this fraction of the rate per second
    settle: float = 0.005  # ...or this fraction within `band` x the trusted server rate
    band: float = 1.15
    decrease: float = 0.75  # factor applied on a 429 (at least this much cut)...
    repeat_decrease: float = 0.5  # ...or this when the previous decrease was under `repeat_window` ago
    repeat_window: float = 5.0
    margin: float = 0.9  # a 429 cuts down to this fraction of the trusted server rate...
    deep: float = 0.1  # ...but never below this fraction of the rate in one episode
    agree: float = 0.25  # two measurements within this fraction of each other confirm the second...
    evidence: int = 2  # ...when it counts at least this many answers
    hold: float = 1.0  # seconds after a decrease during which 429s do not decrease again
    burst_seconds: float = 1.0  # the bucket holds at most this many seconds of the current rate

    def __post_init__(self) -> None:
        if not 0 < self.decrease < 1 or not 0 < self.repeat_decrease < 1:
            raise ValueError("decrease and repeat_decrease must be between 0 and 1")
        if not 0 < self.deep <= min(self.decrease, self.repeat_decrease) or not 0 < self.margin <= 1:
            raise ValueError("deep must be in (0, the smaller decrease] and margin in (0, 1]")
        if self.floor <= 0 or self.burst_seconds <= 0 or self.band < 1 or self.evidence < 1:
            raise ValueError("floor and burst_seconds must be positive, band and evidence at least 1")
        if min(self.increase, self.probe, self.settle, self.hold, self.repeat_window, self.agree) < 0:
            raise ValueError("increase, probe, settle, hold, repeat_window and agree must not be negative")


DEFAULT_TUNING = AimdTuning()


@dataclass(frozen=True, slots=True)
class AimdRate:
    ceiling: float | None  # requests/s; None: unlimited (pauses only)
    burst: int = 20
    tuning: AimdTuning = DEFAULT_TUNING
    rate: float | None = None  # the current rate; None until first used (then the ceiling)
    tokens: float = 0.0
    updated: float | None = None  # when tokens were last refilled
    paused_until: float = -math.inf
    decreased_at: float = -math.inf
    answered: int = 0  # requests answered (not 429) since the last decrease, after its pause
    unused: float = 0.0  # refill the bucket could not hold since the last decrease (idle client)
    measured: float | None = None  # the server rate measured at the last decrease, if any...
    trusted: float | None = None  # ...if it was trusted

    def __post_init__(self) -> None:
        if self.ceiling is not None and self.ceiling <= 0:
            raise ValueError("ceiling must be positive (or None for unlimited)")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")

    @property
    def floor(self) -> float:
        """The lowest rate (the tuning's floor, but never above the ceiling)."""
        return self.tuning.floor if self.ceiling is None else min(self.tuning.floor, self.ceiling)

    @property
    def current(self) -> float | None:
        """The rate in force now (requests/s), None when unlimited."""
        if self.ceiling is None:
            return None
        return self.ceiling if self.rate is None else self.rate

    @property
    def capacity(self) -> float:
        """Tokens the bucket holds at most at the current rate."""
        rate = self.current
        if rate is None:
            return float(self.burst)
        return max(1.0, min(float(self.burst), rate * self.tuning.burst_seconds))


def start(ceiling: float | None, burst: int = 20, tuning: AimdTuning = DEFAULT_TUNING) -> AimdRate:
    """A fresh limiter at the ceiling holding one token (see the module docstring)."""
    return AimdRate(ceiling=ceiling, burst=burst, tuning=tuning, rate=ceiling, tokens=1.0)


def acquire(limiter: AimdRate, now: float) -> tuple[AimdRate, float]:
    """Take one token: (new value, 0.0); or take nothing: (new value, seconds to wait first)."""
    if now < limiter.paused_until:
        return limiter, limiter.paused_until - now
    rate = limiter.current
    if rate is None:
        return limiter, 0.0
    tokens, unused = _refilled(limiter, rate, now)
    limiter = replace(limiter, tokens=tokens, updated=now, unused=limiter.unused + unused)
    # A remainder far below any clock's resolution counts as a whole token: otherwise a caller
    # adding the wait to its clock could find time not moving at all.
    if tokens >= 1.0 - _EPSILON:
        return replace(limiter, tokens=max(0.0, tokens - 1.0)), 0.0
    return limiter, (1.0 - tokens) / rate


def on_success(limiter: AimdRate, now: float) -> AimdRate:
    """An answered request that was not throttled: counted for the next measurement (unless it
    arrives during a pause: it was sent before the 429) and additive increase (at most `probe`
    x rate per second, `settle` x rate near the measured server rate), capped at the ceiling."""
    if now >= limiter.paused_until:
        limiter = replace(limiter, answered=limiter.answered + 1)
    rate = limiter.current
    if rate is None or limiter.ceiling is None or rate >= limiter.ceiling:
        return limiter
    near = limiter.trusted is not None and limiter.trusted <= rate < limiter.tuning.band * limiter.trusted
    step = min(limiter.tuning.increase, (limiter.tuning.settle if near else limiter.tuning.probe) * rate)
    return replace(limiter, rate=min(limiter.ceiling, rate + step / rate))


def measured_rate(limiter: AimdRate, now: float) -> float | None:
    """Requests/s the server answered since the last decrease, when that measures the server:
    there was a decrease (its 429 left the server's bucket empty), time has passed, and the
    client kept asking (its own bucket overflowed by less than a tenth of what was answered)."""
    elapsed = now - limiter.decreased_at
    if not math.isfinite(elapsed) or elapsed <= 0 or limiter.answered == 0:
        return None
    if limiter.unused > 1.0 + 0.1 * limiter.answered:
        return None
    return (limiter.answered + 0.5) / elapsed


def on_throttle(limiter: AimdRate, now: float, retry_after: float) -> AimdRate:
    """A 429: pause until `now + retry_after` (never shortening a longer pause) and, once per
    episode, decrease the rate multiplicatively (harder when the previous decrease was recent,
    down to `margin` x the measured server rate when that is lower, never below `deep` x rate)
    and empty the bucket."""
    paused = max(limiter.paused_until, now + max(0.0, retry_after))
    rate = limiter.current
    if rate is None or now < limiter.decreased_at + limiter.tuning.hold:
        return replace(limiter, paused_until=paused)
    repeated = now < limiter.decreased_at + limiter.tuning.repeat_window
    cut = rate * (limiter.tuning.repeat_decrease if repeated else limiter.tuning.decrease)
    measured = measured_rate(limiter, now)
    estimate = measured if measured is not None and _trusted(limiter, now, measured) else None
    if estimate is not None:
        cut = min(cut, max(rate * limiter.tuning.deep, estimate * limiter.tuning.margin))
    return replace(
        limiter,
        paused_until=paused,
        rate=max(limiter.floor, cut),
        tokens=1.0,
        updated=paused,
        decreased_at=now,
        answered=0,
        unused=0.0,
        measured=measured,
        trusted=estimate,
    )


def _trusted(limiter: AimdRate, now: float, measured: float) -> bool:
    """Whether a measurement is the server's rate rather than what its bucket held after the
    last pause: the client sent for longer than it paused, or the previous measurement agreed
    (within `agree`), taken at another rate."""
    pause = limiter.paused_until - limiter.decreased_at
    if now - limiter.paused_until >= pause:
        return True
    previous = limiter.measured
    return (
        limiter.answered >= limiter.tuning.evidence
        and previous is not None
        and abs(measured / previous - 1.0) <= limiter.tuning.agree
    )


def pause(limiter: AimdRate, until: float) -> AimdRate:
    """Send nothing before `until`; never shortens a longer pause; the rate is unchanged."""
    return replace(limiter, paused_until=max(limiter.paused_until, until))


def _refilled(limiter: AimdRate, rate: float, now: float) -> tuple[float, float]:
    """(tokens now, refill the bucket could not hold)."""
    if limiter.updated is None:
        return min(limiter.tokens, limiter.capacity), 0.0
    elapsed = max(0.0, now - limiter.updated)
    full = limiter.tokens + elapsed * rate
    capacity = limiter.capacity
    return min(capacity, full), max(0.0, full - max(capacity, limiter.tokens))
