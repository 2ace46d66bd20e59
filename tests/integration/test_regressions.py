"""Explicit scenarios for the resilience promises (drift repair, users deleted out of band,
Kafka certificate renewal, leader failover, Retry-After) and every failing example the state
machine (test_state_machine.py) found, kept as a plain test."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.harness import (
    KAFKA_SERVICE,
    NAMESPACE,
    OPENSEARCH_SERVICE,
    PROJECT,
    VALKEY_SERVICE,
    CrashPlan,
    World,
    application,
    base_config,
    check_all,
    condition,
    decoded,
)

KAFKA_USER = "kafka.aiven.nais.io/serviceUser"


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    w.start_replica()
    yield w
    w.close()


def writes(world: World) -> int:
    return world.kube.write_count("Secret") + world.kube.write_count("AivenApplication")


def full_app(name: str = "alpha") -> dict[str, Any]:
    return application(
        name,
        kafka={"pool": PROJECT, "secretName": f"{name}-kafka"},
        opensearch={"instance": "logs", "access": "readwrite", "secretName": f"{name}-os"},
        valkey=[{"instance": "cache", "access": "write", "secretName": f"{name}-valkey"}],
    )


# --- drift repair ---------------------------------------------------------------------------------------


def test_an_edited_secret_is_repaired_once_and_then_left_alone(world: World) -> None:
    world.kube.apply(full_app())
    world.tick()
    secret = world.secret("alpha-os")
    assert secret is not None
    original = decoded(secret)
    secret["data"]["OPEN_SEARCH_PASSWORD"] = base64.b64encode(b"edited-by-hand").decode()
    secret["metadata"]["labels"]["app"] = "someone-else"
    secret["metadata"]["annotations"]["opensearch.aiven.nais.io/serviceName"] = "other"
    secret["metadata"]["labels"]["mine"] = "keep"
    world.kube.apply(secret)

    world.tick()

    repaired = world.secret("alpha-os")
    assert repaired is not None
    assert decoded(repaired)["OPEN_SEARCH_PASSWORD"] == original["OPEN_SEARCH_PASSWORD"]
    assert repaired["metadata"]["labels"]["app"] == "alpha"
    assert (
        repaired["metadata"]["annotations"]["opensearch.aiven.nais.io/serviceName"] == OPENSEARCH_SERVICE[1]
    )
    assert repaired["metadata"]["labels"]["mine"] == "keep"
    # No churn: nothing differs any more, so nothing is written or asked of Aiven again.
    before, requests = writes(world), len(world.aiven.request_log)
    world.live()[0].operator.resync()
    world.tick()
    assert (writes(world), len(world.aiven.request_log)) == (before, requests)
    check_all(world)


def test_a_deleted_secret_is_recreated_promptly(world: World) -> None:
    world.kube.apply(full_app())
    world.tick()
    world.kube.delete_secret(NAMESPACE, "alpha-valkey")

    world.tick()

    again = world.secret("alpha-valkey")
    assert again is not None and not again["metadata"].get("deletionTimestamp")
    check_all(world)


def test_a_user_deleted_out_of_band_is_recreated_by_the_next_verification(world: World) -> None:
    world.kube.apply(full_app())
    world.tick()
    secret = world.secret("alpha-kafka")
    assert secret is not None
    user = secret["metadata"]["annotations"][KAFKA_USER]
    world.aiven.delete_user_out_of_band(*KAFKA_SERVICE, user)
    world.tick()
    assert user not in world.aiven.users(*KAFKA_SERVICE)  # the cache-only steady state cannot see it

    replica = world.live()[0]
    replica.operator.queue.add(("verify", "", ""))
    world.tick()

    assert user in world.aiven.users(*KAFKA_SERVICE)
    check_all(world)  # the Secret holds the new user's certificate and password
    # Verification costs one listing per project (two here), not a read per application.
    before = len(world.aiven.request_log)
    replica.operator.queue.add(("verify", "", ""))
    world.tick()
    sent = world.aiven.request_log[before:]
    assert sorted(r.path for r in sent) == [
        "/v1/project/dev-nais-dev/service",
        "/v1/project/nav-prod/service",
    ]


def test_the_orphan_sweep_also_repairs_users_deleted_out_of_band() -> None:
    w = World(config=base_config(orphan_sweep_dry_run=True))
    try:
        w.start_replica()
        w.kube.apply(full_app())
        w.tick()
        for service in (OPENSEARCH_SERVICE, VALKEY_SERVICE):
            for user in w.our_users(service):
                w.aiven.delete_user_out_of_band(*service, user)
        w.sweep()
        assert len(w.our_users(OPENSEARCH_SERVICE)) == 1 and len(w.our_users(VALKEY_SERVICE)) == 1
        check_all(w)
    finally:
        w.close()


# --- the orphan sweep: rate limit, dry run, metrics, events ---------------------------------------------


def orphan_names(count: int) -> list[str]:
    from aivenator.domain.names import valkey_username

    return [valkey_username(f"gone{i}", 1, None).name for i in range(count)]


def test_the_sweep_deletes_at_most_its_limit_per_run_and_says_what_and_why(world: World) -> None:
    orphans = orphan_names(25)
    for name in orphans:
        world.aiven.add_user(*VALKEY_SERVICE, name)
    world.sweep()  # first sighting
    world.advance(world.config.orphan_grace_period + 1, step=60)

    world.sweep()
    assert len(world.our_users(VALKEY_SERVICE)) == 5  # 20 per sweep; the rest wait
    world.sweep()
    assert world.our_users(VALKEY_SERVICE) == set()

    metrics = world.live()[0].operator.metrics
    labels = {"pool": PROJECT, "service": VALKEY_SERVICE[1]}
    assert metrics.value("aivenator_orphan_users_deleted_total", labels) == 25
    assert metrics.value("aivenator_service_users_deleted", labels) == 25
    events = [e for e in world.kube.events() if e.get("reason") == "OrphanUserDeleted"]
    assert len(events) == 25
    assert all("no managed Secret refers to it" in e["message"] for e in events)
    logged = [line for line in world.logs.getvalue().splitlines() if "orphan_user_deleted" in line]
    assert len(logged) == 25 and all("reason" in line for line in logged)


def test_a_dry_run_sweep_reports_orphans_and_deletes_nothing() -> None:
    w = World(config=base_config(orphan_sweep_dry_run=True))
    try:
        w.start_replica()
        orphans = orphan_names(3)
        for name in orphans:
            w.aiven.add_user(*VALKEY_SERVICE, name)
        w.aiven.add_user(*VALKEY_SERVICE, "not-our-scheme")
        w.sweep()
        w.advance(w.config.orphan_grace_period + 1, step=60)
        w.sweep()

        assert w.our_users(VALKEY_SERVICE) == set(orphans) | {"not-our-scheme"}
        metrics = w.live()[0].operator.metrics
        labels = {"pool": PROJECT, "service": VALKEY_SERVICE[1]}
        assert metrics.value("aivenator_orphan_users", labels) == 3
        assert metrics.value("aivenator_orphan_users_deleted_total", labels) == 0
        found = [line for line in w.logs.getvalue().splitlines() if "orphan_user_found" in line]
        assert {n for n in orphans if any(n in line for line in found)} == set(orphans)
    finally:
        w.close()


# --- found by the state machine ------------------------------------------------------------------------


def test_regression_an_orphan_in_a_service_nothing_names_any_more_is_swept(world: World) -> None:
    """State machine: crash right after creating a Valkey user, the app deleted before any
    replica looked again. No Secret and no application names the service any more, so the sweep
    only finds the user by listing the project's services."""
    world.live()[0].plans.append(CrashPlan("aiven", "ensure_user", "after"))
    world.kube.apply(
        application("alpha", valkey=[{"instance": "cache", "access": "read", "secretName": "alpha-v"}])
    )
    world.tick()
    assert world.crashes == 1
    (orphan,) = world.our_users(VALKEY_SERVICE)
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")

    world.settle()

    assert orphan not in world.our_users(VALKEY_SERVICE)
    check_all(world)


