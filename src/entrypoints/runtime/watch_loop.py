"""Informer-like caches: list, then watch from the list's resourceVersion; relist on 410 Gone.

One `Informer` per resource (AivenApplications, managed Secrets, and the Secret references of
each workload kind). Each keeps a dict cache keyed by (namespace, name) and calls `on_change`
for every real change, so the operator can enqueue work. A relist diffs the fresh list against
the cache and reports additions, modifications (resourceVersion moved) and deletions that the
broken watch missed.

Two ways to drive an informer:

* `run(stop)` on a thread: list, watch with a server-side timeout, resume from the last
  resourceVersion (bookmarks included), relist on `WatchExpired`, back off on `WatchBroken`;
* `poll()` for the synchronous step mode: one watch round with timeout 0 (the in-memory cluster
  then returns every pending change and ends), relisting first if needed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Generic, Literal, Protocol, TypeVar

from aivenator.domain.kubernetes_port import (
    KubeError,
    KubeObject,
    ListResult,
    ObjectMeta,
    WatchBookmark,
    WatchBroken,
    WatchEvent,
    WatchExpired,
    WatchItem,
)
from returns.result import Failure, Result, Success

T = TypeVar("T")
Key = tuple[str, str]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]
#: (change, old object or None, new object; for DELETED the last state)


class Codec(Protocol[T]):
    """How an informer stores its objects: `pack` on the way in, `unpack` on every read.

    Each read gets a fresh object, so a caller may change what it got without touching the
    cache; a compact packed form keeps a large cache small (see `runtime/packing.py`)."""

    def pack(self, obj: T) -> object: ...

    def unpack(self, packed: object) -> T: ...


def object_key(obj: KubeObject) -> Key:
    """(namespace, name), interned: the same names key the caches, the ownership index, the
    certificate cache and the work queue, and each decoded object brings its own copies."""
    meta = ObjectMeta(obj)
    return (sys.intern(meta.namespace), sys.intern(meta.name))


def object_version(obj: KubeObject) -> str:
    return ObjectMeta(obj).resource_version


class Informer(Generic[T]):
    def __init__(
        self,
        name: str,
        lister: Callable[[], Result[ListResult[T], KubeError]],
        watcher: Callable[[str, float], Iterator[WatchItem[T]]],
        key: Callable[[T], Key],
        version: Callable[[T], str] | None = None,
        on_change: Callable[[ChangeType, T | None, T], None] | None = None,
        watch_timeout: float = 300.0,
        on_restart: Callable[[str, str], None] | None = None,
        #: (old object or None, new object or None) for every change of the cache itself, called
        #: under the cache lock, so an index kept from it always equals a function of the cache.
        on_store: Callable[[T | None, T | None], None] | None = None,
        #: How entries are stored (default: as they are).
        codec: Codec[T] | None = None,
        #: What the cache keeps of each object (listed, watched, written through), e.g. a Secret
        #: without its values; applied only to objects the cache takes, so the watch echo of our
        #: own write (skipped, see `remember`) is never transformed.
        transform: Callable[[T], T] | None = None,
    ) -> None:
        self.name = name
        self._lister = lister
        self._watcher = watcher
        self._key = key
        self._version = version
        self._on_change = on_change
        self._watch_timeout = watch_timeout
        self._on_restart = on_restart
        self._on_store = on_store
        self._codec = codec
        self._transform = transform
        self._lock = threading.Lock()
        #: Packed entries (the objects themselves without a codec).
        self._cache: dict[Key, object] = {}
        self._per_namespace: dict[str, int] = {}
        self._resource_version = ""
        self._need_list = True
        self._synced = threading.Event()
        self.last_error: KubeError | None = None
        #: Versions written through by `remember` whose watch event (the echo of our own write)
        #: has not arrived yet: key -> resourceVersion. An entry goes on the echo, on any newer
        #: event of the key, and on a relist; at most one per cached key.
        self._pending_echo: dict[Key, str] = {}

    def subscribe(self, on_change: Callable[[ChangeType, T | None, T], None]) -> None:
        """Who hears of changes (the operator subscribes to caches the composition root built)."""
        self._on_change = on_change

    # --- cache reads ----------------------------------------------------------------------

    def _kept(self, obj: T) -> T:
        return obj if self._transform is None else self._transform(obj)

    def _pack(self, obj: T) -> object:
        return obj if self._codec is None else self._codec.pack(obj)

    def _unpack(self, packed: object) -> T:
        if self._codec is None:
            return packed  # type: ignore[return-value]  # stored as given when there is no codec
        return self._codec.unpack(packed)

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._cache

    def get(self, key: Key) -> T | None:
        with self._lock:
            packed = self._cache.get(key)
        return None if packed is None else self._unpack(packed)

    def iterate(self, namespace: str | None = None) -> Iterator[T]:
        """Every cached object (or those of one namespace), unpacked one at a time as the caller
        goes: a pass over a large cache never holds it all decoded at once."""
        with self._lock:
            packed = [v for (ns, _), v in self._cache.items() if namespace is None or ns == namespace]
        for entry in packed:
            yield self._unpack(entry)

    def cached_keys(self) -> list[Key]:
        with self._lock:
            return list(self._cache)

    def count_in(self, namespace: str) -> int:
        with self._lock:
            return self._per_namespace.get(namespace, 0)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._per_namespace)

    def _counted_locked(self, key: Key, step: int) -> None:
        count = self._per_namespace.get(key[0], 0) + step
        if count > 0:
            self._per_namespace[key[0]] = count
        else:
            self._per_namespace.pop(key[0], None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list has landed or `timeout` passed; True once synced."""
        return self._synced.wait(timeout)

    @property
    def resource_version(self) -> str:
        return self._resource_version

    # --- updates --------------------------------------------------------------------------

    def relist(self) -> bool:
        """List and replace the cache, reporting what changed; False (cache kept) on error."""
        match self._lister():
            case Failure(error):
                self.last_error = error
                return False
            case Success(listed):
                pass
        fresh = {self._key(item): self._kept(item) for item in listed.items}
        version = listed.resource_version
        del listed  # the listed objects as they came (a Secret's values) go before packing
        packed = {key: self._pack(item) for key, item in fresh.items()}
        changes: list[tuple[ChangeType, T | None, T]] = []
        with self._lock:
            old = self._cache
            for key, item in fresh.items():
                stored = old.get(key)
                if stored is None:
                    changes.append(("ADDED", None, item))
                elif stored != packed[key] and self._changed(previous := self._unpack(stored), item):
                    changes.append(("MODIFIED", previous, item))
            for key, stored in old.items():
                if key not in fresh:
                    gone = self._unpack(stored)
                    changes.append(("DELETED", gone, gone))
            self._cache = packed
            self._pending_echo.clear()
            for change, before, after in changes:
                self._stored(before, None if change == "DELETED" else after)
            self._per_namespace = {}
            for key in fresh:
                self._counted_locked(key, 1)
            self._resource_version = version
            self._need_list = False
        self.last_error = None
        self._synced.set()
        self._emit(changes)
        return True

    def remember(self, obj: T) -> None:
        """Write-through after our own successful write, so the next pass does not decide from a
        stale object; the watch event for the same version later changes nothing, and is
        skipped before any transform or packing (`_is_echo`)."""
        obj = self._kept(obj)
        key = self._key(obj)
        version = self._version(obj) if self._version is not None else ""
        with self._lock:
            # Packed under the lock: zlib lets other threads run meanwhile, and the watch event
            # of this very write must find it stored (then it changes nothing), not race ahead
            # of it and report our own write as a change (one more pass of the app).
            packed = self._pack(obj)
            stored = self._cache.get(key)
            before = None if stored is None else self._unpack(stored)
            if before is not None and self._older(obj, before):
                return
            if before is None:
                self._counted_locked(key, 1)
            self._cache[key] = packed
            if version:
                self._pending_echo[key] = version
            self._stored(before, obj)

    def _is_echo(self, event: WatchEvent[T]) -> bool:
        """Whether `event` brings the very version `remember` stored (a resourceVersion names one
        state of one object): the cache already holds it, so the event changes nothing. Any
        other event of the key ends the wait for the echo, unless it is older than what we wrote
        (the echo of an earlier write of ours, which `_apply` then ignores as older)."""
        if self._version is None:
            return False
        key = self._key(event.obj)
        with self._lock:
            pending = self._pending_echo.get(key)
            if pending is None:
                return False
            if event.type != "DELETED":
                version = self._version(event.obj)
                if version == pending:
                    del self._pending_echo[key]
                    if event.resource_version:
                        self._resource_version = event.resource_version
                    return True
                if _older_version(version, pending):
                    return False
            del self._pending_echo[key]
            return False

    def _stored(self, before: T | None, after: T | None) -> None:
        if self._on_store is not None:
            self._on_store(before, after)

    def _older(self, candidate: T, current: T) -> bool:
        """Whether `candidate` is an older version than `current` (numeric resourceVersions)."""
        if self._version is None:
            return False
        return _older_version(self._version(candidate), self._version(current))

    def _changed(self, before: T, after: T) -> bool:
        if self._version is None:
            return bool(before != after)
        return self._version(before) != self._version(after) or self._version(after) == ""

    def _apply(self, event: WatchEvent[T]) -> tuple[ChangeType, T | None, T] | None:
        if self._is_echo(event):
            return None
        if self._transform is not None:
            event = WatchEvent(event.type, self._transform(event.obj), event.resource_version)
        key = self._key(event.obj)
        packed = None if event.type == "DELETED" else self._pack(event.obj)
        with self._lock:
            stored = self._cache.get(key)
            before = None if stored is None else self._unpack(stored)
            if event.resource_version:
                self._resource_version = event.resource_version
            if event.type != "DELETED" and before is not None and self._older(event.obj, before):
                return None  # we already hold a newer version (written through by ourselves)
            if event.type == "DELETED":
                if before is None:
                    return None
                del self._cache[key]
                self._counted_locked(key, -1)
                self._stored(before, None)
                return ("DELETED", before, event.obj)
            if before is None:
                self._counted_locked(key, 1)
            self._cache[key] = packed
            self._stored(before, event.obj)
        if before is None:
            return ("ADDED", None, event.obj)
        if not self._changed(before, event.obj):
            return None
        return ("MODIFIED", before, event.obj)

    def watch_round(
        self, timeout: float, stop: threading.Event | None = None
    ) -> Literal["ok", "expired", "broken"]:
        """Consume one watch (until its timeout); relists are left to the caller."""
        for item in self._watcher(self._resource_version, timeout):
            match item:
                case WatchEvent():
                    change = self._apply(item)
                    if change is not None:
                        self._emit([change])
                case WatchBookmark(resource_version=rv):
                    if rv:
                        self._resource_version = rv
                case WatchExpired():
                    self._need_list = True
                    self._restarted("expired")
                    return "expired"
                case WatchBroken(error=error):
                    self.last_error = error
                    self._restarted("broken")
                    return "broken"
            if stop is not None and stop.is_set():
                return "ok"
        return "ok"

    def poll(self) -> None:
        """Synchronous mode: relist if needed, then take every pending change (timeout 0)."""
        if self._need_list and not self.relist():
            return
        if self.watch_round(0.0) == "expired":
            self.relist()

    def run(self, stop: threading.Event, backoff: float = 1.0, max_backoff: float = 30.0) -> None:
        delay = backoff
        while not stop.is_set():
            if self._need_list:
                if not self.relist():
                    stop.wait(delay)
                    delay = min(max_backoff, delay * 2)
                    continue
                delay = backoff
            outcome = self.watch_round(self._watch_timeout, stop)
            if outcome == "broken":
                stop.wait(delay)
                delay = min(max_backoff, delay * 2)
            elif outcome == "ok":
                delay = backoff

    def _restarted(self, reason: str) -> None:
        if self._on_restart is not None:
            self._on_restart(self.name, reason)

    def _emit(self, changes: list[tuple[ChangeType, T | None, T]]) -> None:
        if self._on_change is None:
            return
        for change, old, new in changes:
            self._on_change(change, old, new)


def _older_version(a: str, b: str) -> bool:
    """Whether resourceVersion `a` is older than `b` (only numeric versions compare)."""
    return a.isdigit() and b.isdigit() and int(a) < int(b)
