"""The shared OpenSearch ACL document under concurrency (the Go operator's lost updates).

50 applications on one OpenSearch service are reconciled by all workers of a threaded operator
at once, with deletions interleaved (their Secrets collected, their users and ACL entries
removed by the finalizer) while the others are still being created. Latency on the ACL calls
widens every read-modify-write window. Afterwards no ACL entry is lost (every managed Secret's
user has its entry) and none is stale (no entry without a Secret).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from aivenator.entrypoints.runtime.operator import JANITOR

from tests.support.harness import (
    NAMESPACE,
    OPENSEARCH_SERVICE,
    World,
    application,
    base_config,
    check_apps_have_their_secrets,
    check_every_user_has_one_owner,
    check_no_crashed_work,
    check_opensearch_acl_matches_secrets,
    check_retry_after_honoured,
)

APPS = 50
ACCESS = ("read", "write", "readwrite", "admin")


def opensearch_app(i: int) -> dict[str, object]:
    return application(
        f"app-{i:02d}",
        opensearch={"instance": "logs", "access": ACCESS[i % 4], "secretName": f"app-{i:02d}-os"},
    )


def deleted(i: int) -> bool:
    return i % 5 == 2


def wait_for(condition: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def world() -> Iterator[World]:
    w = World(
        config=base_config(workers=8, aiven_requests_per_second=1000.0, aiven_burst=1000), real_time=True
    )
    yield w
    for replica in w.live():
        replica.operator.stop()
    w.close()


def run_scenario(world: World, replicas: int) -> None:
    world.aiven.faults.latency(5, path=r"/opensearch/acl")
    operators = [world.start_replica().operator for _ in range(replicas)]
    for operator in operators:
        operator.start(sync_timeout=10)

    def create_and_delete() -> None:
        for i in range(APPS):
            world.kube.apply(opensearch_app(i))
            if i >= 5 and deleted(i - 5):
                world.kube.delete("AivenApplication", NAMESPACE, f"app-{i - 5:02d}")
        for i in range(APPS - 5, APPS):
            if deleted(i):
                world.kube.delete("AivenApplication", NAMESPACE, f"app-{i:02d}")

    writer = threading.Thread(target=create_and_delete)
    writer.start()
    writer.join(timeout=60)
    assert not writer.is_alive()

    assert all(op.wait_until_idle(120, settle=0.5) for op in operators)
    for operator in operators:
        operator.queue.add((JANITOR, "", ""))
    assert all(op.wait_until_idle(120, settle=0.5) for op in operators)

    live = {f"app-{i:02d}" for i in range(APPS) if not deleted(i)}
    assert wait_for(
        lambda: {s["metadata"]["name"] for s in world.managed_secrets()} == {f"{a}-os" for a in live}
    ), sorted(s["metadata"]["name"] for s in world.managed_secrets())
    check_apps_have_their_secrets(world)
    check_every_user_has_one_owner(world)
    check_opensearch_acl_matches_secrets(world)
    check_retry_after_honoured(world)
    check_no_crashed_work(world)
    acl = world.aiven.opensearch_acl(*OPENSEARCH_SERVICE)
    assert len([e for e in acl["acls"] if e["username"] != "avnadmin"]) == len(live) == APPS - APPS // 5
    # The read-modify-writes really overlapped: many ACL writes in a short time.
    assert len(world.aiven.requests_matching("POST", r"/opensearch/acl")) >= len(live)


def test_fifty_apps_on_one_opensearch_service_lose_no_acl_entry(world: World) -> None:
    run_scenario(world, replicas=1)


def test_two_active_replicas_without_election_still_lose_no_acl_entry(world: World) -> None:
    """Leader election is not a lock: even two replicas mutating at once (a split brain, or the
    moment between a lost Lease and the next check) keep the shared document whole."""
    run_scenario(world, replicas=2)
