"""Operator promises beyond convergence: janitor, invalid input, isolation, throttling,
expiry, drift, leader election, redaction (in-memory cluster + Aiven simulator)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from aivenator.domain.kubernetes_port import Lease
from dependency_injector import providers
from returns.result import Success

from tests.support.harness import (
    NAMESPACE,
    TOKEN,
    Harness,
    aiven_object,
    application,
    build,
    full_application,
    harness,
    make_config,
    seed_aiven_objects,
)

__all__ = ["harness"]

KAFKA = {"pool": "dev-nais-dev", "secretName": "app-kafka-1"}


def pod_using(secret: str, name: str = "pod", how: str = "env") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "x"}
    spec: dict[str, Any] = {"containers": [container]}
    if how == "env":
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    else:
        spec["volumes"] = [{"name": "v", "projected": {"sources": [{"secret": {"name": secret}}]}}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def deployment_using(secret: str, name: str = "deploy") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "x",
                            "env": [
                                {"name": "P", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}
                            ],
                        }
                    ]
                },
            },
        },
    }


def events(h: Harness, reason: str | None = None) -> list[dict[str, Any]]:
    return [e for e in h.kube.events(NAMESPACE) if reason is None or e.get("reason") == reason]


def app_key(name: str = "app") -> tuple[str, str, str]:
    return ("app", NAMESPACE, name)


# --- janitor ------------------------------------------------------------------------------------


def test_janitor_removes_unused_secrets_but_keeps_referenced_and_protected_ones(harness: Harness) -> None:
    for n in range(1, 6):
        harness.kube.apply(application(f"app{n}", kafka={"pool": "dev-nais-dev", "secretName": f"s{n}"}))
    harness.kube.apply(
        application("prot", kafka={"pool": "dev-nais-dev", "secretName": "sprot"}, protected=True)
    )
    harness.operator.drain()
    assert all(harness.secret(f"s{n}") for n in range(1, 6))
    # Workloads refer to s1 (env in a Pod), s2 (projected volume in a Pod), s3 (Deployment template).
    harness.kube.apply(pod_using("s1", "p1", "env"))
    harness.kube.apply(pod_using("s2", "p2", "projected"))
    harness.kube.apply(deployment_using("s3"))
    # The apps go away: s4 and s5 are no longer named by anyone; s3..s1 still used by workloads.
    for n in range(1, 6):
        harness.kube.delete("AivenApplication", NAMESPACE, f"app{n}")
    harness.kube.delete("AivenApplication", NAMESPACE, "prot")
    harness.operator.drain()

    assert harness.secret("s1") and harness.secret("s2") and harness.secret("s3")
    assert harness.secret("sprot") is not None
    assert harness.secret("s4") is None and harness.secret("s5") is None
    assert harness.operator.metrics.value("aivenator_janitor_deleted_total", {"namespace": NAMESPACE}) == 2
    # Deleting went through the finalizer: the users of s4/s5 are gone from Aiven.
    assert (
        harness.operator.metrics.value(
            "aivenator_service_users_deleted", {"pool": "dev-nais-dev", "service": "kafka"}
        )
        == 2
    )


def test_janitor_keeps_young_secrets_within_the_grace_period() -> None:
    h = build(make_config(janitor_grace_period=600.0))
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        h.kube.delete("AivenApplication", NAMESPACE, "app")
        h.operator.drain()
        assert h.secret("app-kafka-1") is not None
        h.clock.advance(601)
        result = h.operator.janitor.run(None)
        h.operator.drain()
        assert result.deleted == ((NAMESPACE, "app-kafka-1"),)
        assert h.secret("app-kafka-1") is None
    finally:
        h.close()


def test_janitor_refuses_to_run_before_caches_sync(harness: Harness) -> None:
    result = harness.operator.janitor.run(None)
    assert not result.ran and "sync" in result.skipped_reason


# --- invalid input ------------------------------------------------------------------------------


def test_invalid_spec_sets_a_condition_and_event_without_a_retry_loop(harness: Harness) -> None:
    harness.kube.apply(application(kafka={"pool": "not-allowed", "secretName": "Bad_Name"}))
    processed = harness.operator.drain()
    assert processed == 1
    invalid = harness.condition("app", "InvalidSpec")
    assert invalid is not None and invalid["status"] == "True"
    assert "secretName" in invalid["message"] or "pool" in invalid["message"]
    assert (harness.condition("app", "Ready") or {})["status"] == "False"
    assert events(harness) and any(e["type"] == "Warning" for e in events(harness))
    assert harness.operator.queue.delayed() == {}
    assert harness.aiven_requests() == 0
    # Nothing happens later either, until the spec changes.
    writes = harness.kube_writes()
    harness.clock.advance(3600)
    assert harness.operator.drain() == 0
    assert harness.kube_writes() == writes
    harness.kube.apply(application(kafka=KAFKA))
    harness.operator.drain()
    assert harness.secret("app-kafka-1") is not None
    assert (harness.condition("app", "Ready") or {})["status"] == "True"


# --- one failing service ------------------------------------------------------------------------


def test_a_missing_opensearch_object_does_not_block_kafka(harness: Harness) -> None:
    # No aiven.io OpenSearch object exists in the namespace: OpenSearch waits, Kafka proceeds.
    harness.kube.apply(full_application())
    harness.kube.apply(aiven_object("Valkey", "valkey-team-a-cache"))
    harness.operator.drain()

    assert harness.secret("app-kafka-1") is not None
    assert harness.secret("app-valkey-1") is not None
    assert harness.secret("app-os-1") is None
    assert (harness.condition("app", "KafkaReady") or {})["status"] == "True"
    opensearch = harness.condition("app", "OpenSearchReady") or {}
    assert opensearch["status"] == "False"
    assert opensearch["reason"] == "Waiting"
    assert (harness.app("app") or {})["status"]["synchronizationState"] == "RolloutFailed"
    assert app_key() in harness.operator.queue.delayed()  # retried, not failed for good

    harness.kube.apply(aiven_object("OpenSearch", "opensearch-team-a-logs"))
    harness.clock.advance(120)
    harness.operator.drain()
    assert harness.secret("app-os-1") is not None
    assert (harness.condition("app", "Ready") or {})["status"] == "True"


def test_an_object_in_another_namespace_does_not_count(harness: Harness) -> None:
    harness.kube.apply(aiven_object("Valkey", "valkey-team-a-cache", namespace="team-b"))
    harness.kube.apply(application(valkey=[{"instance": "cache", "secretName": "app-valkey-1"}]))
    harness.operator.drain()
    assert harness.secret("app-valkey-1") is None
    assert harness.aiven.requests_matching("POST") == []


# --- throttling ---------------------------------------------------------------------------------


def test_throttling_is_honoured(harness: Harness) -> None:
    harness.aiven.faults.throttle(retry_after=45, times=1, method="POST")
    harness.kube.apply(application(kafka=KAFKA))
    harness.operator.drain()
    delayed = harness.operator.queue.delayed()
    assert delayed[app_key()] >= 44.9
    assert harness.secret("app-kafka-1") is None
    before = harness.aiven_requests()
    harness.clock.advance(30)
    harness.operator.drain()
    assert harness.aiven_requests() == before  # nobody knocks again before Retry-After
    assert (harness.condition("app", "AivenFailure") or {})["status"] == "True"


# --- expiry -------------------------------------------------------------------------------------


def test_an_expired_application_is_deleted_at_its_expiry_time(harness: Harness) -> None:
    expires = harness.clock.now() + timedelta(minutes=10)
    harness.kube.apply(application(kafka=KAFKA, expiresAt=expires.strftime("%Y-%m-%dT%H:%M:%SZ")))
    harness.operator.drain()
    assert harness.app("app") is not None
    wake = harness.operator.queue.delayed()[app_key()]
    assert 590 <= wake <= 600
    harness.clock.advance(601)
    harness.operator.drain()
    assert harness.app("app") is None


# --- drift ---------------------------------------------------------------------------------------


def test_edited_secret_is_repaired_keeping_foreign_metadata(harness: Harness) -> None:
    harness.kube.apply(application(kafka=KAFKA))
    harness.operator.drain()
    secret = harness.secret("app-kafka-1") or {}
    secret["metadata"]["labels"]["team"] = "someone-else"
    secret["metadata"]["labels"]["owner"] = "me"
    secret["metadata"]["annotations"]["note"] = "keep"
    del secret["data"]["KAFKA_BROKERS"]
    harness.kube.apply(secret)
    harness.operator.drain()
    repaired = harness.secret("app-kafka-1") or {}
    assert repaired["metadata"]["labels"]["team"] == NAMESPACE
    assert repaired["metadata"]["labels"]["owner"] == "me"
    assert repaired["metadata"]["annotations"]["note"] == "keep"
    assert "KAFKA_BROKERS" in repaired["data"]


# --- finalizer security ---------------------------------------------------------------------------


def test_a_forged_secret_cannot_delete_another_teams_user(harness: Harness) -> None:
    harness.kube.create_namespace("team-b")
    harness.kube.apply(application(kafka=KAFKA, namespace="team-b"))
    harness.operator.drain()
    victim = (harness.kube.get("Secret", "team-b", "app-kafka-1") or {})["metadata"]["annotations"][
        "kafka.aiven.nais.io/serviceUser"
    ]
    forged = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "forged",
            "namespace": NAMESPACE,
            "labels": {"type": "aivenator.aiven.nais.io", "app": "app", "team": NAMESPACE},
            "annotations": {
                "kafka.aiven.nais.io/serviceUser": victim,
                "kafka.aiven.nais.io/pool": "dev-nais-dev",
            },
            "finalizers": ["aivenator.aiven.nais.io/finalizer"],
        },
        "data": {},
    }
    harness.kube.apply(forged)
    harness.operator.drain()
    harness.kube.delete_secret(NAMESPACE, "forged")
    harness.operator.drain()
    assert harness.secret("forged") is None  # the finalizer was removed: nothing stays stuck
    assert victim in harness.aiven.users("dev-nais-dev", "kafka")
    assert events(harness, "CleanupRefused")


def test_cleanup_errors_retry_then_become_visibly_stuck() -> None:
    h = build(make_config(max_finalizer_attempts=2))
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        h.aiven.faults.error(503, method="DELETE")
        h.kube.delete_secret(NAMESPACE, "app-kafka-1")
        h.kube.delete("AivenApplication", NAMESPACE, "app")
        for _ in range(4):
            h.operator.drain()
            h.clock.advance(400)
        assert h.secret("app-kafka-1") is not None  # finalizer kept while Aiven fails
        assert h.operator.metrics.value("aivenator_finalizer_stuck", {"namespace": NAMESPACE}) == 1
        assert events(h, "FinalizerStuck")
        h.aiven.faults.clear()
        h.clock.advance(4000)
        h.operator.drain()
        assert h.secret("app-kafka-1") is None
        assert h.operator.metrics.value("aivenator_finalizer_stuck", {"namespace": NAMESPACE}) == 0
    finally:
        h.close()


# --- leader election ------------------------------------------------------------------------------


def test_a_standby_replica_does_not_mutate() -> None:
    h = build(make_config(leader_elect=True, leader_election_namespace="aivenator"))
    try:
        now = h.clock.now()
        h.kube.create_namespace("aivenator")
        other = Lease("aivenator", "aivenator-leader", "other-replica", 15, now, now)
        assert isinstance(h.kube.create_lease(other), Success)
        leader = h.operator.leader
        assert leader is not None
        assert leader.try_acquire_or_renew() is False
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        assert h.secret("app-kafka-1") is None
        assert h.aiven_requests() == 0
        # The other replica stops renewing: after the lease duration this one takes over.
        h.clock.advance(16)
        assert leader.try_acquire_or_renew() is True
        h.operator.drain()
        assert h.secret("app-kafka-1") is not None
    finally:
        h.close()


# --- redaction ------------------------------------------------------------------------------------


def _secret_values(h: Harness) -> set[str]:
    values: set[str] = set()
    for secret in h.kube.objects("Secret"):
        for key, value in (secret.get("data") or {}).items():
            if "PASSWORD" in key or "PRIVATE_KEY" in key or key.endswith((".p12", ".jks")):
                decoded = base64.b64decode(value).decode("utf-8", "replace")
                values.add(decoded)
                values.update(line for line in decoded.splitlines() if len(line) > 20 and "-----" not in line)
    return {v for v in values if len(v) >= 8}


def test_no_credential_reaches_logs_events_or_status(harness: Harness) -> None:
    seed_aiven_objects(harness)
    harness.aiven.faults.error(500, method="PUT", times=1)  # some failure paths too
    harness.kube.apply(full_application())
    harness.operator.drain()
    harness.clock.advance(120)
    harness.operator.drain()
    values = _secret_values(harness)
    assert values, "the test needs credentials to look for"
    logs = harness.logs.getvalue()
    assert "aiven_application_synced" in logs
    statuses = json.dumps([a.get("status") for a in harness.kube.objects("AivenApplication")])
    event_text = json.dumps(harness.kube.events())
    metrics_text = harness.operator.metrics.exposition().decode()
    for value in values | {TOKEN}:
        assert value not in logs
        assert value not in statuses
        assert value not in event_text
        assert value not in metrics_text


# --- threaded mode ----------------------------------------------------------------------------------


def test_threaded_operator_converges_and_stops_cleanly() -> None:
    h = build()
    h.container.now.override(providers.Object(h.clock.now))
    try:
        seed_aiven_objects(h)
        h.kube.apply(full_application())
        h.operator.start(sync_timeout=10)
        assert h.operator.wait_until_idle(30)
        assert h.secret("app-kafka-1") and h.secret("app-os-1") and h.secret("app-valkey-1")
        h.kube.apply(full_application("second"))
        assert h.operator.wait_until_idle(30)
        assert h.secret("second-kafka-1") is not None
        assert h.operator.readiness() == (True, "ok")
        threads = list(h.operator._threads)
        assert len(threads) == len(h.operator.informers()) + 2 + 1  # informers, workers, timers
    finally:
        h.close()
    for thread in threads:
        thread.join(timeout=5)
    assert [t.name for t in threads if t.is_alive()] == []


# --- user name collisions -------------------------------------------------------------------------


def test_a_name_recorded_by_another_application_is_not_reused(harness: Harness) -> None:
    from aivenator.domain.names import kafka_username

    # Another application's Secret already records the name this app would get (generation 1).
    wanted = kafka_username(NAMESPACE, "app", 1).name
    harness.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "other-kafka",
                "namespace": NAMESPACE,
                "labels": {"type": "aivenator.aiven.nais.io", "app": "other", "team": NAMESPACE},
                "annotations": {
                    "kafka.aiven.nais.io/serviceUser": wanted,
                    "kafka.aiven.nais.io/pool": "dev-nais-dev",
                    "aivenator.aiven.nais.io/protected": "true",
                },
            },
            "data": {},
        }
    )
    harness.kube.apply(application(kafka=KAFKA))
    harness.operator.drain()
    secret = harness.secret("app-kafka-1") or {}
    used = secret["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"]
    assert used != wanted
    assert used[:-3] == wanted[:-3]  # only the 3-character suffix differs
    note = harness.condition("app", "NameFallback") or {}
    assert note.get("status") == "True" and "alternative 1" in note["message"]


# --- orphan sweep -----------------------------------------------------------------------------------


def test_orphan_sweep_deletes_only_unreferenced_users_of_our_scheme_after_the_grace_period() -> None:
    from aivenator.domain.names import kafka_username

    h = build(make_config(orphan_grace_period=600.0, orphan_sweep_dry_run=False))
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        in_use = (h.secret("app-kafka-1") or {})["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"]
        orphan = kafka_username(NAMESPACE, "gone", 7).name
        h.aiven.add_user("dev-nais-dev", "kafka", orphan)
        h.aiven.add_user("dev-nais-dev", "kafka", "someone-elses-user")
        h.container.aiven().invalidate("dev-nais-dev", "kafka")

        first = h.operator.orphans.run()
        assert first is not None and first.delete == ()  # first sighting starts the grace period
        h.clock.advance(601)
        h.container.aiven().invalidate("dev-nais-dev", "kafka")
        second = h.operator.orphans.run()
        assert second is not None
        assert [o.username for o in second.delete] == [orphan]
        users = h.aiven.users("dev-nais-dev", "kafka")
        assert orphan not in users
        assert in_use in users and "someone-elses-user" in users and "avnadmin" in users
    finally:
        h.close()


def test_orphan_sweep_in_dry_run_deletes_nothing() -> None:
    from aivenator.domain.names import kafka_username

    h = build(make_config(orphan_grace_period=0.0, orphan_sweep_dry_run=True))
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.drain()
        orphan = kafka_username(NAMESPACE, "gone", 7).name
        h.aiven.add_user("dev-nais-dev", "kafka", orphan)
        h.container.aiven().invalidate("dev-nais-dev", "kafka")
        h.operator.orphans.run()
        h.clock.advance(10)
        plan = h.operator.orphans.run()
        assert plan is not None and plan.delete == ()
        assert any(s.user.username == orphan and str(s.reason) == "dry_run" for s in plan.spared)
        assert orphan in h.aiven.users("dev-nais-dev", "kafka")
    finally:
        h.close()
