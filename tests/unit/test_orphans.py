"""The orphan sweep deletes only our own unreferenced, old-enough users."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aivenator.domain import labels
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl
from aivenator.domain.application import Access
from aivenator.domain.audit import expected_users, recorded_users
from aivenator.domain.facts import ServiceFacts, ServiceType
from aivenator.domain.finalizer import requested_actions
from aivenator.domain.janitor import SecretView, secret_view
from aivenator.domain.names import (
    BUILTIN_USERS,
    NAME_ALTERNATIVES,
    is_builtin,
    kafka_username,
    matches_our_scheme,
    opensearch_username,
    username_candidates,
    valkey_username,
)
from aivenator.domain.orphans import SpareReason, UserKey, plan_orphan_sweep, referenced_users
from aivenator.domain.parse import parse_application
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import ServiceConfig
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.unit.workload_strategies import APP_NAMES, NAMESPACES, rendered_example

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=1)
LONG_AGO = NOW - timedelta(days=30)
PROJECT = "dev-nais-dev"
KAFKA_USER = "kafka.aiven.nais.io/serviceUser"


def kafka_service(*users: str) -> ServiceFacts:
    return ServiceFacts(PROJECT, "dev-nais-dev-kafka", ServiceType.KAFKA, "RUNNING", usernames=users)


def valkey_service(*users: str) -> ServiceFacts:
    return ServiceFacts(PROJECT, "valkey-team-a-cache", ServiceType.VALKEY, "RUNNING", usernames=users)


def example_secrets() -> list[SecretView]:
    _, raw = rendered_example(NOW - timedelta(days=2))
    return [secret_view(s) for s in raw]


def seen_long_ago(*services: ServiceFacts) -> dict[UserKey, datetime]:
    return {UserKey(s.project, s.name, u): LONG_AGO for s in services for u in s.usernames}


def reasons(plan: Any) -> dict[str, SpareReason]:
    return {s.user.username: s.reason for s in plan.spared}


def test_users_named_by_managed_secrets_are_referenced() -> None:
    refs = referenced_users(example_secrets())
    assert (ServiceType.KAFKA, kafka_username("team-a", "orders", 3).name) in refs
    assert (ServiceType.OPENSEARCH, opensearch_username("team-a", "orders", 3, Access.READWRITE).name) in refs
    assert (ServiceType.VALKEY, valkey_username("orders", 3, Access.READ).name) in refs


def test_an_old_generations_user_is_deleted_and_the_current_one_spared() -> None:
    current = kafka_username("team-a", "orders", 3).name
    previous = kafka_username("team-a", "orders", 2).name
    service = kafka_service(current, previous)
    plan = plan_orphan_sweep([service], example_secrets(), seen_long_ago(service), NOW, GRACE, dry_run=False)
    assert [(o.username, o.service, o.service_type) for o in plan.delete] == [
        (previous, "dev-nais-dev-kafka", ServiceType.KAFKA)
    ]
    assert "no managed Secret" in plan.delete[0].reason
    assert reasons(plan) == {current: SpareReason.REFERENCED}


def test_built_in_and_foreign_users_are_never_deleted() -> None:
    users = (*sorted(BUILTIN_USERS), "human-admin", "debezium", "x")
    service = kafka_service(*users)
    plan = plan_orphan_sweep([service], [], seen_long_ago(service), NOW, GRACE, dry_run=False)
    assert plan.delete == ()
    assert {u: r for u, r in reasons(plan).items() if u in BUILTIN_USERS} == dict.fromkeys(
        BUILTIN_USERS, SpareReason.BUILTIN
    )
    assert reasons(plan)["human-admin"] is SpareReason.FOREIGN_SCHEME


def test_a_user_aiven_reports_as_primary_is_never_deleted_whatever_its_name() -> None:
    # A name that fits our Valkey scheme, but Aiven says it is the service's built-in user.
    admin_like = valkey_username("orders", 2, Access.ADMIN).name
    service = replace(valkey_service(admin_like), builtin_usernames=(admin_like,))
    plan = plan_orphan_sweep([service], [], seen_long_ago(service), NOW, GRACE, dry_run=False)
    assert plan.delete == ()
    assert reasons(plan) == {admin_like: SpareReason.BUILTIN}
    without_type = valkey_service(admin_like)
    plan = plan_orphan_sweep([without_type], [], seen_long_ago(without_type), NOW, GRACE, dry_run=False)
    assert [o.username for o in plan.delete] == [admin_like]


def test_a_user_first_seen_now_or_recently_is_spared() -> None:
    fresh = valkey_username("orders", 7, Access.READ).name
    recent = valkey_username("orders", 8, Access.READ).name
    service = valkey_service(fresh, recent)
    first_seen = {UserKey(PROJECT, service.name, recent): NOW - timedelta(hours=3)}
    plan = plan_orphan_sweep([service], [], first_seen, NOW, GRACE, dry_run=False)
    assert plan.delete == ()
    assert reasons(plan) == {fresh: SpareReason.FIRST_SEEN_NOW, recent: SpareReason.TOO_YOUNG}
    assert dict(plan.first_seen) == {
        UserKey(PROJECT, service.name, fresh): NOW,
        UserKey(PROJECT, service.name, recent): NOW - timedelta(hours=3),
    }


def test_the_first_seen_table_forgets_users_that_are_gone() -> None:
    service = valkey_service("orders-r-abc")
    stale = {UserKey(PROJECT, service.name, "deleted-meanwhile-r-xyz"): LONG_AGO}
    plan = plan_orphan_sweep([service], [], stale, NOW, GRACE, dry_run=False)
    assert set(dict(plan.first_seen)) == {UserKey(PROJECT, service.name, "orders-r-abc")}


def test_users_an_application_is_about_to_use_are_spared() -> None:
    user = valkey_username("orders", 9, Access.ADMIN).name
    service = valkey_service(user)
    plan = plan_orphan_sweep(
        [service],
        [],
        seen_long_ago(service),
        NOW,
        GRACE,
        dry_run=False,
        expected_users=[UserKey(PROJECT, service.name, user)],
    )
    assert plan.delete == () and reasons(plan) == {user: SpareReason.EXPECTED}


def test_a_dry_run_deletes_nothing_and_says_what_it_would_do() -> None:
    orphan = kafka_username("team-a", "orders", 1).name
    service = kafka_service(orphan)
    plan = plan_orphan_sweep([service], [], seen_long_ago(service), NOW, GRACE, dry_run=True)
    assert plan.delete == ()
    (spared,) = plan.spared
    assert spared.reason is SpareReason.DRY_RUN and spared.detail.startswith("would delete")


def test_a_secret_being_deleted_still_protects_its_users_from_the_sweep() -> None:
    user = kafka_username("team-a", "orders", 3).name
    body = {
        "metadata": {
            "name": "s",
            "namespace": "team-a",
            "deletionTimestamp": "2026-06-01T00:00:00Z",
            "annotations": {labels.KAFKA_SERVICE_USER: user, labels.KAFKA_POOL: PROJECT},
        }
    }
    service = kafka_service(user)
    plan = plan_orphan_sweep(
        [service], [secret_view(body)], seen_long_ago(service), NOW, GRACE, dry_run=False
    )
    assert plan.delete == ()


# --- property ----------------------------------------------------------------------------------------


def _our_names(service_type: ServiceType) -> list[str]:
    names = []
    for ns in NAMESPACES:
        for app in APP_NAMES:
            for gen in (1, 2):
                if service_type is ServiceType.KAFKA:
                    names.append(kafka_username(ns, app, gen).name)
                elif service_type is ServiceType.OPENSEARCH:
                    names.append(opensearch_username(ns, app, gen, Access.READ).name)
                else:
                    names.append(valkey_username(app, gen, Access.WRITE).name)
    return names


_POOLS = {t: _our_names(t) + sorted(BUILTIN_USERS) + ["human", "ops_team", "grafana-ro"] for t in ServiceType}
_SERVICES = {
    ServiceType.KAFKA: "kafka",
    ServiceType.OPENSEARCH: "opensearch-a-logs",
    ServiceType.VALKEY: "valkey-a-cache",
}


def _annotations(service_type: ServiceType, user: str) -> dict[str, str]:
    if service_type is ServiceType.KAFKA:
        return {labels.KAFKA_SERVICE_USER: user, labels.KAFKA_POOL: PROJECT}
    if service_type is ServiceType.OPENSEARCH:
        return {
            labels.OPENSEARCH_SERVICE_USER: user,
            labels.OPENSEARCH_SERVICE_NAME: "opensearch-a-logs",
            labels.OPENSEARCH_PROJECT: PROJECT,
        }
    return {
        labels.valkey_service_user_annotation("cache"): user,
        labels.valkey_service_name_annotation("cache"): "valkey-a-cache",
        labels.VALKEY_PROJECT: PROJECT,
    }


@st.composite
def sweep_inputs(
    draw: st.DrawFn,
) -> tuple[list[ServiceFacts], list[SecretView], dict[UserKey, datetime], set[tuple[ServiceType, str]]]:
    services = []
    first_seen: dict[UserKey, datetime] = {}
    for service_type in draw(st.sets(st.sampled_from(list(ServiceType)), min_size=1)):
        users = draw(st.lists(st.sampled_from(_POOLS[service_type]), max_size=8, unique=True))
        facts = ServiceFacts(
            PROJECT, _SERVICES[service_type], service_type, "RUNNING", usernames=tuple(users)
        )
        services.append(facts)
        for user in users:
            if draw(st.integers(0, 4)):
                first_seen[UserKey(PROJECT, facts.name, user)] = NOW - timedelta(
                    hours=draw(st.integers(0, 72))
                )
    referenced: set[tuple[ServiceType, str]] = set()
    secrets = []
    for index in range(draw(st.integers(0, 4))):
        present = [(f.service_type, u) for f in services for u in f.usernames]
        pick_present = bool(present) and draw(st.integers(0, 3)) > 0
        if pick_present:
            service_type, user = draw(st.sampled_from(present))
        else:
            service_type = draw(st.sampled_from(list(ServiceType)))
            user = draw(st.sampled_from(_POOLS[service_type]))
        referenced.add((service_type, user))
        body = {
            "metadata": {
                "name": f"s{index}",
                "namespace": "a",
                "annotations": _annotations(service_type, user),
            }
        }
        secrets.append(secret_view(body))
    return services, secrets, first_seen, referenced


@settings(max_examples=80)
@given(sweep_inputs(), st.booleans())
def test_the_sweep_never_deletes_a_referenced_foreign_young_or_built_in_user(
    case: Any, dry_run: bool
) -> None:
    services, secrets, first_seen, referenced = case
    plan = plan_orphan_sweep(services, secrets, first_seen, NOW, GRACE, dry_run)
    types = {s.name: s.service_type for s in services}
    for orphan in plan.delete:
        assert not dry_run
        assert not is_builtin(orphan.username)
        assert matches_our_scheme(types[orphan.service], orphan.username)
        assert (types[orphan.service], orphan.username) not in referenced
        first = first_seen[UserKey(orphan.project, orphan.service, orphan.username)]
        assert NOW - first >= GRACE
        assert orphan.reason
    decided = [o.key for o in plan.delete] + [s.user for s in plan.spared]
    every_user = [UserKey(s.project, s.name, u) for s in services for u in s.usernames]
    assert sorted(decided) == sorted(every_user), "every user gets exactly one decision"
    assert set(dict(plan.first_seen)) == set(every_user)
    assert all(dict(plan.first_seen)[k] == first_seen.get(k, NOW) for k in every_user)


def test_deleting_an_orphaned_opensearch_user_removes_its_acl_entry_first() -> None:
    user = opensearch_username("team-a", "orders", 1, Access.READ).name
    service = ServiceFacts(
        PROJECT, "opensearch-team-a-logs", ServiceType.OPENSEARCH, "RUNNING", usernames=(user,)
    )
    (orphan,) = plan_orphan_sweep([service], [], seen_long_ago(service), NOW, GRACE, dry_run=False).delete
    assert orphan.actions() == (
        RemoveOpenSearchAcl(PROJECT, service.name, user),
        DeleteServiceUser(ServiceType.OPENSEARCH, PROJECT, service.name, user),
    )
    kafka_orphan = kafka_username("team-a", "orders", 1).name
    kafka = kafka_service(kafka_orphan)
    (k,) = plan_orphan_sweep([kafka], [], seen_long_ago(kafka), NOW, GRACE, dry_run=False).delete
    assert k.actions() == (DeleteServiceUser(ServiceType.KAFKA, PROJECT, kafka.name, kafka_orphan),)


# --- which users a current application expects (regression: an unchosen variant was spared forever) ---


def _example_app() -> tuple[Any, list[SecretView]]:
    raw_app, raw_secrets = rendered_example(NOW - timedelta(days=2))
    parsed = parse_application(raw_app, frozenset({PROJECT}))
    assert isinstance(parsed, Success)
    return parsed.unwrap().app, [secret_view(s) for s in raw_secrets]


def _candidates(app: Any, section: Any) -> tuple[str, ...]:
    return tuple(
        c.name
        for c in username_candidates(
            section.service_type, app.namespace, app.name, app.generation, section.access, NAME_ALTERNATIVES
        )
    )


def _names(expected: frozenset[UserKey]) -> set[str]:
    return {k.username for k in expected}


def test_an_application_expects_only_the_name_its_sections_choose_not_every_variant() -> None:
    app, secrets = _example_app()
    expected = _names(expected_users([app], ServiceConfig(PROJECT), *recorded_users(secrets)))
    for _, section in all_sections(app):
        primary, *variants = _candidates(app, section)
        assert primary in expected
        assert not set(variants) & expected


def test_a_name_another_secret_records_moves_the_expectation_to_the_next_variant() -> None:
    app, secrets = _example_app()
    (kafka,) = [s for _, s in all_sections(app) if s.service_type is ServiceType.KAFKA]
    primary, first_variant, *_ = _candidates(app, kafka)
    ours = [s for s in secrets if s.name == kafka.secret_name]
    kept = replace(ours[0], name="kept-by-a-predecessor")  # records the primary name too
    expected = _names(expected_users([app], ServiceConfig(PROJECT), *recorded_users([kept])))
    assert first_variant in expected
    # Without that Secret the variant is not expected (the compatible name is free everywhere).
    alone = _names(expected_users([app], ServiceConfig(PROJECT), *recorded_users([])))
    assert primary in alone and first_variant not in alone


def _kafka_secret_recording(secrets: list[SecretView], kafka_secret: str, username: str) -> list[SecretView]:
    """The example's Secrets with the Kafka Secret's recorded user replaced by `username`."""
    out = []
    for s in secrets:
        if s.name == kafka_secret:
            s = replace(
                s, annotations=tuple((k, username if k == KAFKA_USER else v) for k, v in s.annotations)
            )
        out.append(s)
    return out


def test_a_section_keeps_the_variant_its_own_secret_records_when_the_compatible_name_is_freed() -> None:
    """State machine: alpha's Secret recorded variant 1 (the compatible name was another Secret's
    then); once that Secret was gone the compatible name, left in Aiven by a finalizer that
    refused to act, was 'expected' again while nothing recorded it, and spared forever."""
    app, secrets = _example_app()
    (kafka,) = [s for _, s in all_sections(app) if s.service_type is ServiceType.KAFKA]
    primary, first_variant, *_ = _candidates(app, kafka)
    secrets = _kafka_secret_recording(secrets, kafka.secret_name, first_variant)
    expected = expected_users([app], ServiceConfig(PROJECT), *recorded_users(secrets))
    (service,) = {
        a.service
        for s in secrets
        for a in requested_actions(s)
        if isinstance(a, DeleteServiceUser) and a.username == first_variant
    }
    on_service = {k.username for k in expected if k.service == service}
    assert first_variant in on_service and primary not in on_service
    recorded = [a.username for s in secrets for a in requested_actions(s) if isinstance(a, DeleteServiceUser)]
    facts = ServiceFacts(PROJECT, service, ServiceType.KAFKA, "RUNNING", usernames=(*recorded, primary))
    plan = plan_orphan_sweep([facts], secrets, seen_long_ago(facts), NOW, GRACE, False, expected)
    assert [o.username for o in plan.delete] == [primary]


def test_a_variant_no_secret_records_is_swept_not_spared_forever() -> None:
    """A variant a section does not choose (a crashed pass created it while the compatible name
    was taken; the compatible name was freed since) was spared as 'expected' because every
    variant of a current app was."""
    app, secrets = _example_app()
    (kafka,) = [s for _, s in all_sections(app) if s.service_type is ServiceType.KAFKA]
    _, left_behind, *_ = _candidates(app, kafka)
    (service,) = {
        a.service
        for s in secrets
        if s.name == kafka.secret_name
        for a in requested_actions(s)
        if isinstance(a, DeleteServiceUser)
    }
    recorded = [a.username for s in secrets for a in requested_actions(s) if isinstance(a, DeleteServiceUser)]
    facts = ServiceFacts(PROJECT, service, ServiceType.KAFKA, "RUNNING", usernames=(*recorded, left_behind))
    plan = plan_orphan_sweep(
        [facts],
        secrets,
        seen_long_ago(facts),
        NOW,
        GRACE,
        dry_run=False,
        expected_users=expected_users([app], ServiceConfig(PROJECT), *recorded_users(secrets)),
    )
    assert [o.username for o in plan.delete] == [left_behind]
