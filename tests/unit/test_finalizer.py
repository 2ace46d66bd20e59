"""Cleanup of a deleted Secret: only its own users, never built-in ones, retries bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aivenator.domain import labels
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl, RequiredObject
from aivenator.domain.application import Access
from aivenator.domain.facts import NotFound, Rejected, ServiceType, Throttled, Unavailable
from aivenator.domain.finalizer import (
    ActionResult,
    RefusalReason,
    RemoveFinalizer,
    RetryCleanup,
    Stuck,
    decide_after_cleanup,
    plan_finalizer,
    required_objects,
)
from aivenator.domain.janitor import SecretView, secret_view
from aivenator.domain.names import (
    BUILTIN_USERS,
    is_builtin,
    kafka_username,
    opensearch_username,
    valkey_username,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.workload_strategies import APP_NAMES, INSTANCES, NAMESPACES, rendered_example

POOL = "dev-nais-dev"
MAIN = "dev-nais-dev"


def deleted_secret(
    annotations: dict[str, str],
    namespace: str = "team-a",
    app: str = "orders",
    team: str | None = None,
    *,
    deleting: bool = True,
    finalizers: tuple[str, ...] = (labels.FINALIZER,),
) -> SecretView:
    metadata: dict[str, Any] = {
        "name": "s",
        "namespace": namespace,
        "labels": {labels.APP_LABEL: app, labels.TEAM_LABEL: team if team is not None else namespace},
        "annotations": annotations,
        "finalizers": list(finalizers),
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-06-01T00:00:00Z"
    return secret_view({"metadata": metadata})


def opensearch_object(namespace: str, name: str) -> RequiredObject:
    return RequiredObject(labels.AIVEN_IO_API_VERSION, labels.OPENSEARCH_KIND, namespace, name)


def valkey_object(namespace: str, name: str) -> RequiredObject:
    return RequiredObject(labels.AIVEN_IO_API_VERSION, labels.VALKEY_KIND, namespace, name)


def kafka_annotations(user: str, pool: str = POOL) -> dict[str, str]:
    return {labels.KAFKA_SERVICE_USER: user, labels.KAFKA_POOL: pool}


def opensearch_annotations(user: str, service: str) -> dict[str, str]:
    return {
        labels.OPENSEARCH_SERVICE_USER: user,
        labels.OPENSEARCH_SERVICE_NAME: service,
        labels.OPENSEARCH_PROJECT: MAIN,
    }


def valkey_annotations(instance: str, user: str, service: str) -> dict[str, str]:
    return {
        labels.valkey_service_user_annotation(instance): user,
        labels.valkey_service_name_annotation(instance): service,
        labels.VALKEY_PROJECT: MAIN,
    }


# --- examples: what is allowed ------------------------------------------------------------------


def test_the_kafka_user_of_the_secrets_own_app_is_deleted_in_every_candidate_service() -> None:
    user = kafka_username("team-a", "orders", 3).name
    plan = plan_finalizer(deleted_secret(kafka_annotations(user)), allowed_projects={POOL})
    assert plan.refused == ()
    assert plan.remove_finalizer
    assert {(a.service, a.username) for a in plan.actions if isinstance(a, DeleteServiceUser)} == {
        ("kafka", user),
        (f"{POOL}-kafka", user),
    }


def test_an_opensearch_user_is_cleaned_up_when_the_service_is_proven_to_be_the_namespaces() -> None:
    user = opensearch_username("team-a", "orders", 2, Access.READ).name
    secret = deleted_secret(opensearch_annotations(user, "opensearch-team-a-logs"))
    assert required_objects(secret) == (opensearch_object("team-a", "opensearch-team-a-logs"),)
    plan = plan_finalizer(secret, required_objects(secret), main_project=MAIN)
    assert plan.refused == ()
    assert [type(a) for a in plan.actions] == [RemoveOpenSearchAcl, DeleteServiceUser]


def test_a_legacy_opensearch_instance_is_proven_by_its_object_in_the_namespace() -> None:
    user = opensearch_username("team-a", "orders", 2, Access.ADMIN).name
    secret = deleted_secret(opensearch_annotations(user, "legacy-logs"))
    proven = plan_finalizer(secret, [opensearch_object("team-a", "legacy-logs")])
    unproven = plan_finalizer(secret, [])
    assert len(proven.actions) == 2 and proven.refused == ()
    assert unproven.actions == ()
    assert {r.reason for r in unproven.refused} == {RefusalReason.SERVICE_NOT_PROVEN}
    assert unproven.remove_finalizer, "a refused request must not block the Secret's deletion"


def test_a_valkey_user_is_deleted_when_the_valkey_object_is_in_the_namespace() -> None:
    user = valkey_username("orders", 4, Access.WRITE).name
    secret = deleted_secret(valkey_annotations("cache", user, "valkey-team-a-cache"))
    plan = plan_finalizer(secret, [valkey_object("team-a", "valkey-team-a-cache")], main_project=MAIN)
    assert plan.actions == (
        DeleteServiceUser(
            ServiceType.VALKEY,
            MAIN,
            "valkey-team-a-cache",
            user,
            valkey_object("team-a", "valkey-team-a-cache"),
        ),
    )


# --- examples: what is refused ---------------------------------------------------------------------


def test_a_forged_secret_naming_another_teams_kafka_user_is_refused() -> None:
    victim = kafka_username("team-b", "orders", 3).name
    plan = plan_finalizer(deleted_secret(kafka_annotations(victim)))
    assert plan.actions == ()
    assert {r.reason for r in plan.refused} == {RefusalReason.FOREIGN_USER}


def test_another_apps_kafka_user_in_the_same_namespace_is_refused() -> None:
    other_app = kafka_username("team-a", "payments", 3).name
    plan = plan_finalizer(deleted_secret(kafka_annotations(other_app)))
    assert plan.actions == ()


def test_built_in_users_are_never_touched() -> None:
    for user in sorted(BUILTIN_USERS):
        annotations = {
            **kafka_annotations(user),
            **opensearch_annotations(user, "opensearch-team-a-logs"),
            **valkey_annotations("cache", user, "valkey-team-a-cache"),
        }
        existing = [
            opensearch_object("team-a", "opensearch-team-a-logs"),
            valkey_object("team-a", "valkey-team-a-cache"),
        ]
        plan = plan_finalizer(deleted_secret(annotations, app=user), existing)
        assert plan.actions == (), user
        assert {r.reason for r in plan.refused} == {RefusalReason.BUILTIN_USER}


def test_the_valkey_name_game_is_refused() -> None:
    # Namespace `a` + instance `b-c` and namespace `a-b` + instance `c` both give `valkey-a-b-c`.
    # Here the Valkey object lives in `a-b`, so a Secret in `a` must not delete its users.
    user = valkey_username("app", 1, Access.READ).name
    secret = deleted_secret(valkey_annotations("b-c", user, "valkey-a-b-c"), namespace="a", app="app")
    assert required_objects(secret) == (valkey_object("a", "valkey-a-b-c"),)
    world = {valkey_object("a-b", "valkey-a-b-c")}
    plan = plan_finalizer(secret, [o for o in required_objects(secret) if o in world])
    assert plan.actions == ()
    assert [r.reason for r in plan.refused] == [RefusalReason.SERVICE_NOT_PROVEN]


def test_a_valkey_service_not_named_for_the_namespace_is_refused() -> None:
    user = valkey_username("orders", 1, Access.READ).name
    secret = deleted_secret(valkey_annotations("x", user, "valkey-team-b-x"))
    plan = plan_finalizer(secret, [valkey_object("team-a", "valkey-team-b-x")])
    assert [r.reason for r in plan.refused] == [RefusalReason.FOREIGN_SERVICE]


def test_tampered_team_label_refuses_everything() -> None:
    user = kafka_username("team-b", "orders", 3).name
    plan = plan_finalizer(deleted_secret(kafka_annotations(user), namespace="team-a", team="team-b"))
    assert plan.actions == ()
    assert [r.reason for r in plan.refused] == [RefusalReason.LABELS_TAMPERED] * 2


def test_projects_outside_the_configuration_are_refused() -> None:
    kafka_user = kafka_username("team-a", "orders", 3).name
    plan = plan_finalizer(
        deleted_secret(kafka_annotations(kafka_user, pool="someone-elses")), allowed_projects={POOL}
    )
    assert plan.actions == () and {r.reason for r in plan.refused} == {RefusalReason.PROJECT_NOT_ALLOWED}
    os_user = opensearch_username("team-a", "orders", 2, Access.READ).name
    annotations = {
        **opensearch_annotations(os_user, "opensearch-team-a-logs"),
        labels.OPENSEARCH_PROJECT: "elsewhere",
    }
    plan = plan_finalizer(
        deleted_secret(annotations),
        [opensearch_object("team-a", "opensearch-team-a-logs")],
        main_project=MAIN,
    )
    assert plan.actions == () and {r.reason for r in plan.refused} == {RefusalReason.PROJECT_NOT_ALLOWED}


def test_objects_claimed_in_other_namespaces_are_never_looked_up() -> None:
    user = valkey_username("orders", 1, Access.READ).name
    secret = deleted_secret(valkey_annotations("x", user, "valkey-team-a-x"))
    assert all(o.namespace == "team-a" for o in required_objects(secret))


def test_nothing_happens_unless_the_secret_is_being_deleted_and_carries_our_finalizer() -> None:
    user = kafka_username("team-a", "orders", 3).name
    alive = plan_finalizer(deleted_secret(kafka_annotations(user), deleting=False))
    foreign_finalizer = plan_finalizer(deleted_secret(kafka_annotations(user), finalizers=("someone/else",)))
    for plan in (alive, foreign_finalizer):
        assert (plan.actions, plan.refused, plan.remove_finalizer) == ((), (), False)


def test_a_secret_without_annotations_just_loses_its_finalizer() -> None:
    plan = plan_finalizer(deleted_secret({}))
    assert (plan.actions, plan.refused, plan.remove_finalizer) == ((), (), True)


# --- deciding after the actions ran -------------------------------------------------------------------

ACTION = DeleteServiceUser(ServiceType.KAFKA, POOL, "kafka", "a_orders_00000000_abc")


def test_success_and_not_found_both_remove_the_finalizer() -> None:
    assert decide_after_cleanup([ActionResult(ACTION)], attempts=1) == RemoveFinalizer()
    assert (
        decide_after_cleanup([ActionResult(ACTION, NotFound("service gone"))], attempts=1)
        == RemoveFinalizer()
    )
    assert decide_after_cleanup([], attempts=1) == RemoveFinalizer()


def test_transient_errors_retry_with_growing_backoff() -> None:
    first = decide_after_cleanup([ActionResult(ACTION, Unavailable("503"))], attempts=1)
    third = decide_after_cleanup([ActionResult(ACTION, Unavailable("503"))], attempts=3)
    assert isinstance(first, RetryCleanup) and isinstance(third, RetryCleanup)
    assert 0 < first.after < third.after
    assert "503" in first.reason and ACTION.username in first.reason


def test_throttling_is_never_retried_earlier_than_asked() -> None:
    decision = decide_after_cleanup([ActionResult(ACTION), ActionResult(ACTION, Throttled(45.0))], attempts=1)
    assert isinstance(decision, RetryCleanup) and decision.after >= 45.0


def test_retries_are_bounded_and_then_the_cleanup_is_visibly_stuck() -> None:
    decision = decide_after_cleanup(
        [ActionResult(ACTION, Unavailable("timeout"))], attempts=8, max_attempts=8
    )
    assert isinstance(decision, Stuck)
    assert "8 attempts" in decision.reason and decision.retry_after > 0


def test_a_rejection_is_stuck_at_once() -> None:
    decision = decide_after_cleanup([ActionResult(ACTION, Rejected("forbidden", 403))], attempts=1)
    assert isinstance(decision, Stuck) and "403" in decision.reason


@settings(max_examples=60)
@given(
    st.lists(
        st.sampled_from([None, NotFound("x"), Unavailable("u"), Throttled(3.0), Rejected("r")]), max_size=4
    ),
    st.integers(1, 12),
)
def test_the_decision_is_total_and_bounded(errors: list[Any], attempts: int) -> None:
    decision = decide_after_cleanup([ActionResult(ACTION, e) for e in errors], attempts, max_attempts=8)
    failing = [e for e in errors if e is not None and not isinstance(e, NotFound)]
    assert isinstance(decision, RemoveFinalizer) == (not failing)
    if isinstance(decision, RetryCleanup):
        assert attempts < 8 and decision.after > 0


# --- property: a world of namespaces, apps, services and forged Secrets ---------------------------------


@dataclass(frozen=True)
class WorldApp:
    namespace: str
    name: str
    kafka_user: str
    os_user: str
    valkey_user: str


@dataclass(frozen=True)
class World:
    apps: list[WorldApp]
    #: Kafka user name -> (namespace, app) that owns it
    kafka_users: dict[str, tuple[str, str]]
    #: service name -> the one namespace whose aiven.io object it is
    service_owner: dict[str, str]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    triples = st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(APP_NAMES), st.integers(1, 3))
    apps = [
        WorldApp(
            ns,
            app,
            kafka_username(ns, app, gen).name,
            opensearch_username(ns, app, gen, draw(st.sampled_from(list(Access)))).name,
            valkey_username(app, gen, draw(st.sampled_from(list(Access)))).name,
        )
        for ns, app, gen in draw(st.lists(triples, min_size=1, max_size=6))
    ]
    owner: dict[str, str] = {}
    pairs = st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(INSTANCES))
    for ns, instance in draw(st.lists(pairs, max_size=8)):
        # Aiven service names are unique: the first namespace to claim a name owns it.
        owner.setdefault(f"valkey-{ns}-{instance}", ns)
        owner.setdefault(f"opensearch-{ns}-{instance}", ns)
    for legacy in draw(st.lists(st.sampled_from(INSTANCES), max_size=2)):
        owner.setdefault(legacy, draw(st.sampled_from(NAMESPACES)))
    return World(apps, {a.kafka_user: (a.namespace, a.name) for a in apps}, owner)


@st.composite
def forged_secrets(draw: st.DrawFn, world: World) -> SecretView:
    """A Secret being deleted. Half are honest (an app's own users and its namespace's services),
    the rest carry whatever a tenant may have written: other teams' users, built-in users,
    services of other namespaces, tampered labels."""
    honest = draw(st.booleans())
    builtin = sorted(BUILTIN_USERS)
    every_service = sorted(world.service_owner) or ["valkey-a-x"]
    if honest:
        owner = draw(st.sampled_from(world.apps))
        namespace, app, team = owner.namespace, owner.name, owner.namespace
        own = sorted(n for n, ns in world.service_owner.items() if ns == namespace)
        services = own or every_service
        kafka_users, os_users, valkey_users = [owner.kafka_user], [owner.os_user], [owner.valkey_user]
    else:
        namespace = draw(st.sampled_from(NAMESPACES))
        app = draw(st.sampled_from((*APP_NAMES, "avnadmin")))
        team = namespace if draw(st.integers(0, 5)) else draw(st.sampled_from(NAMESPACES))
        services = every_service
        kafka_users = [a.kafka_user for a in world.apps] + builtin
        os_users = [a.os_user for a in world.apps] + builtin
        valkey_users = [a.valkey_user for a in world.apps] + builtin
    annotations: dict[str, str] = {}
    if draw(st.booleans()):
        pool = POOL if honest else draw(st.sampled_from([POOL, "other-pool"]))
        annotations.update(kafka_annotations(draw(st.sampled_from(kafka_users)), pool))
    if draw(st.booleans()):
        annotations.update(
            opensearch_annotations(draw(st.sampled_from(os_users)), draw(st.sampled_from(services)))
        )
    for instance in draw(st.lists(st.sampled_from(INSTANCES), max_size=2, unique=True)):
        user = draw(st.sampled_from(valkey_users))
        annotations.update(valkey_annotations(instance, user, draw(st.sampled_from(services))))
    return deleted_secret(annotations, namespace=namespace, app=app, team=team)


@settings(max_examples=100)
@given(st.data())
def test_the_finalizer_never_targets_another_namespaces_user_or_a_builtin_user(data: st.DataObject) -> None:
    world = data.draw(worlds())
    secret = data.draw(forged_secrets(world))
    # The shell looks up the objects the plan asks about; only the namespace's own ones exist.
    existing = [o for o in required_objects(secret) if world.service_owner.get(o.name) == o.namespace]
    plan = plan_finalizer(secret, existing, allowed_projects={POOL}, main_project=MAIN)

    assert plan.remove_finalizer
    for action in plan.actions:
        assert not is_builtin(action.username)
        assert action.project == MAIN or action.project == POOL
        if isinstance(action, DeleteServiceUser) and action.service_type is ServiceType.KAFKA:
            assert world.kafka_users[action.username] == (secret.namespace, secret.label(labels.APP_LABEL))
        else:
            assert world.service_owner.get(action.service) == secret.namespace
    requested = len(plan.actions) + len(plan.refused)
    assert all(r.detail for r in plan.refused)
    assert requested >= len(plan.actions)


# --- against the Secrets part A's writer produces ------------------------------------------------------


def test_every_user_of_a_secret_the_operator_wrote_is_cleaned_up() -> None:
    _, raw_secrets = rendered_example()
    cleaned: set[tuple[ServiceType, str]] = set()
    for raw in raw_secrets:
        raw["metadata"]["deletionTimestamp"] = "2026-06-01T00:00:00Z"
        secret = secret_view(raw)
        existing = required_objects(secret)  # the aiven.io objects live in the app's namespace
        plan = plan_finalizer(secret, existing, allowed_projects={POOL}, main_project=MAIN)
        assert plan.refused == (), plan.refused
        assert plan.remove_finalizer
        cleaned |= {(a.service_type, a.username) for a in plan.actions if isinstance(a, DeleteServiceUser)}
        acl_removals = [a for a in plan.actions if isinstance(a, RemoveOpenSearchAcl)]
        assert len(acl_removals) == (1 if secret.annotation(labels.OPENSEARCH_SERVICE_USER) else 0)
    assert {t for t, _ in cleaned} == {ServiceType.KAFKA, ServiceType.OPENSEARCH, ServiceType.VALKEY}
    assert len(cleaned) == 4


def test_the_request_budget_bounds_the_passes_of_a_stuck_cycle() -> None:
    from aivenator.domain.finalizer import REQUEST_BUDGET_PER_CYCLE, cleanup_passes

    for client_attempts in range(1, 25):
        for max_passes in range(1, 30):
            passes = cleanup_passes(client_attempts, max_passes)
            assert 1 <= passes <= max_passes
            # within the budget whenever one pass fits in it at all
            assert passes * client_attempts <= max(REQUEST_BUDGET_PER_CYCLE, client_attempts)
    assert cleanup_passes(3, 10) == 3  # the shipped client: 3 tries per request -> 9 requests
    assert cleanup_passes(1, 10) == 10


def test_a_stuck_cleanup_backs_off_to_an_hour() -> None:
    from aivenator.domain.finalizer import STUCK_RETRY_SECONDS, stuck_retry_after

    pauses = [stuck_retry_after(n) for n in range(1, 40)]
    assert pauses == sorted(pauses)
    assert pauses[0] == 300.0 and pauses[-1] == STUCK_RETRY_SECONDS
    assert stuck_retry_after(10**9) == STUCK_RETRY_SECONDS
