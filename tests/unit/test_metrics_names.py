"""The Go operator's metric names are kept exactly: dashboards and alerts built on them keep working."""

from __future__ import annotations

import pytest
from aivenator.entrypoints.shells.metrics import Metrics

GO_COUNTERS = {
    "aivenator_aiven_applications_processed": {"synchronization_state": "RolloutComplete"},
    "aivenator_aiven_applications_requeued": {"reason": "retry"},
    "aivenator_service_users_created": {"pool": "dev-nais-dev", "service": "kafka"},
    "aivenator_service_users_deleted": {"pool": "dev-nais-dev", "service": "kafka"},
    "aivenator_kubernetes_resources_written": {"resource_type": "Secret", "namespace": "team-a"},
    "aivenator_kubernetes_resources_deleted": {"resource_type": "Secret", "namespace": "team-a"},
}


@pytest.mark.parametrize("name", sorted(GO_COUNTERS))
def test_go_counters_are_exposed_under_their_bare_names(name: str) -> None:
    metrics = Metrics()
    counter = next(c for c in vars(metrics).values() if getattr(c, "name", None) == name)
    counter.labels(**GO_COUNTERS[name]).inc()
    counter.labels(**GO_COUNTERS[name]).inc(2)
    lines = metrics.exposition().decode().splitlines()
    assert f"# TYPE {name} counter" in lines
    assert any(line.startswith(f"# HELP {name} ") for line in lines)
    samples = [line for line in lines if line.startswith(name)]
    assert len(samples) == 1 and samples[0].endswith(" 3.0"), samples
    assert not any(line.startswith(f"{name}_total") or f"{name}_total " in line for line in lines)
    assert metrics.value(name, GO_COUNTERS[name]) == 3.0


def test_go_histograms_and_gauges_keep_their_names() -> None:
    metrics = Metrics()
    metrics.processing_time.observe(0.2)
    metrics.aiven_latency.labels(operation="ServiceGet", status="200").observe(0.05)
    metrics.service_users_count.labels(pool="dev-nais-dev", service="kafka").set(4)
    metrics.set_secrets_managed({"team-a": 2})
    text = metrics.exposition().decode()
    for name in (
        "aivenator_aiven_application_processing_time_seconds_count",
        "aivenator_aiven_latency_bucket",
        "aivenator_service_users_count",
        "aivenator_secrets_managed",
    ):
        assert f"\n{name}" in text, name


def test_a_counter_never_goes_down_and_labels_must_match() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError):
        metrics.service_users_created.labels(pool="p", service="s").inc(-1)
    with pytest.raises(ValueError):
        metrics.service_users_created.labels(pool="p")
