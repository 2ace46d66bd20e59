"""The orphan sweep (issue 6): Aiven service users the operator created but no Secret refers to.

A purely computational module. Users are orphaned when a reconcile fails half way, when a spec
edit keeps the Secret name (the old generation's user stays behind), or when a finalizer refused
to act for lack of proof. Aiven reports no creation time, so the shell records when it first saw
each user and passes that table in; `SweepPlan.first_seen` is the table to keep for next time.

Deleting a user is irreversible, so every rule spares by default: a user is deleted only if it
matches our naming scheme for its service type, is not built in, is referenced by no managed
Secret (matched by service type and user name alone, whatever project or service the Secret
names: a looser match only spares more), is not expected by a current application, and was first
seen at least `grace_period` ago. In dry-run mode nothing is deleted and the would-be deletions
are reported as spared with reason `dry_run`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aivenator.domain.actions import Action, DeleteServiceUser, RemoveOpenSearchAcl
from aivenator.domain.facts import ServiceFacts, ServiceType
from aivenator.domain.finalizer import requested_actions
from aivenator.domain.janitor import SecretView
from aivenator.domain.names import is_builtin, matches_our_scheme
from aivenator.domain.ownership import UserKey as UserKey


class SpareReason(StrEnum):
    BUILTIN = "builtin"
    FOREIGN_SCHEME = "foreign_scheme"
    REFERENCED = "referenced"
    EXPECTED = "expected"
    FIRST_SEEN_NOW = "first_seen_now"
    TOO_YOUNG = "too_young"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class OrphanUser:
    project: str
    service: str
    service_type: ServiceType
    username: str
    reason: str

    @property
    def key(self) -> UserKey:
        return UserKey(self.project, self.service, self.username)

    def actions(self) -> tuple[Action, ...]:
        """What deleting this user takes: for OpenSearch, its ACL entry goes first."""
        delete = DeleteServiceUser(self.service_type, self.project, self.service, self.username)
        if self.service_type is ServiceType.OPENSEARCH:
            return (RemoveOpenSearchAcl(self.project, self.service, self.username), delete)
        return (delete,)


@dataclass(frozen=True, slots=True)
class Spared:
    user: UserKey
    service_type: ServiceType
    reason: SpareReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SweepPlan:
    delete: tuple[OrphanUser, ...]
    spared: tuple[Spared, ...]
    #: The first-seen table to keep: every user seen now, with its (possibly new) first sighting.
    first_seen: tuple[tuple[UserKey, datetime], ...]


def referenced_users(secrets: Iterable[SecretView]) -> frozenset[tuple[ServiceType, str]]:
    """(service type, user name) of every user any of these Secrets names in its annotations.

    Secrets being deleted count too: their finalizer is responsible for those users.
    """
    return frozenset(
        (action.service_type, action.username)
        for secret in secrets
        for action in requested_actions(secret)
        if isinstance(action, DeleteServiceUser)
    )


def plan_orphan_sweep(
    services: Iterable[ServiceFacts],
    managed_secrets: Iterable[SecretView],
    first_seen: Mapping[UserKey, datetime],
    now: datetime,
    grace_period: timedelta,
    dry_run: bool,
    expected_users: Iterable[UserKey] = (),
) -> SweepPlan:
    """Decide, for every user of the given services, whether to delete it (and why, either way).

    `services`: the services the operator manages, with their current user names (listing them
    is the shell's job: Kafka services of the allowed projects, OpenSearch and Valkey services of
    the main project). `managed_secrets`: every Secret labelled as ours, in every namespace; if
    that list is incomplete the shell must not sweep at all. `expected_users`: the users (project,
    service, name) current applications are about to use (their Secret may not be written yet).
    """
    referenced = referenced_users(managed_secrets)
    expected = frozenset(expected_users)
    delete: list[OrphanUser] = []
    spared: list[Spared] = []
    seen: dict[UserKey, datetime] = {}
    for facts in services:
        for username in sorted(set(facts.usernames)):
            key = UserKey(facts.project, facts.name, username)
            first = first_seen.get(key)
            seen[key] = first if first is not None else now
            decision = _decide(
                key,
                facts.service_type,
                first,
                referenced,
                expected,
                now,
                grace_period,
                dry_run,
                username in facts.builtin_usernames,
            )
            if isinstance(decision, OrphanUser):
                delete.append(decision)
            else:
                spared.append(decision)
    return SweepPlan(tuple(delete), tuple(spared), tuple(sorted(seen.items())))


def _decide(
    key: UserKey,
    service_type: ServiceType,
    first: datetime | None,
    referenced: frozenset[tuple[ServiceType, str]],
    expected: frozenset[UserKey],
    now: datetime,
    grace_period: timedelta,
    dry_run: bool,
    primary: bool = False,
) -> OrphanUser | Spared:
    username = key.username

    def spare(reason: SpareReason, detail: str = "") -> Spared:
        return Spared(key, service_type, reason, detail)

    if is_builtin(username) or primary:
        # `primary`: Aiven reports the user as its built-in one, whatever the name.
        return spare(SpareReason.BUILTIN)
    if not matches_our_scheme(service_type, username):
        return spare(SpareReason.FOREIGN_SCHEME)
    if (service_type, username) in referenced:
        return spare(SpareReason.REFERENCED)
    if key in expected:
        return spare(SpareReason.EXPECTED)
    if first is None:
        return spare(SpareReason.FIRST_SEEN_NOW)
    if now - first < grace_period:
        return spare(SpareReason.TOO_YOUNG, f"first seen {first.isoformat()}")
    reason = (
        f"matches the {service_type} naming scheme, no managed Secret refers to it, "
        f"first seen {first.isoformat()}"
    )
    if dry_run:
        return spare(SpareReason.DRY_RUN, "would delete: " + reason)
    return OrphanUser(key.project, key.service, service_type, username, reason)
