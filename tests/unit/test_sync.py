"""When to synchronize, and the status written afterwards."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aivenator.domain import labels
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import (
    Conflict,
    Endpoint,
    NotFound,
    Rejected,
    ServiceFacts,
    ServiceType,
    Throttled,
    Unavailable,
)
from aivenator.domain.janitor import SecretView, secret_view
from aivenator.domain.kubernetes_port import (
    KubeAlreadyExists,
    KubeConflict,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
)
from aivenator.domain.outcomes import (
    BACKOFF_CAP_SECONDS,
    Done,
    Invalid,
    Retry,
    WaitFor,
    backoff,
    combine,
    outcome_for_aiven_error,
    outcome_for_kube_error,
)
from aivenator.domain.parse import parse_application
from aivenator.domain.sync import (
    CONDITION_TYPE_PATTERN,
    PROCESSING_REASONS,
    AppStatus,
    Condition,
    ServiceResult,
    ServiceState,
    SyncKind,
    SyncReason,
    compute_invalid_status,
    compute_status,
    needs_sync,
    sections_of,
    spec_hash,
    status_changed,
    status_from_dict,
    status_patch_body,
    transitions,
    valkey_condition_type,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.unit import strategies as part_a
from tests.unit.workload_strategies import moments, raw_applications, rendered_example

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=5)
ALLOWED = frozenset({"dev-nais-dev"})


def parse(raw: dict[str, Any]) -> AivenApplication:
    parsed = parse_application(raw, ALLOWED)
    assert isinstance(parsed, Success), parsed
    app: AivenApplication = parsed.unwrap().app
    return app


def synced(raw: dict[str, Any]) -> AivenApplication:
    """The application as it looks after a successful synchronization."""
    app = parse(raw)
    return replace(app, status_hash=app.spec_hash)


def example() -> tuple[AivenApplication, dict[str, SecretView], dict[str, dict[str, Any]]]:
    raw_app, raw_secrets = rendered_example(NOW - timedelta(days=1))
    by_name = {s["metadata"]["name"]: s for s in raw_secrets}
    return synced(raw_app), {n: secret_view(s) for n, s in by_name.items()}, by_name


# --- needs_sync -----------------------------------------------------------------------------------


def test_an_application_with_the_secrets_the_operator_wrote_needs_nothing() -> None:
    app, views, _ = example()
    assert len(views) == 4
    assert needs_sync(app, views, NOW) is None


def test_a_cleared_hash_forces_a_resync() -> None:
    app, views, _ = example()
    reason = needs_sync(replace(app, status_hash=None), views, NOW)
    assert reason is not None and reason.kind is SyncKind.HASH_CLEARED


def test_a_changed_spec_forces_a_resync() -> None:
    app, views, _ = example()
    reason = needs_sync(replace(app, status_hash="something-else"), views, NOW)
    assert reason is not None and reason.kind is SyncKind.SPEC_CHANGED


def test_a_missing_secret_forces_a_resync() -> None:
    app, views, _ = example()
    name = app.valkey[1].secret_name
    reason = needs_sync(app, {**views, name: None}, NOW)
    assert reason is not None and (reason.kind, reason.detail) == (SyncKind.SECRET_MISSING, name)
    partial = {k: v for k, v in views.items() if k != name}
    assert needs_sync(app, partial, NOW) == reason


def test_the_processing_reason_uses_the_go_values_where_the_decision_is_the_same() -> None:
    """`aivenator_processing_reason`: the Go operator's HashChanged (its check is hash !=
    status hash, so a cleared hash is one too) and MissingSecret; new values otherwise."""
    app, views, _ = example()
    cleared = needs_sync(replace(app, status_hash=None), views, NOW)
    changed = needs_sync(replace(app, status_hash="something-else"), views, NOW)
    missing = needs_sync(app, {**views, app.valkey[1].secret_name: None}, NOW)
    assert cleared is not None and changed is not None and missing is not None
    assert (cleared.processing_reason, changed.processing_reason, missing.processing_reason) == (
        "HashChanged",
        "HashChanged",
        "MissingSecret",
    )
    assert SyncReason(SyncKind.SECRET_DRIFTED).processing_reason == "SecretDrifted"
    assert SyncReason(SyncKind.CERT_RENEWAL).processing_reason == "CertificateRenewal"
    assert set(PROCESSING_REASONS) == set(SyncKind)


def drifted(mutate: Any) -> SyncKind | None:
    app, views, raw = example()
    name = app.opensearch.secret_name if app.opensearch else ""
    changed = copy.deepcopy(raw[name])
    mutate(changed)
    reason = needs_sync(app, {**views, name: secret_view(changed)}, NOW)
    return reason.kind if reason else None


def test_an_edited_or_stripped_secret_is_drift() -> None:
    def drop_data_key(s: dict[str, Any]) -> None:
        del s["data"]["OPEN_SEARCH_PASSWORD"]

    def drop_common_key(s: dict[str, Any]) -> None:
        del s["data"]["AIVEN_CA"]

    def change_app_label(s: dict[str, Any]) -> None:
        s["metadata"]["labels"][labels.APP_LABEL] = "someone-else"

    def drop_type_label(s: dict[str, Any]) -> None:
        del s["metadata"]["labels"][labels.TYPE_LABEL]

    def bump_secret_generation(s: dict[str, Any]) -> None:
        s["metadata"]["labels"][labels.SECRET_GENERATION_LABEL] = "99"

    def drop_user_annotation(s: dict[str, Any]) -> None:
        del s["metadata"]["annotations"][labels.OPENSEARCH_SERVICE_USER]

    def foreign_service(s: dict[str, Any]) -> None:
        s["metadata"]["annotations"][labels.OPENSEARCH_SERVICE_NAME] = "opensearch-team-b-logs"

    def unprotect(s: dict[str, Any]) -> None:
        s["metadata"]["annotations"][labels.PROTECTED] = "true"

    def drop_finalizer(s: dict[str, Any]) -> None:
        s["metadata"]["finalizers"] = []

    for mutation in (
        drop_data_key,
        drop_common_key,
        change_app_label,
        drop_type_label,
        bump_secret_generation,
        drop_user_annotation,
        foreign_service,
        unprotect,
        drop_finalizer,
    ):
        assert drifted(mutation) is SyncKind.SECRET_DRIFTED, mutation.__name__


def test_what_others_add_and_values_alone_are_not_drift() -> None:
    def add_foreign_metadata(s: dict[str, Any]) -> None:
        s["metadata"]["labels"]["other.io/label"] = "x"
        s["metadata"]["annotations"]["other.io/annotation"] = "y"
        s["metadata"]["finalizers"].append("other.io/finalizer")
        s["data"]["EXTRA"] = "eA=="

    def new_correlation_id(s: dict[str, Any]) -> None:
        s["metadata"]["annotations"][labels.CORRELATION_ID] = "another-deploy"

    def change_a_value(s: dict[str, Any]) -> None:
        # Values are not compared (that would need the credentials); the hash and Aiven decide.
        s["data"]["OPEN_SEARCH_PORT"] = "OTk5OQ=="

    for mutation in (add_foreign_metadata, new_correlation_id, change_a_value):
        assert drifted(mutation) is None, mutation.__name__


def test_a_valkey_replica_is_optional_but_the_base_keys_are_not() -> None:
    app, views, raw = example()
    with_replica = app.valkey[0].secret_name
    body = copy.deepcopy(raw[with_replica])
    for key in [k for k in body["data"] if "_REPLICA_" in k]:
        del body["data"][key]
    assert needs_sync(app, {**views, with_replica: secret_view(body)}, NOW) is None
    del body["data"][next(k for k in body["data"] if k.startswith("REDIS_URI_"))]
    reason = needs_sync(app, {**views, with_replica: secret_view(body)}, NOW)
    assert reason is not None and reason.kind is SyncKind.SECRET_DRIFTED


def test_replica_keys_are_all_or_none_without_facts() -> None:
    app, views, raw = example()
    with_replica = app.valkey[0].secret_name
    body = copy.deepcopy(raw[with_replica])
    replica_keys = sorted(k for k in body["data"] if "_REPLICA_" in k)
    assert len(replica_keys) == 3
    del body["data"][replica_keys[0]]
    reason = needs_sync(app, {**views, with_replica: secret_view(body)}, NOW)
    assert reason is not None and reason.kind is SyncKind.SECRET_DRIFTED
    assert replica_keys[0] in reason.detail


def test_known_facts_make_replica_drift_exact() -> None:
    app, views, raw = example()
    section = next(s for s in sections_of(app) if s.secret_name == app.valkey[0].secret_name)
    endpoints = (("valkey", Endpoint("v.example", 1)), ("valkey_replica", Endpoint("r.example", 2)))
    replicated = ServiceFacts("dev-nais-dev", "svc", ServiceType.VALKEY, "RUNNING", endpoints)
    single = replace(replicated, endpoints=endpoints[:1])
    name = section.secret_name
    full = views[name]
    stripped_body = copy.deepcopy(raw[name])
    for key in [k for k in stripped_body["data"] if "_REPLICA_" in k]:
        del stripped_body["data"][key]
    stripped = secret_view(stripped_body)

    assert needs_sync(app, {**views, name: full}, NOW, service_facts={name: replicated}) is None
    assert needs_sync(app, {**views, name: stripped}, NOW, service_facts={name: single}) is None
    # The service has a replica, the Secret lost every replica key: only facts can tell.
    assert needs_sync(app, {**views, name: stripped}, NOW) is None
    lost = needs_sync(app, {**views, name: stripped}, NOW, service_facts={name: replicated})
    assert lost is not None and lost.kind is SyncKind.SECRET_DRIFTED and "missing" in lost.detail
    # The replica went away: its keys are stale.
    stale = needs_sync(app, {**views, name: full}, NOW, service_facts={name: single})
    assert stale is not None and stale.kind is SyncKind.SECRET_DRIFTED and "stale" in stale.detail


def test_a_secret_being_deleted_is_left_to_its_deletion_event() -> None:
    app, views, raw = example()
    name = app.valkey[0].secret_name
    body = copy.deepcopy(raw[name])
    body["metadata"]["deletionTimestamp"] = "2026-06-01T11:00:00Z"
    body["data"] = {}
    assert needs_sync(app, {**views, name: secret_view(body)}, NOW) is None


def test_an_application_being_deleted_is_not_synchronized() -> None:
    app, _, _ = example()
    assert needs_sync(replace(app, deletion_requested=True, status_hash=None), {}, NOW) is None


def test_a_kafka_certificate_inside_the_renewal_window_is_renewed() -> None:
    app, views, _ = example()
    assert app.kafka is not None
    name = app.kafka.secret_name
    far = {name: NOW + timedelta(days=60)}
    near = {name: NOW + timedelta(days=10)}
    assert needs_sync(app, views, NOW, far, timedelta(days=30)) is None
    reason = needs_sync(app, views, NOW, near, timedelta(days=30))
    assert reason is not None and reason.kind is SyncKind.CERT_RENEWAL and name in reason.detail
    # Certificates of Secrets that are not Kafka Secrets of this app do not count.
    assert needs_sync(app, views, NOW, {"unrelated": NOW}, timedelta(days=30)) is None


def test_spec_hash_ignores_key_order_and_sees_every_value() -> None:
    a = {"kafka": {"pool": "p", "secretName": "s"}, "protected": True}
    b = {"protected": True, "kafka": {"secretName": "s", "pool": "p"}}
    assert spec_hash(a) == spec_hash(b)
    assert spec_hash(a) != spec_hash({**a, "protected": False})


# --- compute_status --------------------------------------------------------------------------------

RAW_APP: dict[str, Any] = {
    "metadata": {"name": "orders", "namespace": "team-a", "generation": 4},
    "spec": {
        "kafka": {"pool": "dev-nais-dev", "secretName": "k"},
        "openSearch": {"instance": "logs", "secretName": "o"},
        "valkey": [{"instance": "cache", "secretName": "v1"}, {"instance": "sessions", "secretName": "v2"}],
    },
}


def all_ready(app: AivenApplication) -> list[ServiceResult]:
    return [ServiceResult(s.service_type, ServiceState.READY, instance=s.instance) for s in sections_of(app)]


def test_success_records_hash_generation_and_every_condition() -> None:
    app = parse(RAW_APP)
    status = compute_status(app, all_ready(app), NOW, None)
    assert status.synchronization_hash == app.spec_hash
    assert status.synchronization_state == "RolloutComplete"
    assert status.synchronization_time == "2026-06-01T12:00:00Z"
    assert status.synchronized_generation == status.observed_generation == 4
    truth = {c.type: c.status for c in status.conditions}
    assert truth == {
        "Succeeded": "True",
        "Ready": "True",
        "AivenFailure": "False",
        "LocalFailure": "False",
        "KafkaReady": "True",
        "OpenSearchReady": "True",
        "ValkeyReady-cache": "True",
        "ValkeyReady-sessions": "True",
    }


def test_one_failing_service_does_not_hide_the_others() -> None:
    app = parse(RAW_APP)
    previous = compute_status(app, all_ready(app), NOW, None)
    newer = replace(app, generation=5, spec_hash="new-hash")
    results = [
        ServiceResult(ServiceType.KAFKA, ServiceState.READY),
        ServiceResult(
            ServiceType.OPENSEARCH,
            ServiceState.WAITING,
            instance="logs",
            message="OpenSearch logs not RUNNING",
        ),
        ServiceResult(
            ServiceType.VALKEY, ServiceState.AIVEN_FAILURE, instance="cache", message="503 from Aiven"
        ),
        ServiceResult(ServiceType.VALKEY, ServiceState.READY, instance="sessions"),
    ]
    status = compute_status(newer, results, LATER, previous)
    assert status.synchronization_state == "RolloutFailed"
    assert status.synchronization_hash == previous.synchronization_hash, "a failed rollout keeps the old hash"
    assert status.synchronized_generation == 4 and status.observed_generation == 5
    assert status.synchronization_time == previous.synchronization_time
    by_type = {c.type: c for c in status.conditions}
    assert by_type["KafkaReady"].status == "True"
    assert by_type["ValkeyReady-sessions"].status == "True"
    assert (by_type["ValkeyReady-cache"].status, by_type["ValkeyReady-cache"].message) == (
        "False",
        "503 from Aiven",
    )
    assert by_type["OpenSearchReady"].reason == "Waiting"
    assert by_type["Ready"].status == by_type["Succeeded"].status == "False"
    assert by_type["AivenFailure"].status == "True" and "valkey/cache" in by_type["AivenFailure"].message
    assert by_type["LocalFailure"].status == "False"
    # Unchanged conditions keep their time; changed ones get the new one.
    assert by_type["KafkaReady"].last_update_time == "2026-06-01T12:00:00Z"
    assert by_type["ValkeyReady-cache"].last_update_time == "2026-06-01T17:00:00Z"
    assert {(t.type, t.old_status, t.new_status) for t in transitions(previous, status)} == {
        ("Succeeded", "True", "False"),
        ("Ready", "True", "False"),
        ("AivenFailure", "False", "True"),
        ("OpenSearchReady", "True", "False"),
        ("ValkeyReady-cache", "True", "False"),
    }


def test_an_unchanged_application_produces_an_identical_status() -> None:
    app = parse(RAW_APP)
    first = compute_status(app, all_ready(app), NOW, None)
    again = compute_status(app, all_ready(app), LATER, first)
    assert again == first
    assert not status_changed(first, again)
    assert transitions(first, again) == ()


def test_local_and_invalid_section_failures_have_their_own_conditions() -> None:
    app = parse(RAW_APP)
    results = [
        ServiceResult(ServiceType.KAFKA, ServiceState.LOCAL_FAILURE, message="Secret write refused"),
        ServiceResult(ServiceType.OPENSEARCH, ServiceState.INVALID, instance="logs", message="bad instance"),
    ]
    by_type = {c.type: c for c in compute_status(app, results, NOW, None).conditions}
    assert (
        by_type["LocalFailure"].status == "True" and "Secret write refused" in by_type["LocalFailure"].message
    )
    assert by_type["InvalidSpec"].status == "True" and "bad instance" in by_type["InvalidSpec"].message


def test_deprecated_secret_name_naming_fallback_and_certificate_renewal_are_reported() -> None:
    raw = copy.deepcopy(RAW_APP)
    raw["spec"]["secretName"] = "old-style"
    app = parse(raw)
    results = all_ready(app)
    results[0] = replace(
        results[0],
        name_note="compatible name would be 70 characters",
        cert_not_valid_after=NOW + timedelta(days=90),
        cert_renewed=True,
    )
    by_type = {c.type: c for c in compute_status(app, results, NOW, None).conditions}
    assert by_type["Deprecated"].status == "True"
    assert by_type["NameFallback"].status == "True" and "70 characters" in by_type["NameFallback"].message
    renewal = by_type["CertificateRenewal"]
    assert (renewal.status, renewal.reason) == ("True", "Renewed")
    assert "90 days left" in renewal.message and "2026-08-30T12:00:00Z" in renewal.message


def test_conditions_of_other_controllers_are_kept_and_stale_ones_of_ours_dropped() -> None:
    app = parse(RAW_APP)
    previous = AppStatus(
        conditions=(
            Condition("ValkeyReady-removed", "True", "Ready", "", "2026-01-01T00:00:00Z"),
            Condition("example.com/Audited", "True", "Checked", "", "2026-01-01T00:00:00Z"),
        )
    )
    status = compute_status(app, all_ready(app), NOW, previous)
    types = [c.type for c in status.conditions]
    assert "ValkeyReady-removed" not in types
    assert types[-1] == "example.com/Audited"
    assert ("ValkeyReady-removed", "True", None) in {
        (t.type, t.old_status, t.new_status) for t in transitions(previous, status)
    }


def test_an_unparseable_spec_gets_an_invalid_status_without_a_hash() -> None:
    status = compute_invalid_status(
        7, ["spec.kafka.pool: not allowed", "spec.valkey[0].secretName: required"], NOW, None
    )
    assert status.synchronization_state == "RolloutFailed"
    assert status.synchronization_hash is None and status.observed_generation == 7
    invalid = status.condition("InvalidSpec")
    assert invalid is not None and invalid.status == "True" and "not allowed" in invalid.message
    assert (
        compute_invalid_status(
            7, ["spec.kafka.pool: not allowed", "spec.valkey[0].secretName: required"], LATER, status
        )
        == status
    )


def test_status_round_trips_through_the_api_shape() -> None:
    app = parse(RAW_APP)
    status = compute_status(app, all_ready(app), NOW, None)
    assert status_from_dict(status.to_dict()) == status
    assert status_from_dict(None) == AppStatus()
    assert (
        status_from_dict({"conditions": [None, {"status": "True"}], "observedGeneration": "x"}) == AppStatus()
    )
    body = status_patch_body(AppStatus(observed_generation=3))
    assert body == {
        "status": {
            "synchronizationHash": None,
            "synchronizationState": None,
            "synchronizationTime": None,
            "synchronizedGeneration": None,
            "observedGeneration": 3,
            "conditions": [],
        }
    }


@settings(max_examples=100)
@given(st.text(min_size=0, max_size=80))
def test_valkey_condition_types_are_always_valid_condition_types(instance: str) -> None:
    condition_type = valkey_condition_type(instance)
    assert CONDITION_TYPE_PATTERN.match(condition_type)
    assert len(condition_type) <= 316


def test_valkey_condition_types_keep_ordinary_instance_names() -> None:
    assert valkey_condition_type("cache-1") == "ValkeyReady-cache-1"
    assert valkey_condition_type("a.b") == "ValkeyReady-a.b"
    assert re.fullmatch(r"ValkeyReady-[-A-Za-z0-9_.]+", valkey_condition_type("weird/name!"))


# --- property: stability ----------------------------------------------------------------------------

_states = st.sampled_from(list(ServiceState))


@settings(max_examples=60)
@given(st.one_of(raw_applications(), part_a.raw_applications()), st.data(), moments, st.integers(0, 10**6))
def test_status_is_stable_when_nothing_changes(
    raw: dict[str, Any], data: st.DataObject, now: datetime, later_by: int
) -> None:
    parsed = parse_application(raw, ALLOWED | part_a.ALLOWED_PROJECTS)
    assert isinstance(parsed, Success)
    app = parsed.unwrap().app
    results = [
        ServiceResult(
            s.service_type,
            data.draw(_states),
            instance=s.instance,
            message=data.draw(st.sampled_from(["", "boom"])),
            name_note=data.draw(st.sampled_from(["", "fallback"])),
        )
        for s in sections_of(app)
    ]
    previous = status_from_dict(
        data.draw(st.sampled_from([None, {"synchronizationHash": "old", "observedGeneration": 1}]))
    )
    first = compute_status(app, results, now, previous)
    later = now + timedelta(seconds=later_by)
    again = compute_status(app, results, later, first)
    via_api = compute_status(app, results, later, status_from_dict(first.to_dict()))
    assert again == first == via_api
    assert not status_changed(first, again)
    assert transitions(first, again) == ()
    assert all(CONDITION_TYPE_PATTERN.match(c.type.split("/")[-1]) for c in first.conditions)
    assert len({c.type for c in first.conditions}) == len(first.conditions)


# --- what the shell does after a sync step (aivenator.domain.outcomes) ---------------------------------------


def test_aiven_errors_map_to_queue_outcomes() -> None:
    throttled = outcome_for_aiven_error(Throttled(28.0), attempt=0)
    assert isinstance(throttled, Retry) and throttled.after == 28.0
    assert outcome_for_aiven_error(Throttled(0.5), attempt=3) == Retry(
        backoff(3), "throttled by Aiven: throttled"
    )
    unavailable = outcome_for_aiven_error(Unavailable("502"), attempt=2)
    assert isinstance(unavailable, Retry) and unavailable.after == backoff(2) and "502" in unavailable.reason
    assert outcome_for_aiven_error(Unavailable("x", retry_after=99.0)) == Retry(99.0, "Aiven unavailable: x")
    assert isinstance(outcome_for_aiven_error(Conflict("busy")), Retry)
    assert outcome_for_aiven_error(NotFound("no service"), what="service kafka") == WaitFor("service kafka")
    assert isinstance(outcome_for_aiven_error(Rejected("Invalid input", 400)), Invalid)
    forbidden = outcome_for_aiven_error(Rejected("Not a project member", 403))
    assert isinstance(forbidden, Retry) and forbidden.after >= 600

    assert combine([]) == Done()
    assert combine([Done(), Invalid("bad"), WaitFor("os", 30.0), Retry(5.0, "a"), Retry(2.0, "b")]) == Retry(
        2.0, "b"
    )
    assert combine([Done(), Invalid("bad"), WaitFor("os")]) == WaitFor("os")
    assert combine([Done(), Invalid("bad")]) == Invalid("bad")


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n) for n in range(12)]
    assert delays == sorted(delays) and delays[0] > 0
    assert max(delays) == BACKOFF_CAP_SECONDS == backoff(10_000)
    assert backoff(-5) == delays[0]


def test_kubernetes_errors_map_to_queue_outcomes() -> None:
    conflict = outcome_for_kube_error(KubeConflict("resourceVersion changed"))
    assert isinstance(conflict, Retry) and conflict.after <= 10.0
    assert isinstance(outcome_for_kube_error(KubeAlreadyExists()), Retry)
    assert isinstance(outcome_for_kube_error(KubeGone()), Retry)
    assert outcome_for_kube_error(KubeUnavailable("429", retry_after=7.0)) == Retry(
        7.0, "Kubernetes API unavailable: 429"
    )
    named = outcome_for_kube_error(KubeConflict("changed"), what="Secret s")
    assert isinstance(named, Retry) and named.reason.startswith("Secret s: ")
    assert outcome_for_kube_error(KubeNotFound("namespace gone"), what="namespace team-a") == WaitFor(
        "namespace team-a"
    )
    forbidden = outcome_for_kube_error(KubeForbidden("cannot patch secrets"))
    assert isinstance(forbidden, Retry) and forbidden.after >= 600
    # A rejected write is retried slowly, never dropped (a dropped finalizer would be stuck).
    rejected = outcome_for_kube_error(KubeInvalid("bad label"), attempt=0)
    assert isinstance(rejected, Retry) and rejected.after >= 60


def test_a_protected_expiring_application_with_fractional_seconds_is_not_drift() -> None:
    raw_app, raw_secrets = rendered_example(NOW - timedelta(days=1))
    raw_app["spec"]["protected"] = True
    raw_app["spec"]["expiresAt"] = "2026-09-01T10:00:00.750Z"
    app = synced(raw_app)
    views = {}
    for body in raw_secrets:
        meta = body["metadata"]
        meta["labels"][labels.PROTECTED] = "true"
        meta["annotations"][labels.PROTECTED] = "true"
        meta["annotations"][labels.WITH_TIME_LIMIT] = "true"
        meta["annotations"][labels.EXPIRES_AT] = "2026-09-01T10:00:00Z"
        views[meta["name"]] = secret_view(body)
    assert needs_sync(app, views, NOW) is None
    name = next(iter(views))
    moved = copy.deepcopy(next(b for b in raw_secrets if b["metadata"]["name"] == name))
    moved["metadata"]["annotations"][labels.EXPIRES_AT] = "2026-09-02T10:00:00Z"
    reason = needs_sync(app, {**views, name: secret_view(moved)}, NOW)
    assert reason is not None and reason.kind is SyncKind.SECRET_DRIFTED


def test_transition_time_moves_only_when_the_status_flips() -> None:
    app = parse(RAW_APP)
    failing = [
        ServiceResult(s.service_type, ServiceState.AIVEN_FAILURE, s.instance, "503") for s in sections_of(app)
    ]
    first = compute_status(app, failing, NOW, None)
    reworded = [replace(r, message="502") for r in failing]
    second = compute_status(app, reworded, LATER, first)
    ready = second.condition("Ready")
    assert ready is not None and ready.status == "False"
    assert ready.last_transition_time == "2026-06-01T12:00:00Z"
    assert ready.last_update_time == "2026-06-01T17:00:00Z", "the message changed"
    recovered = compute_status(app, all_ready(app), LATER + timedelta(hours=1), second)
    flipped = recovered.condition("Ready")
    assert flipped is not None and flipped.last_transition_time == "2026-06-01T18:00:00Z"


def test_a_previous_condition_without_times_gets_them() -> None:
    app = parse(RAW_APP)
    previous = status_from_dict(
        {"conditions": [{"type": "Ready", "status": "True", "reason": "AllServicesReady"}]}
    )
    ready = compute_status(app, all_ready(app), NOW, previous).condition("Ready")
    assert ready is not None
    assert ready.last_update_time == ready.last_transition_time == "2026-06-01T12:00:00Z"


def test_a_kafka_secret_in_the_go_operators_shape_is_not_drift() -> None:
    """The Go operator never wrote `kafka.aiven.nais.io/serviceName`; a takeover must not resync."""
    app, views, raw = example()
    assert app.kafka is not None
    name = app.kafka.secret_name
    go_shaped = copy.deepcopy(raw[name])
    del go_shaped["metadata"]["annotations"][labels.KAFKA_SERVICE_NAME]
    assert needs_sync(app, {**views, name: secret_view(go_shaped)}, NOW) is None
    del go_shaped["metadata"]["annotations"][labels.KAFKA_SERVICE_USER]
    reason = needs_sync(app, {**views, name: secret_view(go_shaped)}, NOW)
    assert reason is not None and reason.kind is SyncKind.SECRET_DRIFTED
