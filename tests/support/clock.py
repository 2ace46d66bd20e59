"""The one fake clock of the test suite: a wall clock (timezone-aware datetime) and a monotonic
clock that move together, only when a test (or a fake sleep wired to it) advances them.

`sleep` records every requested pause in `sleeps` (for tests that assert on the back-off), and
`step` turns the clock into a stepping one: every `monotonic()` reading is `step` seconds after
the previous one (for timing wrappers that read the clock before and after a call). Readings,
advances and sleeps hold a lock, so threads sharing one clock see a consistent time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

DEFAULT_START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(
        self, start: datetime = DEFAULT_START, monotonic: float = 1000.0, *, step: float = 0.0
    ) -> None:
        self.wall = start.replace(microsecond=0)
        self.mono = monotonic
        self.step = step
        self.sleeps: list[float] = []
        self._lock = threading.RLock()

    def now(self) -> datetime:
        with self._lock:
            return self.wall

    def monotonic(self) -> float:
        with self._lock:
            self.advance(self.step)
            return self.mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward; a non-positive step leaves time where it is."""
        if seconds > 0:
            # At least a microsecond: a step below the float resolution of `mono` (the request
            # budget can ask for 1e-13 s) would otherwise leave time standing still and a
            # sleeper wired to `advance` spinning forever.
            seconds = max(seconds, 1e-6)
            with self._lock:
                self.wall += timedelta(seconds=seconds)
                self.mono += seconds

    def sleep(self, seconds: float) -> None:
        """A sleep in which the time passes at once (at least 1 ms, so a token bucket's tiny
        float remainder cannot make its caller spin); the requested pause is recorded."""
        with self._lock:
            self.sleeps.append(seconds)
            self.advance(max(seconds, 0.001))
