"""A small TTL cache with single-flight loading, for slow-changing Aiven facts (project CA,
service facts).

Only successes are stored; a failure is handed to every caller that waited on that same flight
and then forgotten, so the next call tries again. Entries are invalidated explicitly when a
later call suggests they went stale (a user call answering NotFound or Unavailable).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from returns.result import Result, Success

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
E = TypeVar("E")


@dataclass
class _Flight(Generic[V, E]):
    done: threading.Event = field(default_factory=threading.Event)
    result: Result[V, E] | None = None


class SingleFlightCache(Generic[K, V, E]):
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[K, tuple[float, V]] = {}
        self._flights: dict[K, _Flight[V, E]] = {}
        self._generation: dict[K, int] = {}

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._fresh(key)

    def get_or_load(
        self,
        key: K,
        load: Callable[[], Result[V, E]],
        ttl: Callable[[V], float],
        wait_timeout: float | None = None,
        on_timeout: Callable[[], Result[V, E]] | None = None,
    ) -> Result[V, E]:
        """Cached value, or the result of one `load()` shared by all concurrent callers of `key`."""
        with self._lock:
            cached = self._fresh(key)
            if cached is not None:
                return Success(cached)
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = _Flight()
                self._flights[key] = flight
            generation = self._generation.get(key, 0)
        if not leader:
            if not flight.done.wait(wait_timeout) or flight.result is None:
                return on_timeout() if on_timeout is not None else load()
            return flight.result
        result: Result[V, E] | None = None
        try:
            result = load()
            return result
        finally:
            with self._lock:
                if (
                    isinstance(result, Success)
                    # An invalidation during the flight means the answer may already be stale.
                    and self._generation.get(key, 0) == generation
                ):
                    value = result.unwrap()
                    self._values[key] = (self._clock() + ttl(value), value)
                self._flights.pop(key, None)
            flight.result = result
            flight.done.set()

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1

    def update(self, key: K, change: Callable[[V], V]) -> None:
        """Apply `change` to a fresh cached value in place (keeping its expiry); no-op if absent."""
        with self._lock:
            entry = self._values.get(key)
            if entry is None or entry[0] <= self._clock():
                return
            self._values[key] = (entry[0], change(entry[1]))

    def clear(self) -> None:
        with self._lock:
            for key in list(self._values):
                self._generation[key] = self._generation.get(key, 0) + 1
            self._values.clear()

    def _fresh(self, key: K) -> V | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._values[key]
            return None
        return value
