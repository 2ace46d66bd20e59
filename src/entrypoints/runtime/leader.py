"""Lease-based leader election over the Kubernetes port's `Leases` role.

Semantics follow the usual Kubernetes pattern:

* a replica takes the Lease when it does not exist, has no holder, or its record has not changed
  for `lease_duration` as observed *locally* (monotonic time, so clock skew between replicas
  cannot make a live leader look expired);
* every write is guarded by the Lease's resourceVersion: a replica that loses the race gets a
  conflict and simply tries again next round;
* the leader renews every `retry_period`; if it has not renewed successfully for `renew_deadline`
  it stops leading at once, before anyone else may take over (renew_deadline < lease_duration);
* `is_leader()` is cheap and checked before every mutation, and it also checks the deadline
  itself, so a replica whose renew loop is stuck stops mutating without waiting for the loop;
* on shutdown the leader releases the Lease (empty holder) so a standby takes over quickly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from aivenator.domain.kubernetes_port import KubeAlreadyExists, KubeNotFound, Lease, Leases
from returns.result import Failure, Success


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    def __init__(
        self,
        leases: Leases,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        now: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        self._leases = leases
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._now = now
        self._mono = monotonic
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._lock = threading.Lock()
        self._leading = False
        self._last_renew = float("-inf")
        self._observed: tuple[str | None, datetime | None, str] | None = None
        self._observed_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_callbacks(
        self, on_started_leading: Callable[[], None] | None, on_stopped_leading: Callable[[], None] | None
    ) -> None:
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading

    # --- queries --------------------------------------------------------------------------

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and self._mono() - self._last_renew < self.renew_deadline

    # --- one round ------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One election round; returns whether this replica leads afterwards."""
        now = self._now()
        got = self._leases.get_lease(self.namespace, self.name)
        match got:
            case Failure(KubeNotFound()):
                fresh = Lease(
                    namespace=self.namespace,
                    name=self.name,
                    holder_identity=self.identity,
                    lease_duration_seconds=max(1, round(self.lease_duration)),
                    acquire_time=now,
                    renew_time=now,
                    lease_transitions=0,
                )
                match self._leases.create_lease(fresh):
                    case Success(created):
                        return self._became(created)
                    case Failure(KubeAlreadyExists()):
                        return self._failed_round()
                    case _:
                        return self._failed_round()
            case Failure(_):
                return self._failed_round()
            case Success(lease):
                pass
        self._observe(lease)
        if lease.holder_identity == self.identity:
            renewed = replace(
                lease,
                renew_time=now,
                lease_duration_seconds=max(1, round(self.lease_duration)),
            )
            match self._leases.update_lease(renewed):
                case Success(updated):
                    return self._became(updated)
                case _:
                    return self._failed_round()
        if lease.holder_identity and not self._observed_expired():
            return self._lost()
        taken = replace(
            lease,
            holder_identity=self.identity,
            lease_duration_seconds=max(1, round(self.lease_duration)),
            acquire_time=now,
            renew_time=now,
            lease_transitions=lease.lease_transitions + 1,
        )
        match self._leases.update_lease(taken):
            case Success(updated):
                return self._became(updated)
            case _:
                return self._failed_round()

    def release(self) -> bool:
        """Give the Lease up if we hold it (holder cleared); True when released."""
        with self._lock:
            was_leading = self._leading
        if not was_leading:
            return False
        match self._leases.get_lease(self.namespace, self.name):
            case Success(lease) if lease.holder_identity == self.identity:
                cleared = replace(
                    lease, holder_identity=None, lease_duration_seconds=1, renew_time=self._now()
                )
                released = isinstance(self._leases.update_lease(cleared), Success)
            case _:
                released = False
        self._set_leading(False)
        return released

    # --- loop -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.retry_period * 2))
            self._thread = None
        if release:
            self.release()
        else:
            self._set_leading(False)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:  # a bug in one round must not end elections for good
                self._failed_round()
            self._stop.wait(self.retry_period)

    # --- bookkeeping ----------------------------------------------------------------------

    def _observe(self, lease: Lease) -> None:
        record = (lease.holder_identity, lease.renew_time, lease.resource_version)
        with self._lock:
            if record != self._observed:
                self._observed = record
                self._observed_at = self._mono()

    def _observed_expired(self) -> bool:
        with self._lock:
            return self._mono() - self._observed_at > self.lease_duration

    def _became(self, lease: Lease) -> bool:
        with self._lock:
            # Our term lapsed (no renewal within the deadline, so `is_leader()` said no and work
            # was dropped) even though nobody took the Lease: this renewal starts a new term, and
            # the callbacks must say so, or the dropped work is never enqueued again.
            lapsed = self._leading and self._mono() - self._last_renew >= self.renew_deadline
            self._last_renew = self._mono()
        self._observe(lease)
        if lapsed:
            self._set_leading(False)
        self._set_leading(True)
        return True

    def _failed_round(self) -> bool:
        """A round that could not write: keep leading only while within the renew deadline."""
        if not self.is_leader():
            self._set_leading(False)
            return False
        return True

    def _lost(self) -> bool:
        self._set_leading(False)
        return False

    def _set_leading(self, leading: bool) -> None:
        with self._lock:
            changed = leading != self._leading
            self._leading = leading
        if changed:
            callback = self._on_started if leading else self._on_stopped
            if callback is not None:
                callback()
