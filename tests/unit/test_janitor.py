"""The janitor deletes managed Secrets nothing uses, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aivenator.domain import labels
from aivenator.domain.janitor import (
    AppSecretRefs,
    CleanupPlan,
    DeleteReason,
    Deletion,
    KeepReason,
    app_secret_refs,
    app_secret_refs_from_raw,
    janitor_delay,
    parse_time,
    plan_cleanup,
    secret_view,
)
from aivenator.domain.parse import parse_application
from aivenator.domain.references import WorkloadRefs, workload_refs
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.unit.strategies import ALLOWED_PROJECTS
from tests.unit.strategies import raw_applications as valid_raw_applications
from tests.unit.workload_strategies import (
    GeneratedSecret,
    GeneratedWorkload,
    grace_periods,
    moments,
    namespaces,
    raw_applications,
    rendered_example,
    secret_names,
    unique_secrets,
    workloads,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=1)
OLD = "2026-05-01T00:00:00Z"


def secret(
    name: str = "s",
    namespace: str = "team-a",
    *,
    created: str | None = OLD,
    annotations: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "resourceVersion": "42",
        "labels": {labels.TYPE_LABEL: labels.TYPE_VALUE, labels.APP_LABEL: "app", **(extra_labels or {})},
        "annotations": annotations or {},
        "finalizers": [labels.FINALIZER],
    }
    if created is not None:
        metadata["creationTimestamp"] = created
    if deleting:
        metadata["deletionTimestamp"] = "2026-06-01T11:00:00Z"
    return {"metadata": metadata, "data": {"AIVEN_CA": "c2VjcmV0LXZhbHVl"}}


def plan(*raw_secrets: dict[str, Any], apps: Any = (), refs: Any = (), now: datetime = NOW) -> CleanupPlan:
    return plan_cleanup([secret_view(s) for s in raw_secrets], apps, refs, now, GRACE)


def kept_reason(result: CleanupPlan, name: str) -> KeepReason:
    return next(k.reason for k in result.kept if k.name == name)


# --- examples ----------------------------------------------------------------------------------


def test_an_unused_old_secret_is_deleted_with_preconditions() -> None:
    result = plan(secret("unused"))
    assert result.deletions == (Deletion("team-a", "unused", "uid-unused", "42", DeleteReason.UNUSED),)
    assert result.counts.deleted == 1


def test_a_secret_referenced_by_a_deployment_env_from_is_kept() -> None:
    deployment = {
        "metadata": {"name": "web", "namespace": "team-a"},
        "spec": {"template": {"spec": {"containers": [{"envFrom": [{"secretRef": {"name": "used"}}]}]}}},
    }
    result = plan(secret("used"), refs=[workload_refs("Deployment", deployment)])
    assert result.deletions == ()
    assert kept_reason(result, "used") is KeepReason.IN_USE_BY_WORKLOAD
    assert result.counts.in_use == 1


def test_a_reference_in_another_namespace_does_not_keep_a_secret() -> None:
    other = WorkloadRefs("team-b", "Pod", "p", frozenset({"shared"}))
    result = plan(secret("shared", "team-a"), refs=[other])
    assert [d.namespace for d in result.deletions] == ["team-a"]


def test_a_secret_named_by_an_application_in_its_namespace_is_kept() -> None:
    app = AppSecretRefs("team-a", "app", frozenset({"named"}))
    foreign_app = AppSecretRefs("team-b", "app", frozenset({"other"}))
    result = plan(secret("named"), secret("other"), apps=[app, foreign_app])
    assert kept_reason(result, "named") is KeepReason.IN_USE_BY_APPLICATION
    assert [d.name for d in result.deletions] == ["other"]


def test_parsed_applications_count_every_secret_name_including_the_deprecated_one() -> None:
    raw = {
        "metadata": {"name": "app", "namespace": "team-a", "generation": 1},
        "spec": {
            "secretName": "legacy",
            "kafka": {"pool": "dev-nais-dev", "secretName": "k"},
            "valkey": [{"instance": "cache", "secretName": "v"}],
        },
    }
    parsed = parse_application(raw, frozenset({"dev-nais-dev"}))
    assert isinstance(parsed, Success)
    result = plan(secret("legacy"), secret("k"), secret("v"), secret("gone"), apps=[parsed.unwrap().app])
    assert [d.name for d in result.deletions] == ["gone"]
    # what the janitor shell reads instead of parsing: the same names, the deprecated one too
    assert app_secret_refs_from_raw(raw) == app_secret_refs(parsed.unwrap().app)


def test_an_application_whose_spec_does_not_parse_still_claims_its_secrets() -> None:
    raw = {
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {"kafka": {"pool": "not-allowed", "secretName": "k"}, "openSearch": {"secretName": "os"}},
    }
    assert not isinstance(parse_application(raw, frozenset({"dev-nais-dev"})), Success)
    refs = app_secret_refs_from_raw(raw)
    assert refs == AppSecretRefs("team-a", "app", frozenset({"k", "os"}))
    assert plan(secret("k"), secret("os"), apps=[refs]).deletions == ()


@given(valid_raw_applications())
def test_the_raw_refs_of_an_application_that_parses_are_its_sections_names(raw: dict[str, Any]) -> None:
    # The janitor reads every application's Secret names from the raw spec (no full parse).
    parsed = parse_application(raw, ALLOWED_PROJECTS)
    assert isinstance(parsed, Success)
    assert app_secret_refs_from_raw(raw) == app_secret_refs(parsed.unwrap().app)


def test_raw_application_refs_survive_garbage() -> None:
    assert app_secret_refs_from_raw({}).secret_names == frozenset()
    weird = {
        "metadata": None,
        "spec": {"kafka": "x", "valkey": [None, {"secretName": 3}, {"secretName": "v"}]},
    }
    assert app_secret_refs_from_raw(weird).secret_names == {"v"}


def test_a_protected_secret_is_kept() -> None:
    result = plan(secret("p", annotations={labels.PROTECTED: "true"}))
    assert kept_reason(result, "p") is KeepReason.PROTECTED
    assert result.counts.protected == 1


def test_the_protected_label_alone_also_protects() -> None:
    result = plan(secret("p", extra_labels={labels.PROTECTED: "true"}))
    assert kept_reason(result, "p") is KeepReason.PROTECTED


def test_a_protected_secret_with_an_expired_time_limit_is_deleted() -> None:
    annotations = {
        labels.PROTECTED: "true",
        labels.WITH_TIME_LIMIT: "true",
        labels.EXPIRES_AT: "2026-05-31T00:00:00Z",
    }
    result = plan(secret("p", annotations=annotations))
    assert [(d.name, d.reason) for d in result.deletions] == [("p", DeleteReason.PROTECTION_EXPIRED)]


def test_a_protected_secret_with_a_future_time_limit_is_kept() -> None:
    annotations = {
        labels.PROTECTED: "true",
        labels.WITH_TIME_LIMIT: "true",
        labels.EXPIRES_AT: "2026-07-01T00:00:00Z",
    }
    result = plan(secret("p", annotations=annotations))
    assert kept_reason(result, "p") is KeepReason.PROTECTED_WITH_TIME_LIMIT
    assert result.counts.protected_with_time_limit == 1


def test_an_unparseable_or_missing_expiry_keeps_a_time_limited_secret() -> None:
    broken = {labels.PROTECTED: "true", labels.WITH_TIME_LIMIT: "true", labels.EXPIRES_AT: "next tuesday"}
    missing = {labels.PROTECTED: "true", labels.WITH_TIME_LIMIT: "true"}
    result = plan(secret("broken", annotations=broken), secret("missing", annotations=missing))
    assert result.deletions == ()
    assert result.counts.protected_with_time_limit == 2


def test_an_expiry_without_protection_does_not_matter() -> None:
    annotations = {
        labels.PROTECTED: "false",
        labels.WITH_TIME_LIMIT: "true",
        labels.EXPIRES_AT: "2099-01-01T00:00:00Z",
    }
    assert [d.name for d in plan(secret("p", annotations=annotations)).deletions] == ["p"]


def test_a_young_secret_is_kept_for_the_grace_period() -> None:
    young = secret("young", created="2026-06-01T11:30:00Z")
    old_enough = secret("old", created="2026-06-01T11:00:00Z")
    unknown_age = secret("unknown", created=None)
    result = plan(young, old_enough, unknown_age)
    assert [d.name for d in result.deletions] == ["old"]
    assert kept_reason(result, "young") is KeepReason.TOO_YOUNG
    assert kept_reason(result, "unknown") is KeepReason.TOO_YOUNG
    assert result.counts.too_young == 2


def test_a_secret_already_being_deleted_is_skipped() -> None:
    result = plan(secret("going", deleting=True))
    assert result.deletions == ()
    assert kept_reason(result, "going") is KeepReason.BEING_DELETED


def test_a_secret_without_the_managed_label_is_never_deleted() -> None:
    raw = secret("foreign")
    del raw["metadata"]["labels"][labels.TYPE_LABEL]
    assert kept_reason(plan(raw), "foreign") is KeepReason.NOT_MANAGED


def test_secret_view_keeps_metadata_and_key_names_but_no_values() -> None:
    view = secret_view(secret("s"))
    assert view.data_keys == {"AIVEN_CA"}
    assert view.creation_timestamp == datetime(2026, 5, 1, tzinfo=UTC)
    assert view.has_finalizer and view.managed and not view.deletion_requested
    assert "c2VjcmV0LXZhbHVl" not in repr(view) and "secret-value" not in repr(view)


def test_secret_view_tolerates_an_empty_object() -> None:
    view = secret_view({})
    assert (view.namespace, view.name, view.labels, view.finalizers, view.data_keys) == (
        "",
        "",
        (),
        (),
        frozenset(),
    )
    assert view.creation_timestamp is None


def test_parse_time_accepts_rfc3339_and_rejects_garbage() -> None:
    assert parse_time("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T05:04:05+02:00") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for bad in ("", "  ", "nope", "2026-13-01T00:00:00Z", None, 5):
        assert parse_time(bad) is None


# --- properties ----------------------------------------------------------------------------------


def expected_deleted(
    s: GeneratedSecret, referenced: dict[str, set[str]], now: datetime, grace: timedelta
) -> bool:
    """The rules of product spec section 7, written independently of the implementation."""
    if s.deleting or not s.managed or s.name in referenced.get(s.namespace, set()):
        return False
    if s.protected and not (s.with_time_limit and s.expires_at is not None and s.expires_at <= now):
        return False
    return s.created is not None and now - s.created >= grace


@settings(max_examples=70)
@given(
    unique_secrets(),
    st.lists(workloads(), max_size=4),
    st.lists(raw_applications(), max_size=4),
    moments,
    grace_periods,
)
def test_the_plan_follows_the_rules_exactly(
    secrets: list[GeneratedSecret],
    loads: list[GeneratedWorkload],
    apps: list[dict[str, Any]],
    now: datetime,
    grace: timedelta,
) -> None:
    referenced: dict[str, set[str]] = {}
    for w in loads:
        referenced.setdefault(w.namespace, set()).update(w.expected)
    app_refs = [app_secret_refs_from_raw(a) for a in apps]
    for a in app_refs:
        referenced.setdefault(a.namespace, set()).update(a.secret_names)

    result = plan_cleanup(
        [secret_view(s.raw) for s in secrets],
        app_refs,
        [workload_refs(w.kind, w.obj) for w in loads],
        now,
        grace,
    )

    deleted = {(d.namespace, d.name) for d in result.deletions}
    for s in secrets:
        assert ((s.namespace, s.name) in deleted) == expected_deleted(s, referenced, now, grace), s
    assert len(result.deletions) + len(result.kept) == len(secrets)
    counts = result.counts
    assert counts.deleted == len(result.deletions)
    assert (
        counts.in_use
        + counts.protected
        + counts.protected_with_time_limit
        + counts.too_young
        + counts.being_deleted
        + counts.not_managed
        + counts.deleted
        == len(secrets)
    )


@settings(max_examples=40)
@given(unique_secrets(), st.lists(workloads(), max_size=4), moments, grace_periods)
def test_a_referenced_secret_is_never_deleted(
    secrets: list[GeneratedSecret], loads: list[GeneratedWorkload], now: datetime, grace: timedelta
) -> None:
    result = plan_cleanup(
        [secret_view(s.raw) for s in secrets], [], [workload_refs(w.kind, w.obj) for w in loads], now, grace
    )
    for d in result.deletions:
        assert not any(w.namespace == d.namespace and d.name in w.expected for w in loads)


@settings(max_examples=40)
@given(unique_secrets(), moments, grace_periods)
def test_a_protected_unexpired_secret_is_never_deleted(
    secrets: list[GeneratedSecret], now: datetime, grace: timedelta
) -> None:
    result = plan_cleanup([secret_view(s.raw) for s in secrets], [], [], now, grace)
    by_key = {(s.namespace, s.name): s for s in secrets}
    for d in result.deletions:
        s = by_key[(d.namespace, d.name)]
        if s.protected:
            assert s.with_time_limit and s.expires_at is not None and s.expires_at <= now


@settings(max_examples=40)
@given(unique_secrets(), namespaces, st.sets(secret_names), moments)
def test_references_from_another_namespace_change_nothing(
    secrets: list[GeneratedSecret], elsewhere: str, names: set[str], now: datetime
) -> None:
    views = [secret_view(s.raw) for s in secrets if s.namespace != elsewhere]
    without = plan_cleanup(views, [], [], now, GRACE)
    foreign = [WorkloadRefs(elsewhere, "Pod", "p", frozenset(names))]
    foreign_apps = [AppSecretRefs(elsewhere, "app", frozenset(names))]
    with_foreign = plan_cleanup(views, foreign_apps, foreign, now, GRACE)
    assert with_foreign.deletions == without.deletions


def test_the_secrets_the_operator_wrote_are_kept_while_their_application_names_them() -> None:
    raw_app, raw_secrets = rendered_example(NOW - timedelta(days=3))
    views = [secret_view(s) for s in raw_secrets]
    with_app = plan_cleanup(views, [app_secret_refs_from_raw(raw_app)], [], NOW, GRACE)
    assert with_app.deletions == () and with_app.counts.in_use == 4
    without_app = plan_cleanup(views, [], [], NOW, GRACE)
    assert sorted(d.name for d in without_app.deletions) == sorted(v.name for v in views)
    assert all(d.uid and d.resource_version for d in without_app.deletions)


def test_a_namespace_never_swept_is_swept_at_once() -> None:
    assert janitor_delay(None, 0.0, now=50.0) == 0.0


def test_after_a_slow_pass_the_next_waits_until_passes_had_a_tenth_of_the_time() -> None:
    # a pass started at t=100 and took 2 s: the next may start at 100 + 2 / 0.1 = 120
    assert janitor_delay(100.0, 2.0, now=102.0) == pytest.approx(18.0)
    assert janitor_delay(100.0, 2.0, now=119.0) == pytest.approx(1.0)
    assert janitor_delay(100.0, 2.0, now=125.0) == 0.0


def test_a_pass_of_no_measurable_time_never_delays_the_next() -> None:
    assert janitor_delay(100.0, 0.0, now=100.0) == 0.0


@given(
    st.floats(0, 1e6), st.floats(0, 100), st.floats(0, 1e6), st.floats(0.01, 1.0)
)
def test_passes_never_take_more_than_their_share(started: float, took: float, now: float, share: float) -> None:
    delay = janitor_delay(started, took, now, share)
    assert delay >= 0.0
    if now >= started:
        # the next pass starts no sooner than took / share after the last one started
        assert now + delay >= started + took / share - 1e-6 * max(1.0, started + took / share)
