"""A keyed work queue for reconcile workers (threads).

Promises, each tested:

* dedup: a key waiting in the queue is queued once, however often it is added;
* exclusivity: a key handed to one worker is not handed to another until `done(key)`; a key
  added while it is being processed is processed again after `done`;
* per-key exponential backoff with a cap (`add_rate_limited`), which also honours a minimum delay
  (the Retry-After of a throttled Aiven call); `forget` resets it;
* `add_after(key, delay)` for wake-ups (next `expiresAt`, certificate renewal, periodic resync);
  the earliest pending wake-up of a key wins;
* `shutdown()`: no new work is accepted and blocked `get` calls return None; in-flight work can
  be awaited with `wait_inflight`.

Time comes from an injectable monotonic clock so tests drive delays without sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: Longest a blocked `get` sleeps before looking at the clock again (keeps fake clocks usable).
_MAX_WAIT = 0.5


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential per-key backoff: base * 2**failures, capped."""

    base: float = 0.5
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return self.base
        # Avoid float overflow for very many failures: the cap is reached long before 2**64.
        return min(self.cap, self.base * float(2 ** min(failures, 62)))


class WorkQueue(Generic[K]):
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff = Backoff(),
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._clock = clock
        self._backoff = backoff
        self._on_depth = on_depth
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutting_down = False

    # --- adding -----------------------------------------------------------------------------

    def add(self, key: K) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()
        self._report_depth()

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; an earlier pending wake-up wins."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            ready_at = self._clock() + delay
            current = self._waiting.get(key)
            if current is not None and current <= ready_at:
                return
            self._waiting[key] = ready_at
            heapq.heappush(self._heap, (ready_at, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: K, min_delay: float | None = None) -> float:
        """Requeue after a failure with backoff (at least `min_delay`); returns the delay used."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = self._backoff.delay(failures)
        if min_delay is not None:
            delay = max(delay, min_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset the backoff of `key` (after a success or a permanent outcome)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def cancel_wakeup(self, key: K) -> None:
        with self._cond:
            self._waiting.pop(key, None)

    # --- taking -----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """Block until a key is ready (or shutdown / `timeout` seconds of real time): None then."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due_locked()
                if self._queue:
                    return self._take_locked()
                wait = _MAX_WAIT
                if self._heap:
                    wait = max(0.0, min(wait, self._heap[0][0] - self._clock()))
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    wait = min(wait, remaining)
                self._cond.wait(wait)

    def try_get(self) -> K | None:
        """A ready key without blocking (synchronous step mode), or None."""
        with self._cond:
            if self._shutting_down:
                return None
            self._promote_due_locked()
            return self._take_locked() if self._queue else None

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()
            self._cond.notify_all()
            self._report_depth()

    def _take_locked(self) -> K:
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        self._report_depth()
        return key

    def _promote_due_locked(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) != ready_at:
                continue  # superseded by an earlier wake-up, or cancelled
            del self._waiting[key]
            self._add_locked(key)

    def _report_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queue))

    # --- state --------------------------------------------------------------------------------

    def wake(self) -> None:
        """Let blocked getters re-read the clock (tests call this after advancing a fake clock)."""
        with self._cond:
            self._cond.notify_all()

    def __len__(self) -> int:
        """Keys ready to be taken (not counting delayed ones or those in flight)."""
        with self._cond:
            self._promote_due_locked()
            return len(self._queue)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._processing)

    def delayed(self) -> dict[K, float]:
        """Pending wake-ups: key → seconds until ready."""
        with self._cond:
            now = self._clock()
            return {key: at - now for key, at in self._waiting.items()}

    def next_wakeup(self) -> float | None:
        """Seconds until the earliest pending wake-up, or None."""
        with self._cond:
            if not self._waiting:
                return None
            return min(self._waiting.values()) - self._clock()

    def is_idle(self) -> bool:
        """Nothing ready and nothing in flight (delayed wake-ups do not count)."""
        with self._cond:
            self._promote_due_locked()
            return not self._queue and not self._processing

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._promote_due_locked()
                if not self._queue and not self._processing:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, _MAX_WAIT))

    def shutdown(self) -> None:
        with self._cond:
            self._shutting_down = True
            self._queue.clear()
            self._dirty.clear()
            self._heap.clear()
            self._waiting.clear()
            self._cond.notify_all()

    def wait_inflight(self, timeout: float) -> bool:
        """After `shutdown`, wait until every key handed out was `done` (True) or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._processing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, _MAX_WAIT))
            return True
