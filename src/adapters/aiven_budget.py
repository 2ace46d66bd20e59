"""Client-side request budget for the Aiven API: one token bucket shared by every worker thread.

The bucket never sleeps itself; callers pass the current time and get back how long they would
have to wait, so the caller decides whether the wait fits its own deadline (and can answer
`Throttled` instead of blocking a worker). A 429 from the server pauses the whole bucket until its
Retry-After has elapsed: global back-pressure, so no worker sends during that window.
"""

from __future__ import annotations

import math
import threading


class RequestBudget:
    """Thread-safe token bucket: `rate` tokens per second, at most `burst` stored.

    `rate=None` means no client-side limit; pauses from server throttling still apply.
    Times are seconds on any monotonic clock, supplied by the caller (`now`).
    """

    def __init__(self, rate: float | None = 10.0, burst: int = 20) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for unlimited)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated: float | None = None
        self._paused_until = -math.inf
        self._lock = threading.Lock()

    @classmethod
    def unlimited(cls) -> RequestBudget:
        return cls(rate=None, burst=1)

    def try_acquire(self, now: float) -> float:
        """Take one token and return 0.0, or take nothing and return the seconds to wait first."""
        with self._lock:
            if now < self._paused_until:
                return self._paused_until - now
            if self.rate is None:
                return 0.0
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def pause_until(self, until: float) -> None:
        """Send nothing before `until` (server said Retry-After). Never shortens a longer pause."""
        with self._lock:
            if until > self._paused_until:
                self._paused_until = until

    def paused_until(self) -> float:
        with self._lock:
            return self._paused_until

    def _refill(self, now: float) -> None:
        assert self.rate is not None
        if self._updated is None:
            self._updated = now
            return
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now