def test_regression_work_dropped_while_leadership_lapsed_is_redone() -> None:
    """State machine: two 429s with Retry-After 5 made the client wait 10 s on the shared clock
    in the middle of a pass; the renew deadline passed, the pass stopped as "not leader" and its
    key was dropped. The next renewal kept the same Lease, so no new term began and nothing
    re-enqueued the application: it never got its Secret."""
    w = World(config=base_config(leader_elect=True))
    try:
        w.start_replica()
        w.tick()
        w.aiven.faults.throttle(retry_after=5, times=2)
        w.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
        w.tick()

        w.advance(30, step=5)

        assert w.secret("alpha-kafka") is not None
        w.settle()
        check_all(w)
    finally:
        w.close()


def test_regression_a_recreated_application_never_shares_its_predecessors_user(world: World) -> None:
    """State machine: alpha (protected) was deleted, its Secret kept; a new alpha starts again at
    generation 1, so the compatible user name was the one the kept Secret records. Both Secrets
    then named one user, and deleting the old one deleted the new one's user."""
    world.kube.apply(
        application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka-2"}, protected=True)
    )
    world.tick()
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")
    world.run_janitor()
    old = world.secret("alpha-kafka-2")
    assert old is not None  # protected: kept

    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka-1"}))
    world.tick()

    new = world.secret("alpha-kafka-1")
    assert new is not None
    assert new["metadata"]["annotations"][KAFKA_USER] != old["metadata"]["annotations"][KAFKA_USER]
    world.kube.delete_secret(NAMESPACE, "alpha-kafka-2")
    world.settle()
    check_all(world)


