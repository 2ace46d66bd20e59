"""The operator, wired through the container to the in-memory cluster and the Aiven simulator."""

from __future__ import annotations

import base64
from typing import Any

from tests.support.harness import (
    NAMESPACE,
    Harness,
    application,
    full_application,
    harness,
    seed_aiven_objects,
)

__all__ = ["harness"]

KAFKA_KEYS = {
    "KAFKA_CERTIFICATE",
    "KAFKA_PRIVATE_KEY",
    "KAFKA_CA",
    "KAFKA_BROKERS",
    "KAFKA_SCHEMA_REGISTRY",
    "KAFKA_SCHEMA_REGISTRY_USER",
    "KAFKA_SCHEMA_REGISTRY_PASSWORD",
    "KAFKA_CREDSTORE_PASSWORD",
    "KAFKA_SECRET_UPDATED",
    "client.keystore.p12",
    "client.truststore.jks",
    "AIVEN_SECRET_UPDATED",
    "AIVEN_CA",
}
OPENSEARCH_KEYS = {
    "OPEN_SEARCH_USERNAME",
    "OPEN_SEARCH_PASSWORD",
    "OPEN_SEARCH_URI",
    "OPEN_SEARCH_HOST",
    "OPEN_SEARCH_PORT",
    "OPEN_SEARCH_DASHBOARD_URI",
    "OPEN_SEARCH_DASHBOARD_HOST",
    "OPEN_SEARCH_DASHBOARD_PORT",
}
VALKEY_KEYS = {
    f"{prefix}_{key}_CACHE"
    for prefix in ("VALKEY", "REDIS")
    for key in ("USERNAME", "PASSWORD", "URI", "HOST", "PORT")
} | {"VALKEY_REPLICA_URI_CACHE", "VALKEY_REPLICA_HOST_CACHE", "VALKEY_REPLICA_PORT_CACHE"}


def test_an_app_with_all_three_services_converges(harness: Harness) -> None:
    seed_aiven_objects(harness)
    harness.kube.apply(full_application())
    harness.operator.drain()

    kafka = harness.secret("app-kafka-1")
    opensearch = harness.secret("app-os-1")
    valkey = harness.secret("app-valkey-1")
    assert kafka is not None and opensearch is not None and valkey is not None
    assert set(kafka["data"]) == KAFKA_KEYS
    assert set(opensearch["data"]) == OPENSEARCH_KEYS | {"AIVEN_SECRET_UPDATED", "AIVEN_CA"}
    assert set(valkey["data"]) == VALKEY_KEYS | {"AIVEN_SECRET_UPDATED", "AIVEN_CA"}
    for secret in (kafka, opensearch, valkey):
        meta = secret["metadata"]
        assert meta["labels"]["type"] == "aivenator.aiven.nais.io"
        assert meta["labels"]["app"] == "app"
        assert meta["labels"]["team"] == NAMESPACE
        assert "aivenator.aiven.nais.io/finalizer" in meta["finalizers"]

    kafka_user = kafka["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"]
    assert kafka_user in harness.aiven.users("dev-nais-dev", "kafka")
    os_user = base64.b64decode(opensearch["data"]["OPEN_SEARCH_USERNAME"]).decode()
    assert os_user in harness.aiven.users("dev-nais-dev", "opensearch-team-a-logs")
    acl = harness.aiven.opensearch_acl("dev-nais-dev", "opensearch-team-a-logs")
    assert os_user in str(acl)

    status = (harness.app("app") or {})["status"]
    assert status["synchronizationState"] == "RolloutComplete"
    assert status["synchronizedGeneration"] == (harness.app("app") or {})["metadata"]["generation"]
    assert (harness.condition("app", "Ready") or {})["status"] == "True"
    assert (harness.condition("app", "KafkaReady") or {})["status"] == "True"
    assert (
        harness.operator.metrics.value(
            "aivenator_aiven_applications_processed", {"synchronization_state": "RolloutComplete"}
        )
        >= 1
    )
    assert harness.operator.metrics.value("aivenator_secrets_managed", {"namespace": NAMESPACE}) == 3
    created = sum(
        harness.operator.metrics.value(
            "aivenator_service_users_created", {"pool": "dev-nais-dev", "service": s}
        )
        for s in ("kafka", "opensearch-team-a-logs", "valkey-team-a-cache")
    )
    assert created == 3


def test_an_unchanged_app_costs_nothing_on_resync(harness: Harness) -> None:
    seed_aiven_objects(harness)
    harness.kube.apply(full_application())
    harness.operator.drain()
    aiven_before, kube_before = harness.aiven_requests(), harness.kube_writes()

    assert harness.operator.resync() == 1
    processed = harness.operator.drain()

    assert processed >= 1  # the resync really reached the reconciler
    assert harness.aiven_requests() == aiven_before
    assert harness.kube_writes() == kube_before


