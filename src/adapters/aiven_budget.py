"""Client-side request budget for the Aiven API: one adaptive token bucket shared by every worker
thread (the arithmetic and every decision are `aivenator.domain.rate_limit`; this holds it behind
a lock).

The bucket never sleeps itself; callers pass the current time and get back how long they would
have to wait, so the caller decides whether the wait fits its own deadline (and can answer
`Throttled` instead of blocking a worker). A 429 from the server pauses the whole bucket until its
Retry-After has elapsed (global back-pressure: no worker sends during that window) and lowers the
rate multiplicatively, to just below the rate the server was measured to answer when that
measurement can be trusted; answered requests raise it additively, never above the configured
rate, which is the ceiling.
"""

from __future__ import annotations

import threading

from aivenator.domain import rate_limit
from aivenator.domain.rate_limit import DEFAULT_TUNING, AimdRate, AimdTuning


class RequestBudget:
    """Thread-safe adaptive token bucket: at most `rate` (the ceiling) tokens per second, at most
    `burst` stored. `rate=None` means no client-side limit; pauses from server throttling still
    apply. Times are seconds on any monotonic clock, supplied by the caller (`now`)."""

    def __init__(
        self,
        rate: float | None = 10.0,
        burst: int = 20,
        tuning: AimdTuning = DEFAULT_TUNING,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for unlimited)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._state = rate_limit.start(rate, burst, tuning)
        self._lock = threading.Lock()

    @classmethod
    def unlimited(cls) -> RequestBudget:
        return cls(rate=None, burst=1)

    def try_acquire(self, now: float) -> float:
        """Take one token and return 0.0, or take nothing and return the seconds to wait first."""
        with self._lock:
            self._state, wait = rate_limit.acquire(self._state, now)
            return wait

    def succeeded(self, now: float) -> None:
        """A request was answered without throttling: the rate may grow."""
        with self._lock:
            self._state = rate_limit.on_success(self._state, now)

    def throttled(self, now: float, retry_after: float) -> None:
        """The server answered 429: pause for Retry-After and lower the rate (once per episode)."""
        with self._lock:
            self._state = rate_limit.on_throttle(self._state, now, retry_after)

    def pause_until(self, until: float) -> None:
        """Send nothing before `until`. Never shortens a longer pause."""
        with self._lock:
            self._state = rate_limit.pause(self._state, until)

    def paused_until(self) -> float:
        with self._lock:
            return self._state.paused_until

    def current_rate(self) -> float | None:
        """The rate in force now (requests/s), None when unlimited."""
        with self._lock:
            return self._state.current

    def state(self) -> AimdRate:
        with self._lock:
            return self._state
