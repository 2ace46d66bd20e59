"""Crash safety: a replica killed at any point between creating an Aiven user and recording it
(or between deleting a user and letting its Secret go) leaves no orphan once a fresh replica has
run on the same cluster and Aiven state: a retry adopts the user by its deterministic name, or
the orphan sweep removes it after the grace period.

A crash is `SimulatedCrash` raised by a `CrashPlan` before or after one port call; the replica is
then abandoned (no cleanup, no Lease release) and a new one is built from the container.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    check_all,
    referenced_users,
)


def full_app(name: str = "alpha", tag: str = "1") -> dict[str, Any]:
    return application(
        name,
        kafka={"pool": PROJECT, "secretName": f"{name}-kafka-{tag}"},
        opensearch={"instance": "logs", "access": "readwrite", "secretName": f"{name}-os-{tag}"},
        valkey=[{"instance": "cache", "access": "write", "secretName": f"{name}-valkey-{tag}"}],
    )


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def all_users(world: World) -> set[str]:
    return (
        world.our_users(KAFKA_SERVICE) | world.our_users(OPENSEARCH_SERVICE) | world.our_users(VALKEY_SERVICE)
    )


#: Every point of a reconcile pass where a dying process could leave something half done.
RECONCILE_CRASH_POINTS = [
    CrashPlan("aiven", "ensure_user", "after"),  # user exists in Aiven, operator never heard back
    CrashPlan("aiven", "ensure_user", "after", nth=2),  # second section's user
    CrashPlan("aiven", "put_user_rules", "after"),  # OpenSearch user and ACL entry, no Secret
    CrashPlan("kube", "create_secret", "before"),
    CrashPlan("kube", "create_secret", "after"),  # Secret written, status not
    CrashPlan("kube", "create_secret", "after", nth=3),  # every Secret written, status not
    CrashPlan("kube", "patch_application_status", "before"),
]


@pytest.mark.parametrize(
    "plan", RECONCILE_CRASH_POINTS, ids=lambda p: f"{p.when}-{p.port}.{p.method}#{p.nth}"
)
def test_a_crash_during_the_first_reconcile_leaves_no_orphan(world: World, plan: CrashPlan) -> None:
    world.start_replica(plans=[plan])
    world.kube.apply(full_app())
    world.tick()

    assert plan.fired and world.crashes == 1  # the first replica died; a fresh one took over
    world.settle()

    check_all(world)
    # Adoption: exactly one user per service, each recorded by the app's Secret.
    assert len(all_users(world)) == 3
    assert len(referenced_users(world)) == 3


def test_a_user_created_before_a_crash_is_adopted_not_recreated(world: World) -> None:
    plan = CrashPlan("aiven", "ensure_user", "after")
    world.start_replica(plans=[plan])
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
    world.tick()
    assert world.crashes == 1
    (created,) = world.our_users(KAFKA_SERVICE)
    creates = len(world.aiven.requests_matching("POST", r"/user$"))

    world.tick()

    secret = world.secret("alpha-kafka")
    assert secret is not None
    assert secret["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"] == created
    assert len(world.aiven.requests_matching("POST", r"/user$")) == creates  # adopted, not created again
    check_all(world)


def test_a_user_orphaned_by_a_crash_and_a_spec_change_is_swept_after_the_grace_period(world: World) -> None:
    """The crash loses the user of generation 1; before the restart the app moves to generation
    2 (new user name), so nothing will ever adopt the old user: only the sweep can remove it."""
    plan = CrashPlan("kube", "create_secret", "before")
    world.start_replica(plans=[plan])
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
    world.tick()
    assert world.crashes == 1
    (lost,) = world.our_users(KAFKA_SERVICE)
    # The fresh replica has not run yet: the app moves to a new generation meanwhile.
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka-2"}))
    world.tick()
    current = world.secret("alpha-kafka-2")
    assert current is not None
    assert current["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"] != lost

    world.sweep()
    assert lost in world.our_users(KAFKA_SERVICE)  # first sighting: inside its grace period
    world.advance(60)
    world.sweep()
    assert lost in world.our_users(KAFKA_SERVICE)  # still younger than the grace period
    world.settle()

    assert lost not in world.our_users(KAFKA_SERVICE)
    check_all(world)


def test_an_orphaned_opensearch_user_loses_its_acl_entry_too(world: World) -> None:
    plan = CrashPlan("aiven", "put_user_rules", "after")
    world.start_replica(plans=[plan])
    world.kube.apply(
        application("alpha", opensearch={"instance": "logs", "access": "read", "secretName": "alpha-os"})
    )
    world.tick()
    assert world.crashes == 1
    (orphan,) = world.our_users(OPENSEARCH_SERVICE)
    # While no replica is looking, the application is deleted: nobody will adopt the user. Another
    # application keeps using the service (a service nothing names any more is out of the sweep's
    # sight after a restart: Aiven's port has no "list services").
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")
    world.kube.apply(
        application("beta", opensearch={"instance": "logs", "access": "write", "secretName": "beta-os"})
    )
    assert any(e["username"] == orphan for e in world.aiven.opensearch_acl(*OPENSEARCH_SERVICE)["acls"])

    world.settle()

    assert orphan not in world.our_users(OPENSEARCH_SERVICE)
    assert [
        e for e in world.aiven.opensearch_acl(*OPENSEARCH_SERVICE)["acls"] if e["username"] == orphan
    ] == []
    check_all(world)


def test_the_sweep_remembers_services_it_has_seen(world: World) -> None:
    """Within one process, a service stays in the sweep's sight after its last app is gone."""
    world.start_replica()
    world.kube.apply(
        application("alpha", valkey=[{"instance": "cache", "access": "read", "secretName": "alpha-v"}])
    )
    world.tick()
    world.sweep()
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")
    world.settle()
    assert world.our_users(VALKEY_SERVICE) == set()
    stray = "alpha-r-zzz"
    world.aiven.add_user(*VALKEY_SERVICE, stray)

    world.settle()

    assert stray not in world.our_users(VALKEY_SERVICE)
    check_all(world)


