"""Garbage collection of managed Secrets that nothing uses any more (product spec section 7).

A purely computational module: the shell lists managed Secrets, AivenApplications and workload
references, calls `plan_cleanup`, and deletes each planned Secret with the uid and
resourceVersion preconditions carried in the `Deletion` (so a Secret changed meanwhile is not
deleted on stale information).

Every rule errs on the side of keeping: a Secret we cannot prove unused, unprotected and old
enough is kept, with the reason recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from aivenator.domain import labels
from aivenator.domain.application import AivenApplication
from aivenator.domain.references import WorkloadRefs
from aivenator.domain.times import parse_time as parse_time

#: The largest share of time the janitor passes of one namespace may take: after a pass that took
#: d seconds, the next one of that namespace waits until d / share seconds after its start.
JANITOR_TIME_SHARE = 0.1


def janitor_delay(
    last_started: float | None, last_duration: float, now: float, share: float = JANITOR_TIME_SHARE
) -> float:
    """Seconds to wait before the next janitor pass of a namespace that was asked for one.

    Every synced application asks for a pass over its namespace, and a pass costs O(objects in
    the namespace): converging N applications of one namespace would cost N passes, N^2 in all.
    Asks within the wait coalesce into one pass, so passes take at most `share` of the time; a
    small namespace (a pass of a millisecond) is swept at once. Nothing is lost by waiting: an
    unused Secret must be unused for the grace period (minutes) before it is deleted."""
    if last_started is None or share <= 0:
        return 0.0
    return max(0.0, last_started + max(0.0, last_duration) / share - now)


def _str_pairs(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in value.items() if v is not None))


@dataclass(frozen=True, slots=True)
class SecretView:
    """What the domain needs to know about a Secret: metadata and data key names, no values."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    creation_timestamp: datetime | None
    deletion_requested: bool
    finalizers: tuple[str, ...]
    data_keys: frozenset[str]

    def label(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.labels if k == key), default)

    def annotation(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.annotations if k == key), default)

    @property
    def managed(self) -> bool:
        return self.label(labels.TYPE_LABEL) == labels.TYPE_VALUE

    @property
    def has_finalizer(self) -> bool:
        return labels.FINALIZER in self.finalizers


def secret_view(raw: Mapping[str, object]) -> SecretView:
    """Build a `SecretView` from a Secret dict as the API returns it; robust to missing fields.

    Only the names of `data` (and `stringData`) keys are kept: values never enter the domain here.
    """
    metadata = raw.get("metadata")
    meta: Mapping[str, object] = metadata if isinstance(metadata, Mapping) else {}
    keys: set[str] = set()
    for field in ("data", "stringData"):
        value = raw.get(field)
        if isinstance(value, Mapping):
            keys.update(str(k) for k in value)
    finalizers = meta.get("finalizers")
    return SecretView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        labels=_str_pairs(meta.get("labels")),
        annotations=_str_pairs(meta.get("annotations")),
        creation_timestamp=parse_time(meta.get("creationTimestamp")),
        deletion_requested=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(str(f) for f in finalizers) if isinstance(finalizers, list) else (),
        data_keys=frozenset(keys),
    )


# --- which Secret names each AivenApplication claims ------------------------------------------


@dataclass(frozen=True, slots=True)
class AppSecretRefs:
    """The Secret names one AivenApplication names, in its namespace."""

    namespace: str
    name: str
    secret_names: frozenset[str]


def app_secret_refs(app: AivenApplication) -> AppSecretRefs:
    return AppSecretRefs(app.namespace, app.name, frozenset(n for n in app.secret_names if n))


def app_secret_refs_from_raw(raw: Mapping[str, object]) -> AppSecretRefs:
    """Secret names from an AivenApplication dict, even one whose spec does not parse.

    An application with an invalid section still claims the Secret it names: a typo elsewhere in
    the spec must not let the janitor delete a Secret in use.
    """
    metadata = raw.get("metadata")
    meta: Mapping[str, object] = metadata if isinstance(metadata, Mapping) else {}
    spec_value = raw.get("spec")
    spec: Mapping[str, object] = spec_value if isinstance(spec_value, Mapping) else {}
    names: set[str] = set()

    def add(value: object) -> None:
        if isinstance(value, str) and value:
            names.add(value)

    add(spec.get("secretName"))
    for section in ("kafka", "openSearch"):
        value = spec.get(section)
        if isinstance(value, Mapping):
            add(value.get("secretName"))
    valkey = spec.get("valkey")
    if isinstance(valkey, list):
        for entry in valkey:
            if isinstance(entry, Mapping):
                add(entry.get("secretName"))
    return AppSecretRefs(str(meta.get("namespace") or ""), str(meta.get("name") or ""), frozenset(names))


# --- the plan -----------------------------------------------------------------------------------


class KeepReason(StrEnum):
    BEING_DELETED = "being_deleted"
    NOT_MANAGED = "not_managed"
    IN_USE_BY_WORKLOAD = "in_use_by_workload"
    IN_USE_BY_APPLICATION = "in_use_by_application"
    PROTECTED = "protected"
    PROTECTED_WITH_TIME_LIMIT = "protected_with_time_limit"
    TOO_YOUNG = "too_young"


class DeleteReason(StrEnum):
    UNUSED = "unused"
    PROTECTION_EXPIRED = "protection_expired"