class _Drawn:
    """Stands in for hypothesis' `data()` when replaying a state-machine example."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, strategy: Any) -> Any:
        return self.value


def test_regression_a_forced_resync_of_an_already_cleared_hash_still_syncs() -> None:
    """State machine (replayed as found): a managed key's value was edited while a replica stood
    by, so it remembered to force a resync; the leader had already cleared the hash and died
    mid-sync. The standby, taking over, cleared the already empty hash again: no change, no watch
    event, and the full pass that should follow never came (beta never got its Kafka Secret)."""
    from tests.integration.test_state_machine import ResilienceMachine

    state = ResilienceMachine()
    try:
        state.delete_application(crash=None, fault=None, name="alpha")
        state.start_standby()
        state.delete_application(
            crash=CrashPlan("aiven", "ensure_user", "after", 1), fault=None, name="gamma"
        )
        state.advance_clock(seconds=30)
        state.kill_leader()
        state.apply_application(
            access="read",
            crash=CrashPlan("aiven", "ensure_user", "after", 2),
            expires_in_hours=2,
            fault=("timeout", 1, 6, 500, "/user"),
            name="gamma",
            protected=True,
            services=frozenset(["kafka", "valkey", "opensearch"]),
            tag=1,
            valid=False,
        )
        state.advance_clock(seconds=900)
        state.advance_clock(seconds=900)
        state.inject_fault(kind="reset", path="/service/[^/]+$", retry_after=28, status=500, times=3)
        state.add_workload(
            container_list="containers",
            kind="StatefulSet",
            name="w3",
            secret="alpha-valkey-2",
            way="env_from",
        )
        state.start_standby()
        state.inject_fault(kind="reset", path="/service/[^/]+$", retry_after=28, status=500, times=3)
        state.add_workload(
            container_list="ephemeralContainers",
            kind="Pod",
            name="w2",
            secret="gamma-valkey-2",
            way="projected",
        )
        state.apply_application(
            access="readwrite",
            crash=None,
            expires_in_hours=1,
            fault=None,
            name="beta",
            protected=False,
            services=frozenset(["kafka", "valkey", "opensearch"]),
            tag=1,
            valid=True,
        )
        state.add_workload(
            container_list="initContainers",
            kind="Deployment",
            name="w3",
            secret="alpha-valkey-1",
            way="volume",
        )
        state.inject_fault(kind="throttle", path=None, retry_after=3, status=500, times=1)
        state.delete_application(
            crash=CrashPlan("aiven", "delete_user", "after", 1), fault=None, name="alpha"
        )
        state.inject_fault(kind="error", path=None, retry_after=30, status=503, times=1)
        state.edit_secret(_Drawn("beta-valkey-1"), edit="value")
        state.add_workload(
            container_list="containers", kind="Pod", name="w1", secret="alpha-kafka-1", way="projected"
        )
        state.add_workload(
            container_list="initContainers", kind="DaemonSet", name="w1", secret="alpha-valkey-2", way="env"
        )
        state.apply_application(
            access="write",
            crash=None,
            expires_in_hours=5,
            fault=("reset", 1, 27, 500, "/user"),
            name="alpha",
            protected=True,
            services=frozenset(["valkey"]),
            tag=1,
            valid=False,
        )
        state.add_workload(
            container_list="ephemeralContainers",
            kind="ReplicaSet",
            name="w2",
            secret="beta-valkey-1",
            way="volume",
        )
        state.add_workload(
            container_list="initContainers",
            kind="DaemonSet",
            name="w2",
            secret="beta-kafka-1",
            way="projected",
        )
        state.edit_secret(_Drawn("beta-valkey-1"), edit="remove_key")

        state.settle_and_check()
    finally:
        state.world.close()


def test_regression_a_variant_a_protected_predecessor_recorded_is_not_left_behind() -> None:
    """State machine (minimal sequence, replayed): protected alpha (generation 1) got Kafka user
    variant 1, because the compatible name was still recorded by its predecessor's Secret being
    cleaned up. Deleted, it kept its Secret alpha-kafka-1; a new alpha (generation 1 again)
    wrote that Secret with the compatible name, now free, leaving variant 1 recorded by nothing,
    and the sweep spared it forever (every variant of a current application counted as
    expected). Now a section keeps the candidate its own Secret records, and expects only that."""
    from tests.integration.test_state_machine import ResilienceMachine

    state = ResilienceMachine()
    try:
        state.apply_application(
            access="write", crash=None, expires_in_hours=None, fault=None, name="alpha",
            protected=False, services=frozenset(["kafka", "valkey"]), tag=2, valid=True,
        )  # fmt: skip
        state.apply_application(
            access="admin", crash=CrashPlan("kube", "create_secret", "after", 1), expires_in_hours=None,
            fault=None, name="beta", protected=False, services=frozenset(["kafka"]), tag=2, valid=True,
        )  # fmt: skip
        state.delete_application(crash=None, fault=None, name="alpha")
        state.apply_application(
            access="write", crash=None, expires_in_hours=None, fault=None, name="alpha", protected=True,
            services=frozenset(["kafka", "valkey", "opensearch"]), tag=1, valid=True,
        )  # fmt: skip
        state.settle_and_check()
        beta_users = {u for u in state.world.our_users(KAFKA_SERVICE) if "beta" in u}
        kept = state.world.secret("alpha-kafka-1")
        assert kept is not None
        variant = kept["metadata"]["annotations"][KAFKA_USER]
        state.delete_application(crash=None, fault=None, name="alpha")
        state.apply_application(
            access="read", crash=None, expires_in_hours=None, fault=None, name="alpha", protected=False,
            services=frozenset(["kafka"]), tag=1, valid=True,
        )  # fmt: skip
        taken_over = state.world.secret("alpha-kafka-1")
        assert taken_over is not None and taken_over["metadata"]["annotations"][KAFKA_USER] == variant

        state.settle_and_check()

        assert state.world.our_users(KAFKA_SERVICE) == {variant, *beta_users}
    finally:
        state.world.close()


def test_regression_a_compatible_name_freed_later_is_not_expected_while_a_variant_is_recorded() -> None:
    """State machine (--hypothesis-seed=35, minimal): alpha's Kafka Secret got a foreign team
    label, so when alpha was deleted its finalizer refused to delete the user (no proof of
    ownership). A new alpha naming alpha-valkey-2 as its Kafka Secret got variant 1 (the
    compatible name was still recorded by alpha-kafka-2); once that Secret was gone, the sweep
    expected the compatible name again (what a new pass would choose) though alpha's Secret
    records variant 1, and spared the user left behind forever."""
    from tests.integration.test_state_machine import ResilienceMachine

    state = ResilienceMachine()
    try:
        state.apply_application(
            access="read", crash=CrashPlan("kube", "patch_application_status", "before", 1),
            expires_in_hours=None, fault=None, name="alpha", protected=False,
            services=frozenset(["valkey", "opensearch", "kafka"]), tag=2, valid=True,
        )  # fmt: skip
        state.edit_secret(_Drawn("alpha-kafka-2"), edit="label")
        state.delete_application(
            crash=CrashPlan("aiven", "remove_user_rules", "after", 1), fault=None, name="alpha"
        )
        state.apply_colliding_application(name="alpha", victim="alpha-valkey-2")

        state.settle_and_check()

        secret = state.world.secret("alpha-valkey-2")
        assert secret is not None
        assert state.world.our_users(KAFKA_SERVICE) == {secret["metadata"]["annotations"][KAFKA_USER]}
    finally:
        state.world.close()


def test_regression_a_user_created_before_an_unmanaged_secret_took_the_name_is_swept() -> None:
    """State machine (minimal sequence, replayed): gamma's pass created its Kafka user and crashed
    before creating its Secret db-creds; then someone else created db-creds, unmanaged. The
    section is refused from then on (SecretConflict), yet the sweep expected its user forever:
    the ownership index holds managed Secrets only, so to the sweep the Secret looked absent.
    The sweep now asks the API server about a section's Secret the index lacks, as the
    reconcile does."""
    from tests.integration.test_state_machine import ResilienceMachine

    state = ResilienceMachine()
    try:
        # Arms a crash before the next Secret create (there is no beta to delete).
        state.delete_application(
            crash=CrashPlan("kube", "create_secret", "before", 1), fault=None, name="beta"
        )
        state.apply_colliding_application(name="gamma", victim="db-creds")
        assert state.world.crashes == 1
        (created,) = state.world.our_users(KAFKA_SERVICE)
        state.create_unmanaged_secret(name="db-creds")

        state.settle_and_check()

        assert created not in state.world.our_users(KAFKA_SERVICE)
        gamma = state.world.kube.get("AivenApplication", NAMESPACE, "gamma")
        conflict = condition(gamma, "SecretConflict")
        assert conflict is not None and conflict["status"] == "True"
    finally:
        state.world.close()


# --- Kafka certificate renewal -------------------------------------------------------------------------


def days_left(world: World, app: str = "alpha") -> float:
    return world.live()[0].operator.metrics.value(
        "aivenator_cert_days_left", {"namespace": NAMESPACE, "aiven_application": app}
    )


def test_a_kafka_certificate_is_renewed_when_it_enters_the_window(world: World) -> None:
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
    world.tick()
    first = world.secret("alpha-kafka")
    assert first is not None
    user = first["metadata"]["annotations"][KAFKA_USER]
    assert 364 <= days_left(world) <= 365
    renewal = condition(world.kube.get("AivenApplication", NAMESPACE, "alpha"), "CertificateRenewal")
    assert renewal is not None and renewal["status"] == "False" and renewal["reason"] == "NotDue"

    # Aiven issues the next certificate some weeks before the current one expires. (The wake-up
    # for the renewal is set by the periodic resync that comes within one sync period of it.)
    world.advance_with_resync(330 * 86400.0, step=30 * 86400.0)
    assert (
        decoded(world.secret("alpha-kafka") or {})["KAFKA_CERTIFICATE"] == decoded(first)["KAFKA_CERTIFICATE"]
    )
    world.aiven.renew_user_cert(*KAFKA_SERVICE, user)
    before = writes(world)
    # Nothing happens before the window (7 days) is entered: the wake-up is timed, not polled.
    world.advance_with_resync(28 * 86400.0 - 3600, step=3600.0)
    assert writes(world) == before

    world.advance(2 * 3600, step=600)

    renewed = world.secret("alpha-kafka")
    assert renewed is not None
    assert decoded(renewed)["KAFKA_CERTIFICATE"] != decoded(first)["KAFKA_CERTIFICATE"]
    assert (
        decoded(renewed)["KAFKA_CERTIFICATE"].decode()
        == world.aiven.users(*KAFKA_SERVICE)[user]["access_cert"]
    )
    renewal = condition(world.kube.get("AivenApplication", NAMESPACE, "alpha"), "CertificateRenewal")
    assert renewal is not None and renewal["status"] == "True" and renewal["reason"] == "Renewed"
    assert days_left(world) > 300
    check_all(world)


def test_a_certificate_aiven_has_not_renewed_yet_causes_no_request_loop(world: World) -> None:
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
    world.tick()
    world.advance_with_resync(360 * 86400.0, step=30 * 86400.0)  # in the window; Aiven has not renewed
    requests = len(world.aiven.request_log)
    world.advance_with_resync(3600, step=60)
    assert len(world.aiven.request_log) - requests <= 10
    assert 4 <= days_left(world) <= 5


# --- leader failover ------------------------------------------------------------------------------------


def test_the_standby_takes_over_when_the_leader_dies_and_the_dead_leader_never_writes() -> None:
    w = World(config=base_config(leader_elect=True))
    try:
        first = w.start_replica()
        second = w.start_replica()
        w.tick()
        assert first.is_leader() and not second.is_leader()
        w.kube.apply(
            application("alpha", valkey=[{"instance": "cache", "access": "read", "secretName": "alpha-v"}])
        )
        w.tick()
        assert w.secret("alpha-v") is not None
        w.kill(first)
        w.kube.apply(
            application("beta", valkey=[{"instance": "cache", "access": "read", "secretName": "beta-v"}])
        )
        w.tick()
        assert w.secret("beta-v") is None  # the Lease has not expired yet: nobody works

        w.advance(20, step=2)

        assert second.is_leader()
        assert w.secret("beta-v") is not None
        assert not first.operator.may_mutate()  # its renew deadline passed on the shared clock
        w.settle()
        check_all(w)
    finally:
        w.close()


# --- Retry-After -----------------------------------------------------------------------------------------


def test_retry_after_is_honoured_across_operations(world: World) -> None:
    world.aiven.faults.throttle(retry_after=7, times=3)
    world.kube.apply(full_app())
    world.advance(60, step=1)
    world.settle()
    assert any(s.status == 429 for t in world.transports for s in t.sent)
    check_all(world)


def test_when_the_aiven_clock_moves_the_fake_wall_clock_moves_too() -> None:
    """The harness's clock is shared by the Aiven client's sleep: a sanity check of the rig."""
    w = World()
    try:
        start = w.clock.now()
        w.clock.advance(1.5)
        assert w.clock.now() - start == timedelta(seconds=1.5)
        assert w.clock.now().tzinfo is UTC or w.clock.now().utcoffset() == timedelta(0)
        assert isinstance(w.clock.now(), datetime)
    finally:
        w.close()
