"""Properties of the ownership model (`aivenator.domain.ownership`, product spec section 11)."""

from __future__ import annotations

from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.facts import ServiceType
from aivenator.domain.names import first_free, username_candidates
from aivenator.domain.ownership import (
    OwnershipIndex,
    SecretRecord,
    UserKey,
    Verdict,
    recompute,
    secret_record,
    write_verdict,
)
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.strategies import SECRET_APPS, SECRET_NAMES, SECRET_NAMESPACES, raw_secrets, secret_events


def _replay(events: list[tuple[str, Any]]) -> tuple[OwnershipIndex, dict[tuple[str, str], dict[str, Any]]]:
    """Feed events to the index the way the Secret informer does; also keep the cache itself."""
    index = OwnershipIndex()
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, payload in events:
        if kind == "put":
            key = (payload["metadata"]["namespace"], payload["metadata"]["name"])
            index.apply(cache.get(key), payload)
            cache[key] = payload
        else:
            old = cache.pop(payload, None)
            index.apply(old, None)
    return index, cache


@given(st.lists(secret_events, max_size=40))
def test_the_incremental_index_equals_a_full_recomputation(events: list[tuple[str, Any]]) -> None:
    index, cache = _replay(events)
    assert index.state() == recompute(secret_record(raw) for raw in cache.values())
    assert len(index) == len(cache)


@given(st.lists(secret_events, max_size=40))
def test_every_user_is_answered_with_exactly_the_secrets_recording_it(events: list[tuple[str, Any]]) -> None:
    index, cache = _replay(events)
    records = [secret_record(raw) for raw in cache.values()]
    for record in records:
        for user in record.users:
            expected = {r.key for r in records if user in r.users}
            assert index.holders(user) == expected
            assert index.user_free(user, record.key) == (expected == {record.key})
            assert (user.username in index.taken_by_others(user.project, user.service, record.key)) == bool(
                expected - {record.key}
            )


@given(raw_secrets(), st.sampled_from(SECRET_APPS[:2]))
def test_a_secret_of_another_app_unmanaged_or_being_deleted_is_never_writable(
    raw: dict[str, Any], app: str
) -> None:
    record = secret_record(raw)
    verdict = write_verdict(record.namespace, app, record.name, record)
    foreign = not record.managed or record.app != app
    if record.terminating or foreign:
        assert not verdict.may_write
        assert verdict.message and record.name in verdict.message
    else:
        assert verdict.may_write
    if record.terminating:
        assert verdict.kind is Verdict.TERMINATING
    elif not record.managed:
        assert verdict.kind is Verdict.UNMANAGED
    elif record.app != app:
        assert verdict.kind is Verdict.OTHER_APP and verdict.owner == record.app


def test_an_absent_secret_is_created_and_a_go_written_one_is_adopted() -> None:
    assert write_verdict("team-a", "good", "good-kafka", None).kind is Verdict.CREATE
    go_written = SecretRecord("team-a", "good-kafka", managed=True, app="good", team="team-a")
    assert write_verdict("team-a", "good", "good-kafka", go_written).kind is Verdict.ADOPT
    ours = SecretRecord("team-a", "good-kafka", managed=True, app="good", team="team-a", has_finalizer=True)
    assert write_verdict("team-a", "good", "good-kafka", ours).kind is Verdict.OURS


def test_the_conflict_message_names_the_secret_and_its_owner_and_nothing_else() -> None:
    other = SecretRecord("team-a", "good-kafka", managed=True, app="good", team="team-a")
    verdict = write_verdict("team-a", "collide", "good-kafka", other)
    assert verdict.conflict
    assert "good-kafka" in verdict.message and "application good" in verdict.message


@st.composite
def provisioning_runs(draw: st.DrawFn) -> list[tuple[str, str, str, int, bool]]:
    """(namespace, app, secret name, generation, delete-instead) steps over colliding names."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(SECRET_NAMESPACES),
                st.sampled_from(["good", "collide"]),
                st.sampled_from(SECRET_NAMES),
                st.integers(1, 3),
                st.booleans(),
            ),
            max_size=30,
        )
    )


@given(provisioning_runs())
def test_two_live_secrets_never_record_the_same_user(steps: list[tuple[str, str, str, int, bool]]) -> None:
    """Provision the way the reconciler does (verdict, then the first candidate no other Secret
    records), delete at random: no user is ever recorded by two Secrets, whichever app."""
    index = OwnershipIndex()
    for namespace, app, secret_name, generation, delete in steps:
        if delete:
            index.remove((namespace, secret_name))
            continue
        existing = index.record(namespace, secret_name)
        if not write_verdict(namespace, app, secret_name, existing).may_write:
            assert existing is not None and (existing.app != app or existing.terminating)
            continue
        candidates = username_candidates(ServiceType.KAFKA, namespace, app, generation, None)
        choice = first_free(candidates, index.taken_by_others("dev-nais-dev", "kafka", (namespace, secret_name)))
        if choice is None:
            continue
        raw = {
            "metadata": {
                "namespace": namespace,
                "name": secret_name,
                "labels": {L.TYPE_LABEL: L.TYPE_VALUE, L.APP_LABEL: app, L.TEAM_LABEL: namespace},
                "annotations": {
                    L.KAFKA_SERVICE_USER: choice.name,
                    L.KAFKA_POOL: "dev-nais-dev",
                    L.KAFKA_SERVICE_NAME: "kafka",
                },
                "finalizers": [L.FINALIZER],
            }
        }
        index.put(secret_record(raw))
        for user in index.users():
            assert len(index.holders(user)) == 1, user
    owners = {u: index.owners(u) for u in index.users()}
    assert all(len(o) == 1 for o in owners.values())


def test_a_user_recorded_by_a_terminating_secret_is_still_taken() -> None:
    user = UserKey("dev-nais-dev", "kafka", "a_good_00000000_AAA")
    index = OwnershipIndex()
    index.put(SecretRecord("team-a", "old", True, "good", "team-a", True, True, (user,)))
    assert user.username in index.taken_by_others("dev-nais-dev", "kafka", ("team-a", "new"))
    assert not index.recorded_elsewhere(user, ("team-a", "new"))  # only a dying Secret holds it
    assert SECRET_NAMES  # the universe the strategies draw from