@dataclass(frozen=True, slots=True)
class Deletion:
    namespace: str
    name: str
    uid: str
    resource_version: str
    reason: DeleteReason


@dataclass(frozen=True, slots=True)
class Kept:
    namespace: str
    name: str
    reason: KeepReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CleanupCounts:
    in_use: int = 0
    protected: int = 0
    protected_with_time_limit: int = 0
    too_young: int = 0
    being_deleted: int = 0
    not_managed: int = 0
    deleted: int = 0


@dataclass(frozen=True, slots=True)
class CleanupPlan:
    deletions: tuple[Deletion, ...]
    kept: tuple[Kept, ...]
    counts: CleanupCounts


def _is_true(value: str) -> bool:
    return value.strip().lower() == "true"


def _protection(secret: SecretView, now: datetime) -> tuple[KeepReason | None, str]:
    """Why protection keeps the Secret (None if it does not), with a detail for logs."""
    protected = _is_true(secret.annotation(labels.PROTECTED)) or _is_true(secret.label(labels.PROTECTED))
    if not protected:
        return None, ""
    if not _is_true(secret.annotation(labels.WITH_TIME_LIMIT)):
        return KeepReason.PROTECTED, ""
    raw_expiry = secret.annotation(labels.EXPIRES_AT)
    expires_at = parse_time(raw_expiry)
    if expires_at is None:
        return KeepReason.PROTECTED_WITH_TIME_LIMIT, "expires-at missing or unparseable"
    if expires_at > now:
        return KeepReason.PROTECTED_WITH_TIME_LIMIT, f"protected until {raw_expiry}"
    return None, ""


def _decide(
    secret: SecretView,
    workload_refs: Mapping[str, frozenset[str]],
    app_refs: Mapping[str, frozenset[str]],
    now: datetime,
    grace_period: timedelta,
) -> Deletion | Kept:
    def keep(reason: KeepReason, detail: str = "") -> Kept:
        return Kept(secret.namespace, secret.name, reason, detail)

    if secret.deletion_requested:
        return keep(KeepReason.BEING_DELETED)
    if not secret.managed:
        return keep(KeepReason.NOT_MANAGED)
    if secret.name in workload_refs.get(secret.namespace, frozenset()):
        return keep(KeepReason.IN_USE_BY_WORKLOAD)
    if secret.name in app_refs.get(secret.namespace, frozenset()):
        return keep(KeepReason.IN_USE_BY_APPLICATION)
    protection, detail = _protection(secret, now)
    if protection is not None:
        return keep(protection, detail)
    created = secret.creation_timestamp
    if created is None:
        return keep(KeepReason.TOO_YOUNG, "creationTimestamp unknown")
    if now - created < grace_period:
        return keep(KeepReason.TOO_YOUNG, f"created {created.isoformat()}")
    was_protected = _is_true(secret.annotation(labels.PROTECTED)) or _is_true(secret.label(labels.PROTECTED))
    reason = DeleteReason.PROTECTION_EXPIRED if was_protected else DeleteReason.UNUSED
    return Deletion(secret.namespace, secret.name, secret.uid, secret.resource_version, reason)


def _by_namespace(pairs: Iterable[tuple[str, frozenset[str]]]) -> Mapping[str, frozenset[str]]:
    acc: dict[str, set[str]] = {}
    for namespace, names in pairs:
        acc.setdefault(namespace, set()).update(names)
    return {ns: frozenset(names) for ns, names in acc.items()}


def plan_cleanup(
    secrets: Iterable[SecretView],
    applications: Iterable[AivenApplication | AppSecretRefs],
    workload_refs: Iterable[WorkloadRefs],
    now: datetime,
    grace_period: timedelta,
) -> CleanupPlan:
    """Decide, for every given Secret, whether to delete it or keep it (and why).

    Namespace-correct: a reference (by a workload or an AivenApplication) counts only for the
    Secret of that name in the same namespace. Pass parsed applications or `AppSecretRefs`
    (from `app_secret_refs_from_raw` for applications whose spec does not parse). Each input is
    iterated once, applications and workloads before the Secrets, so they may be generators.
    """
    refs = (app_secret_refs(a) if isinstance(a, AivenApplication) else a for a in applications)
    by_app = _by_namespace((r.namespace, r.secret_names) for r in refs)
    by_workload = _by_namespace((w.namespace, w.secret_names) for w in workload_refs)

    deletions: list[Deletion] = []
    kept: list[Kept] = []
    for secret in secrets:
        decision = _decide(secret, by_workload, by_app, now, grace_period)
        if isinstance(decision, Deletion):
            deletions.append(decision)
        else:
            kept.append(decision)

    def count(*reasons: KeepReason) -> int:
        return sum(1 for k in kept if k.reason in reasons)

    counts = CleanupCounts(
        in_use=count(KeepReason.IN_USE_BY_WORKLOAD, KeepReason.IN_USE_BY_APPLICATION),
        protected=count(KeepReason.PROTECTED),
        protected_with_time_limit=count(KeepReason.PROTECTED_WITH_TIME_LIMIT),
        too_young=count(KeepReason.TOO_YOUNG),
        being_deleted=count(KeepReason.BEING_DELETED),
        not_managed=count(KeepReason.NOT_MANAGED),
        deleted=len(deletions),
    )
    return CleanupPlan(tuple(deletions), tuple(kept), counts)
