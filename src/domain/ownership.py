"""Who owns each Secret and each Aiven user (product spec section 11), decided in one place.

A purely computational module (no I/O, clock or logging). Everything is derived from Secret
metadata: the labels `app`/`team`/`type`, the annotations that record the Aiven user each
section was given (read through `aivenator.domain.services.cleanup_actions`, the same reading
the finalizer acts on), our finalizer and `deletionTimestamp`.

- `secret_record(raw)`: the ownership-relevant facts of one Secret, as a frozen value.
- `write_verdict(namespace, app, record)`: may app `app` write this Secret for a section?
  A Secret is ours to write when it does not exist or carries our `type` label and `app: <app>`
  (Secrets the Go operator wrote for the same app are adopted; so is one whose `app` label was
  edited to name no existing application while every user it records is this app's by our
  naming rules: that is drift to repair, not someone else's Secret). Another app's Secret, a Secret
  without our `type` label and a Secret being deleted are never written: the first two are a
  `SecretConflict`, the last one is waited for (it is provisioned afresh once it is gone, so the
  user its finalizer deletes is never the one the new Secret records).
- `OwnershipIndex`: an incremental index over the managed Secrets, fed by Secret watch events
  (`put`/`remove`, O(1) each) and answering in O(1): the record of a Secret, which Secrets record
  an Aiven user `(project, service, username)`, and whether a user name is free for a Secret.
  `build_index(records)` is the full recomputation it must always equal.

A user recorded by any Secret other than the section's own is taken, Secrets of the same app
included (a re-created app starts again at generation 1 and would otherwise share a kept
Secret's user, whose deletion would break the new Secret); Secrets being deleted count too (their
finalizer is about to delete that user).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.actions import DeleteServiceUser
from aivenator.domain.facts import ServiceType
from aivenator.domain.names import owner_matches
from aivenator.domain.services import cleanup_actions
from aivenator.domain.services.base import SecretMeta

SecretKey = tuple[str, str]
#: How soon to look again at a section whose Secret is being deleted (its DELETED watch event
#: normally triggers the pass first; this is the safety net).
TERMINATING_RECHECK_SECONDS = 5.0
#: How soon to look again at a section whose Secret belongs to someone else. An unmanaged Secret
#: is not watched (only managed Secrets are cached), so its deletion is noticed by this recheck.
CONFLICT_RECHECK_SECONDS = 15.0


@dataclass(frozen=True, slots=True, order=True)
class UserKey:
    """An Aiven service user: (project, service, user name)."""

    project: str
    service: str
    username: str


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """What ownership decisions need from one Secret."""

    namespace: str
    name: str
    #: Carries `type: aivenator.aiven.nais.io` (ours or the Go operator's).
    managed: bool
    app: str = ""
    team: str = ""
    has_finalizer: bool = False
    terminating: bool = False
    #: Every Aiven user its annotations record (those its finalizer would delete), sorted and
    #: without repeats. Tuples, not frozensets: a record is kept per managed Secret, normally
    #: with one user, and a one-element frozenset costs four times a one-element tuple.
    users: tuple[UserKey, ...] = ()
    #: (service type, user name) of those users, for naming-rule ownership checks (sorted).
    claims: tuple[tuple[ServiceType, str], ...] = ()

    @property
    def key(self) -> SecretKey:
        return (self.namespace, self.name)


#: One copy of each name however many records hold it (records are kept per managed Secret, and
#: each decoded Secret brings its own copies); equal strings, so no behaviour depends on it.
_shared = sys.intern


def secret_record(raw: Mapping[str, Any]) -> SecretRecord:
    """The ownership facts of a Secret in API shape (`{"metadata": {...}, ...}`)."""
    meta = SecretMeta.from_raw(raw)
    metadata = raw.get("metadata") or {}
    managed = meta.labels.get(L.TYPE_LABEL) == L.TYPE_VALUE
    deletes = (
        [a for a in cleanup_actions(meta) if isinstance(a, DeleteServiceUser)] if managed else []
    )
    return SecretRecord(
        namespace=_shared(meta.namespace),
        name=_shared(meta.name),
        managed=managed,
        app=_shared(meta.labels.get(L.APP_LABEL, "")),
        team=_shared(meta.labels.get(L.TEAM_LABEL, "")),
        has_finalizer=L.FINALIZER in (metadata.get("finalizers") or ()),
        terminating=bool(metadata.get("deletionTimestamp")),
        users=tuple(sorted({UserKey(_shared(a.project), _shared(a.service), a.username) for a in deletes})),
        claims=tuple(sorted({(a.service_type, a.username) for a in deletes})),
    )


class Verdict(StrEnum):
    CREATE = "create"  # no such Secret: create it
    OURS = "ours"  # our labels for this app, our finalizer: update it
    ADOPT = "adopt"  # our type and this app, otherwise incomplete (Go-written, half-written)
    OTHER_APP = "other_app"  # a managed Secret of another app
    UNMANAGED = "unmanaged"  # a Secret without our type label (someone else's)
    TERMINATING = "terminating"  # being deleted: wait until it is gone


#: Verdicts under which the section may be provisioned and its Secret written.
WRITABLE = frozenset({Verdict.CREATE, Verdict.OURS, Verdict.ADOPT})


@dataclass(frozen=True, slots=True)
class WriteVerdict:
    kind: Verdict
    secret_name: str
    #: The app the Secret belongs to (OTHER_APP; empty when its `app` label is missing).
    owner: str = ""

    @property
    def may_write(self) -> bool:
        return self.kind in WRITABLE

    @property
    def conflict(self) -> bool:
        return self.kind in (Verdict.OTHER_APP, Verdict.UNMANAGED)

    @property
    def message(self) -> str:
        """Why the section is not provisioned (empty when it may be); never holds a value."""
        match self.kind:
            case Verdict.OTHER_APP:
                owner = f"application {self.owner}" if self.owner else "a managed Secret without an app label"
                return f"Secret {self.secret_name} belongs to {owner}; refusing to write it"
            case Verdict.UNMANAGED:
                return f"Secret {self.secret_name} exists and is not managed by aivenator; refusing to write it"
            case Verdict.TERMINATING:
                return f"Secret {self.secret_name} is being deleted; waiting until it is gone"
            case _:
                return ""


def _relabelled_ours(namespace: str, app: str, record: SecretRecord) -> bool:
    return bool(record.claims) and all(owner_matches(t, u, namespace, app) for t, u in record.claims)


def write_verdict(
    namespace: str,
    app: str,
    secret_name: str,
    record: SecretRecord | None,
    owner_exists: bool = True,
) -> WriteVerdict:
    """May application `namespace/app` write Secret `secret_name` (found as `record`, or absent)?

    `owner_exists`: whether the application the Secret's `app` label names exists in the
    namespace (only asked when that is not `app`)."""
    if record is None:
        return WriteVerdict(Verdict.CREATE, secret_name)
    if record.terminating:
        return WriteVerdict(Verdict.TERMINATING, secret_name, record.app)
    if not record.managed:
        return WriteVerdict(Verdict.UNMANAGED, secret_name)
    if record.app != app:
        if not owner_exists and _relabelled_ours(namespace, app, record):
            return WriteVerdict(Verdict.ADOPT, secret_name, app)
        return WriteVerdict(Verdict.OTHER_APP, secret_name, record.app)
    if record.team == namespace and record.has_finalizer:
        return WriteVerdict(Verdict.OURS, secret_name, app)
    return WriteVerdict(Verdict.ADOPT, secret_name, app)


def owner_of(record: SecretRecord | None) -> str | None:
    """The application a Secret belongs to (None: absent, unmanaged or without an app label)."""
    if record is None or not record.managed or not record.app:
        return None
    return record.app


class _TakenView:
    """`name in view`: is `UserKey(project, service, name)` recorded by a Secret other than
    `own`? A container view, so checking a candidate costs one dict look-up."""

    __slots__ = ("_index", "_own", "_project", "_service")

    def __init__(self, index: OwnershipIndex, project: str, service: str, own: SecretKey) -> None:
        self._index, self._project, self._service, self._own = index, project, service, own

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        holders = self._index.holders(UserKey(self._project, self._service, name))
        return bool(holders - {self._own})


class OwnershipIndex:
    """The managed Secrets' ownership facts, kept up to date one watch event at a time.

    Mutated only through `put`/`remove` (the shell calls them under its cache lock, once per
    cache change); every value stored is immutable and replaced whole, so a reader on another
    thread sees either the old or the new value, never a half-updated one. Costs: O(u) per
    event, u = users the Secret records (at most a handful), O(1) per look-up.
    """

    __slots__ = ("_holders", "_records")

    def __init__(self) -> None:
        self._records: dict[SecretKey, SecretRecord] = {}
        #: The Secrets recording each user: the key itself when one does (nearly always), a
        #: frozenset of two or more otherwise (kept small: one entry per managed Secret).
        self._holders: dict[UserKey, SecretKey | frozenset[SecretKey]] = {}

    # --- events ----------------------------------------------------------------------------

    def put(self, record: SecretRecord) -> None:
        """A Secret was added or changed (or written by us)."""
        old = self._records.get(record.key)
        if old is not None and old.users == record.users and old.claims == record.claims:
            # Keep the values the index already holds (its keys are the old user objects): a
            # Secret's users rarely change, and equal copies would only double the memory.
            record = replace(record, users=old.users, claims=old.claims)
        self._records[record.key] = record
        before = frozenset(old.users) if old is not None else frozenset()
        after = frozenset(record.users)
        for user in before - after:
            self._drop_holder(user, record.key)
        for user in after - before:
            held = self.holders(user) | {record.key}
            self._holders[user] = record.key if len(held) == 1 else held

    def remove(self, key: SecretKey) -> None:
        """A Secret is gone."""
        old = self._records.pop(key, None)
        if old is None:
            return
        for user in old.users:
            self._drop_holder(user, key)

    def apply(self, old: Mapping[str, object] | None, new: Mapping[str, object] | None) -> None:
        """One cache change in API shape: (None, obj) added, (obj, obj') changed, (obj, None) gone."""
        if new is None:
            if old is not None:
                self.remove(secret_record(old).key)
            return
        self.put(secret_record(new))

    def clear(self) -> None:
        self._records.clear()
        self._holders.clear()

    def _drop_holder(self, user: UserKey, key: SecretKey) -> None:
        rest = self.holders(user) - {key}
        if len(rest) > 1:
            self._holders[user] = rest
        elif rest:
            self._holders[user] = next(iter(rest))
        else:
            self._holders.pop(user, None)

    # --- look-ups --------------------------------------------------------------------------

    def record(self, namespace: str, name: str) -> SecretRecord | None:
        return self._records.get((namespace, name))

    def holders(self, user: UserKey) -> frozenset[SecretKey]:
        """The Secrets that record `user` (normally one)."""
        held = self._holders.get(user)
        if held is None:
            return frozenset()
        return held if isinstance(held, frozenset) else frozenset((held,))

    def owners(self, user: UserKey) -> frozenset[tuple[str, str, str]]:
        """(namespace, app, Secret name) of every Secret that records `user`."""
        out: set[tuple[str, str, str]] = set()
        for key in self.holders(user):
            record = self._records.get(key)
            if record is not None:
                out.add((record.namespace, record.app, record.name))
        return frozenset(out)

    def taken_by_others(self, project: str, service: str, own: SecretKey) -> _TakenView:
        """User names of `project`/`service` a Secret other than `own` records (a container)."""
        return _TakenView(self, project, service, own)

    def recorded_by(self, project: str, service: str, own: SecretKey) -> frozenset[str]:
        """User names of `project`/`service` the Secret `own` records."""
        record = self._records.get(own)
        if record is None:
            return frozenset()
        return frozenset(u.username for u in record.users if (u.project, u.service) == (project, service))

    def user_free(self, user: UserKey, own: SecretKey) -> bool:
        """May the Secret `own` record `user`? (No other Secret records it.)"""
        return not (self.holders(user) - {own})

    def recorded_elsewhere(self, user: UserKey, key: SecretKey) -> bool:
        """Does a live Secret other than `key` still record `user`? (Its deletion must wait.)"""
        return any(
            (r := self._records.get(other)) is not None and not r.terminating
            for other in self.holders(user) - {key}
        )

    def users(self) -> frozenset[UserKey]:
        """Every user some managed Secret records (a snapshot)."""
        return frozenset(self._holders)

    def records(self) -> tuple[SecretRecord, ...]:
        return tuple(self._records.values())

    def __len__(self) -> int:
        return len(self._records)

    def state(self) -> tuple[dict[SecretKey, SecretRecord], dict[UserKey, frozenset[SecretKey]]]:
        """Everything the index holds, for comparing it with a full recomputation."""
        return dict(self._records), {user: self.holders(user) for user in self._holders}


def build_index(records: Iterable[SecretRecord]) -> OwnershipIndex:
    """The index recomputed from scratch (what the incremental one must equal)."""
    index = OwnershipIndex()
    for record in records:
        index.put(record)
    return index


def recompute(records: Iterable[SecretRecord]) -> tuple[
    dict[SecretKey, SecretRecord], dict[UserKey, frozenset[SecretKey]]
]:
    """The index state computed directly from the records (no incremental bookkeeping)."""
    by_key = {r.key: r for r in records}
    holders: dict[UserKey, set[SecretKey]] = {}
    for record in by_key.values():
        for user in record.users:
            holders.setdefault(user, set()).add(record.key)
    return by_key, {u: frozenset(keys) for u, keys in holders.items()}