def test_a_new_generation_gets_a_new_user_and_secret(harness: Harness) -> None:
    seed_aiven_objects(harness)
    harness.kube.apply(application(kafka={"pool": "dev-nais-dev", "secretName": "app-kafka-1"}))
    harness.operator.drain()
    first_user = (harness.secret("app-kafka-1") or {})["metadata"]["annotations"][
        "kafka.aiven.nais.io/serviceUser"
    ]

    harness.kube.apply(application(kafka={"pool": "dev-nais-dev", "secretName": "app-kafka-2"}))
    harness.operator.drain()

    second = harness.secret("app-kafka-2")
    assert second is not None
    second_user = second["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"]
    assert second_user != first_user
    assert second_user in harness.aiven.users("dev-nais-dev", "kafka")
    # Nothing uses the old Secret (grace period 0 here): the janitor removed it and the
    # finalizer deleted its user, so rotation leaves no orphan behind.
    assert harness.secret("app-kafka-1") is None
    assert first_user not in harness.aiven.users("dev-nais-dev", "kafka")
    assert (harness.app("app") or {})["status"]["synchronizedGeneration"] == 2


def test_clearing_the_hash_forces_a_resync(harness: Harness) -> None:
    harness.kube.apply(application(kafka={"pool": "dev-nais-dev", "secretName": "app-kafka-1"}))
    harness.operator.drain()
    app = harness.app("app") or {}
    app["status"]["synchronizationHash"] = ""
    harness.kube.apply(app)
    before = harness.aiven_requests()
    harness.operator.drain()
    assert harness.aiven_requests() > before
    assert (harness.app("app") or {})["status"]["synchronizationHash"]


def test_a_deleted_secret_is_recreated_and_its_user_deleted(harness: Harness) -> None:
    harness.kube.apply(application(kafka={"pool": "dev-nais-dev", "secretName": "app-kafka-1"}))
    harness.operator.drain()
    first = harness.secret("app-kafka-1") or {}
    user = first["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"]

    assert harness.kube.delete_secret(NAMESPACE, "app-kafka-1").unwrap() is None
    harness.operator.drain()

    metrics = harness.operator.metrics
    labels = {"pool": "dev-nais-dev", "service": "kafka"}
    # The finalizer deleted the Aiven user; the app still wants the Secret, so the same
    # generation's user was created again, with new credentials, and the Secret is back.
    assert metrics.value("aivenator_service_users_deleted", labels) == 1
    assert metrics.value("aivenator_service_users_created", labels) == 2
    deletes = harness.aiven.requests_matching("DELETE")
    assert any(user in r.path for r in deletes)
    recreated = harness.secret("app-kafka-1")
    assert recreated is not None and not recreated["metadata"].get("deletionTimestamp")
    assert recreated["metadata"]["annotations"]["kafka.aiven.nais.io/serviceUser"] == user
    assert (
        recreated["data"]["KAFKA_SCHEMA_REGISTRY_PASSWORD"] != first["data"]["KAFKA_SCHEMA_REGISTRY_PASSWORD"]
    )
    assert user in harness.aiven.users("dev-nais-dev", "kafka")


def test_janitor_passes_of_a_busy_namespace_coalesce(harness: Harness) -> None:
    """Each synced application asks for a janitor pass over its namespace. When passes are slow
    (a large namespace), asks made within ten times the last pass's duration wait and coalesce
    into one pass; the Secret that pass must collect is still collected once it runs."""
    operator = harness.operator
    real_run = operator.janitor.run
    runs: list[float] = []

    def slow_run(namespace: str | None = None) -> Any:
        runs.append(harness.clock.monotonic())
        harness.clock.advance(1.0)  # each pass "takes" one second of the operator's clock
        return real_run(namespace)

    operator.janitor.run = slow_run  # type: ignore[method-assign]  # a slower janitor, same passes
    harness.kube.apply(application(name="app-0", kafka={"pool": "dev-nais-dev", "secretName": "app-0-kafka"}))
    operator.drain()
    assert len(runs) == 1
    # a redeploy renames the Secret: the old one is unused now and due for collection
    harness.kube.apply(application(name="app-0", kafka={"pool": "dev-nais-dev", "secretName": "app-0-kafka-2"}))
    for i in range(1, 20):
        harness.kube.apply(application(name=f"app-{i}", kafka={"pool": "dev-nais-dev", "secretName": f"app-{i}-kafka"}))
        operator.drain()
    assert len(runs) == 1, runs  # 20 syncs, one pass: the other asks wait
    assert harness.secret("app-0-kafka") is not None
    harness.clock.advance(10.0)
    operator.drain()
    assert len(runs) == 2
    assert harness.secret("app-0-kafka") is None  # collected by the coalesced pass