FINALIZER_CRASH_POINTS = [
    CrashPlan("aiven", "delete_user", "after"),  # user gone, finalizer still on the Secret
    CrashPlan("aiven", "remove_user_rules", "after"),  # ACL entry gone, user not
    CrashPlan("kube", "remove_secret_finalizer", "before"),
]


@pytest.mark.parametrize(
    "plan", FINALIZER_CRASH_POINTS, ids=lambda p: f"{p.when}-{p.port}.{p.method}#{p.nth}"
)
def test_a_crash_during_finalization_leaves_neither_user_nor_stuck_secret(
    world: World, plan: CrashPlan
) -> None:
    world.start_replica()
    world.kube.apply(full_app())
    world.tick()
    assert len(all_users(world)) == 3
    world.kill(world.live()[0])
    world.start_replica(plans=[plan])
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")

    world.run_janitor()  # the (periodic) janitor deletes the unused Secrets; finalizers run, crash
    assert plan.fired and world.crashes == 1
    world.settle()

    assert world.managed_secrets() == []
    assert all_users(world) == set()
    assert world.aiven.opensearch_acl(*OPENSEARCH_SERVICE)["acls"] == []
    check_all(world)


def test_a_spec_change_that_keeps_the_secret_name_leaves_no_old_user(world: World) -> None:
    """Rotation by generation with the same Secret name: the old user is recorded nowhere once
    the Secret is patched; the sweep removes it (the Go operator leaked these forever)."""
    world.start_replica()
    world.kube.apply(application("alpha", kafka={"pool": PROJECT, "secretName": "alpha-kafka"}))
    world.tick()
    (old,) = world.our_users(KAFKA_SERVICE)
    app = world.kube.get("AivenApplication", NAMESPACE, "alpha")
    assert app is not None
    app["spec"]["protected"] = True  # a spec edit: new generation, new user name, same Secret
    world.kube.apply(app)
    world.tick()
    secret = world.secret("alpha-kafka")
    assert secret is not None
    assert secret["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"] != old

    world.settle()

    assert old not in world.our_users(KAFKA_SERVICE)
    check_all(world)


def test_commit_then_fail_on_user_creation_is_adopted(world: World) -> None:
    world.start_replica()
    world.aiven.faults.commit_then_fail(method="POST", path=r"/user$", times=1)
    world.kube.apply(
        application("alpha", valkey=[{"instance": "cache", "access": "read", "secretName": "alpha-v"}])
    )
    world.advance(30)
    world.settle()
    assert len(world.our_users(VALKEY_SERVICE)) == 1
    check_all(world)
