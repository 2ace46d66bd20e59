"""The Go operator's metric names are kept exactly: dashboards and alerts built on them keep working."""

from __future__ import annotations

import pytest
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from hypothesis import given
from hypothesis import strategies as st

GO_COUNTERS = {
    "aivenator_aiven_applications_processed": {"synchronization_state": "RolloutComplete"},
    "aivenator_aiven_applications_requeued": {"synchronization_state": "RolloutFailed", "reason": "retry"},
    "aivenator_service_users_created": {"pool": "dev-nais-dev", "service": "kafka"},
    "aivenator_service_users_deleted": {"pool": "dev-nais-dev", "service": "kafka"},
    "aivenator_kubernetes_resources_written": {"resource_type": "Secret", "namespace": "team-a"},
    "aivenator_kubernetes_resources_deleted": {"resource_type": "Secret", "namespace": "team-a"},
    "aivenator_kubernetes_resources_not_written": {"resource_type": "Secret", "namespace": "team-a"},
    "aivenator_processing_reason": {"processing_reason": "HashChanged"},
    "aivenator_service_users_updated": {"pool": "dev-nais-dev", "service": "valkey-team-a-cache"},
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
    metrics.processing_time.labels(synchronization_state="RolloutComplete").observe(0.2)
    metrics.handler_processing_time.labels(handler="kafka").observe(0.3)
    metrics.observe_kubernetes("Secret_Create", 0.05)
    metrics.aiven_latency.labels(operation="ServiceGet", status="200", pool="dev-nais-dev").observe(0.05)
    metrics.service_users_count.labels(pool="dev-nais-dev", service="kafka", username_convention="dot").set(4)
    metrics.set_secrets_managed({"team-a": 2})
    text = metrics.exposition().decode()
    for name in (
        "aivenator_aiven_application_processing_time_seconds_count",
        "aivenator_aiven_latency_bucket",
        "aivenator_aiven_handler_processing_time_seconds_bucket",
        "aivenator_kubernetes_latency_bucket",
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


def test_the_go_buckets_are_the_client_golang_series() -> None:
    """`LinearBuckets(1, 2, 20)` and `ExponentialBuckets(0.02, 2, 14)` as client_golang builds them."""
    metrics = Metrics()
    metrics.handler_processing_time.labels(handler="kafka").observe(40.0)
    metrics.observe_kubernetes("Secret_Get", 0.03)
    text = metrics.exposition().decode()
    handler = [
        line
        for line in text.splitlines()
        if line.startswith("aivenator_aiven_handler_processing_time_seconds_bucket")
    ]
    assert [line.split('le="')[1].split('"')[0] for line in handler] == [
        *(f"{1 + 2 * i}.0" for i in range(20)),
        "+Inf",
    ]
    assert handler[-2].endswith(" 0.0") and handler[-1].endswith(" 1.0")  # 40 s is above 39 s
    kube = [line for line in text.splitlines() if line.startswith("aivenator_kubernetes_latency_bucket")]
    assert kube[0] == 'aivenator_kubernetes_latency_bucket{le="0.02",operation="Secret_Get"} 0.0'
    assert kube[1] == 'aivenator_kubernetes_latency_bucket{le="0.04",operation="Secret_Get"} 1.0'
    assert 'le="163.84"' in kube[13] and len(kube) == 15


def test_service_users_updated_counts_only_an_accepted_access_control_change() -> None:
    metrics = Metrics()
    observer = AivenObserver(metrics)
    labels = {"pool": "dev-nais-dev", "service": "valkey-team-a-cache"}
    observer("ServiceUserCredentialsModify", "200", 0.01)  # outside a reconcile: no target
    with observer.context("dev-nais-dev", "valkey-team-a-cache"):
        observer("ServiceUserCredentialsModify", "503", 0.01)
        observer("ServiceUserCredentialsModify", "transport", 0.01)
        observer("ServiceUserCredentialsModify", "200", 0.01)
        observer("ServiceUserGet", "200", 0.01)
    assert metrics.value("aivenator_service_users_updated", labels) == 1.0


def test_aiven_latency_names_the_pool_being_worked_on() -> None:
    metrics = Metrics()
    observer = AivenObserver(metrics)
    observer("ProjectGet", "200", 0.01)
    with observer.context("nav-prod", "kafka"):
        observer("ServiceGet", "503", 0.03)
    assert (
        metrics.value(
            "aivenator_aiven_latency_count", {"operation": "ProjectGet", "status": "200", "pool": ""}
        )
        == 1
    )
    assert (
        metrics.value(
            "aivenator_aiven_latency_bucket",
            {"operation": "ServiceGet", "status": "503", "pool": "nav-prod", "le": "0.04"},
        )
        == 1
    )


def test_the_compact_per_application_gauge_exposes_what_a_prometheus_gauge_would() -> None:
    from aivenator.entrypoints.shells.metrics import CompactGauge
    from prometheus_client import CollectorRegistry, Gauge, generate_latest

    ours, theirs = CollectorRegistry(), CollectorRegistry()
    compact = CompactGauge("days_left", "Days left", ["namespace", "aiven_application"], ours)
    plain = Gauge("days_left", "Days left", ["namespace", "aiven_application"], registry=theirs)
    for gauge in (compact, plain):
        gauge.labels(namespace="team-a", aiven_application="a").set(12.5)
        gauge.labels(namespace="team-a", aiven_application="b").set(3)
        gauge.labels(namespace="team-b", aiven_application="a").set(-1.25)
        gauge.labels(namespace="team-a", aiven_application="b").set(2)
        gauge.remove("team-b", "a")
    assert generate_latest(ours) == generate_latest(theirs)
    with pytest.raises(ValueError):
        compact.labels(namespace="team-a")


_STATES = st.sampled_from(["RolloutComplete", "RolloutFailed", "Stalled"])


@given(
    increments=st.lists(st.tuples(_STATES, st.integers(1, 3)), max_size=8),
    gauges=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.floats(-5, 5)), max_size=6),
    removed=st.lists(st.sampled_from(["a", "b"]), max_size=2),
    asked=_STATES,
    asked_app=st.sampled_from(["a", "b", "c"]),
)
def test_a_direct_read_of_our_series_answers_as_a_registry_collect_would(
    increments: list[tuple[str, int]],
    gauges: list[tuple[str, float]],
    removed: list[str],
    asked: str,
    asked_app: str,
) -> None:
    """`Metrics.value` reads our own collectors without collecting the registry (the benchmark
    polls it every 20 ms during the cold start); the answer must not change."""
    metrics = Metrics()
    for state, amount in increments:
        metrics.applications_processed.labels(synchronization_state=state).inc(amount)
    for app, days in gauges:
        metrics.cert_days_left.labels(namespace="team-a", aiven_application=app).set(days)
    for app in removed:
        metrics.cert_days_left.remove("team-a", app)
    cases = [
        ("aivenator_aiven_applications_processed", {"synchronization_state": asked}),
        ("aivenator_cert_days_left", {"namespace": "team-a", "aiven_application": asked_app}),
    ]
    for name, labels in cases:
        expected = metrics.registry.get_sample_value(name, labels)
        assert metrics.value(name, labels) == (0.0 if expected is None else expected)
