"""Leader election over Leases: one leader, takeover after expiry, conflicts, release, deadline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aivenator.domain.kubernetes_port import (
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
    Lease,
)
from aivenator.entrypoints.runtime.leader import LeaderElector
from returns.result import Failure, Result, Success

from tests.support.clock import FakeClock


class LeaseStore:
    """Leases with resourceVersion preconditions, as the API server enforces them."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], Lease] = {}
        self.rv = 0
        self.down = False
        self.stale_read: Lease | None = None  # when set, every read returns this snapshot

    def get_lease(self, namespace: str, name: str) -> Result[Lease, KubeError]:
        if self.down:
            return Failure(KubeUnavailable("down"))
        if self.stale_read is not None:
            return Success(self.stale_read)
        lease = self.leases.get((namespace, name))
        return Success(lease) if lease is not None else Failure(KubeNotFound())

    def create_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        if self.down:
            return Failure(KubeUnavailable("down"))
        if (lease.namespace, lease.name) in self.leases:
            return Failure(KubeAlreadyExists())
        self.rv += 1
        stored = replace(lease, resource_version=str(self.rv))
        self.leases[(lease.namespace, lease.name)] = stored
        return Success(stored)

    def update_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        if self.down:
            return Failure(KubeUnavailable("down"))
        current = self.leases.get((lease.namespace, lease.name))
        if current is None:
            return Failure(KubeNotFound())
        if current.resource_version != lease.resource_version:
            return Failure(KubeConflict("stale"))
        self.rv += 1
        stored = replace(lease, resource_version=str(self.rv))
        self.leases[(lease.namespace, lease.name)] = stored
        return Success(stored)


def elector(
    store: LeaseStore, clocks: FakeClock, identity: str, events: list[str] | None = None
) -> LeaderElector:
    log = events if events is not None else []
    return LeaderElector(
        store,
        "aivenator",
        "leader",
        identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        now=clocks.now,
        monotonic=clocks.monotonic,
        on_started_leading=lambda: log.append(f"{identity}:start"),
        on_stopped_leading=lambda: log.append(f"{identity}:stop"),
    )


def test_first_replica_creates_the_lease_and_leads_the_second_stands_by() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    a, b = elector(store, clocks, "a"), elector(store, clocks, "b")
    assert a.try_acquire_or_renew() is True
    assert b.try_acquire_or_renew() is False
    assert a.is_leader() and not b.is_leader()
    assert store.leases[("aivenator", "leader")].holder_identity == "a"


def test_a_renewing_leader_keeps_the_lease() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    a, b = elector(store, clocks, "a"), elector(store, clocks, "b")
    a.try_acquire_or_renew()
    for _ in range(20):
        clocks.advance(2)
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew()
    assert store.leases[("aivenator", "leader")].lease_transitions == 0


def test_standby_takes_over_after_the_lease_expires() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    events: list[str] = []
    a, b = elector(store, clocks, "a", events), elector(store, clocks, "b", events)
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    clocks.advance(10)
    assert not b.try_acquire_or_renew()  # not expired yet as b observes it
    assert not a.is_leader()  # a's renew deadline (10 s) passed: it stops mutating at once
    clocks.advance(6)
    assert b.try_acquire_or_renew()
    lease = store.leases[("aivenator", "leader")]
    assert lease.holder_identity == "b"
    assert lease.lease_transitions == 1
    assert not a.try_acquire_or_renew()
    assert events == ["a:start", "b:start", "a:stop"]


def test_only_one_of_two_racing_replicas_wins_the_conflict() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    a, b = elector(store, clocks, "a"), elector(store, clocks, "b")
    a.try_acquire_or_renew()
    a.release()
    # Both read the released Lease; the first write wins and the second gets a conflict.
    store.stale_read = store.get_lease("aivenator", "leader").unwrap()
    results = [a.try_acquire_or_renew(), b.try_acquire_or_renew()]
    assert results.count(True) == 1


def test_leader_stops_leading_when_it_cannot_renew_within_the_deadline() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    a = elector(store, clocks, "a")
    assert a.try_acquire_or_renew()
    store.down = True
    clocks.advance(4)
    assert a.try_acquire_or_renew() is True  # still within the renew deadline
    clocks.advance(7)
    assert a.try_acquire_or_renew() is False
    assert not a.is_leader()


def test_release_hands_over_without_waiting_for_expiry() -> None:
    store, clocks = LeaseStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC), monotonic=100.0)
    a, b = elector(store, clocks, "a"), elector(store, clocks, "b")
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    assert a.release() is True
    assert not a.is_leader()
    assert store.leases[("aivenator", "leader")].holder_identity is None
    assert b.try_acquire_or_renew() is True


def test_background_loop_acquires_and_releases_on_stop() -> None:
    store = LeaseStore()
    a = LeaderElector(
        store, "aivenator", "leader", "a", lease_duration=3, renew_deadline=2, retry_period=0.05
    )
    a.start()
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while not a.is_leader() and datetime.now(UTC) < deadline:
        pass
    assert a.is_leader()
    a.stop()
    assert not a.is_leader()
    assert store.leases[("aivenator", "leader")].holder_identity is None
