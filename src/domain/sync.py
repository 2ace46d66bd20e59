"""When an AivenApplication must be synchronized, and the status to write afterwards.

A purely computational module.

`needs_sync` is the steady-state gate: it looks only at the application, the Kubernetes Secrets
the shell already has (metadata and data key names, no values) and certificate expiry times, so
an unchanged application costs no Aiven request and no Kubernetes write.

`compute_status` is deterministic in its inputs and idempotent: computing it again from its own
output (same results, any later `now`) gives an identical status, so the shell writes nothing
and emits no event. Times (`lastUpdateTime`, `synchronizationTime`) move only when something
they describe changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from aivenator.domain import labels
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceFacts, ServiceType
from aivenator.domain.janitor import SecretView, parse_time
from aivenator.domain.json_value import JsonValue
from aivenator.domain.limits import (
    MAX_CONDITION_MESSAGE,
    MAX_CONDITIONS,
    MAX_EVENT_MESSAGE,
    MAX_EVENTS_PER_PASS,
    MAX_INSTANCE_CONDITIONS,
    MAX_LISTED_IN_MESSAGE,
    truncate,
)
from aivenator.domain.parse import spec_hash as spec_hash
from aivenator.domain.secrets import COMMON_DATA_KEYS, common_labels
from aivenator.domain.services import SERVICES
from aivenator.domain.services.base import Section
from aivenator.domain.times import format_time

# The spec hash is computed by `aivenator.domain.parse.spec_hash` when the application is parsed
# (`AivenApplication.spec_hash`); it is re-exported here because the status records it.


# --- needs_sync -----------------------------------------------------------------------------------


class SyncKind(StrEnum):
    HASH_CLEARED = "hash_cleared"
    SPEC_CHANGED = "spec_changed"
    SECRET_MISSING = "secret_missing"
    SECRET_DRIFTED = "secret_drifted"
    CERT_RENEWAL = "cert_renewal"


@dataclass(frozen=True, slots=True)
class SyncReason:
    kind: SyncKind
    detail: str = ""

    @property
    def processing_reason(self) -> str:
        """The `processing_reason` label value of the `aivenator_processing_reason` metric."""
        return PROCESSING_REASONS[self.kind]


#: Label values of `aivenator_processing_reason`: the Go operator's (`HashChanged`: the spec hash
#: differs from `status.synchronizationHash`, a cleared hash included; `MissingSecret`) where a
#: kind of ours is the same decision, new values for the kinds it does not have. Its third value,
#: `MissingOwnerReference`, has no counterpart here (Secrets are not owned through
#: ownerReferences).
PROCESSING_REASONS: Mapping[SyncKind, str] = {
    SyncKind.HASH_CLEARED: "HashChanged",
    SyncKind.SPEC_CHANGED: "HashChanged",
    SyncKind.SECRET_MISSING: "MissingSecret",
    SyncKind.SECRET_DRIFTED: "SecretDrifted",
    SyncKind.CERT_RENEWAL: "CertificateRenewal",
}


def sections_of(app: AivenApplication) -> tuple[Section, ...]:
    return tuple(s for h in SERVICES for s in h.sections(app))


def _is_true(value: str) -> bool:
    return value.strip().lower() == "true"


def expected_labels(app: AivenApplication) -> Mapping[str, str]:
    """The labels the operator puts on every Secret of `app`."""
    return common_labels(app)


def _metadata_drift(app: AivenApplication, secret: SecretView) -> str | None:
    for key, value in expected_labels(app).items():
        if secret.label(key) != value:
            return f"label {key} differs"
    if _is_true(secret.annotation(labels.PROTECTED)) != app.protected:
        return f"annotation {labels.PROTECTED} differs"
    if app.protected and app.expires_at is not None:
        if not _is_true(secret.annotation(labels.WITH_TIME_LIMIT)):
            return f"annotation {labels.WITH_TIME_LIMIT} missing"
        # The annotation is written with second precision: compare at that precision, or a
        # fractional expiresAt would look like drift forever.
        written = parse_time(secret.annotation(labels.EXPIRES_AT))
        if written is None or written.replace(microsecond=0) != app.expires_at.replace(microsecond=0):
            return f"annotation {labels.EXPIRES_AT} differs"
    if not secret.has_finalizer:
        return "finalizer missing"
    # The deployment correlation id is informational: a change alone is no reason to resync.
    return None


#: Annotations we write that the Go operator did not: a Secret it wrote lacks them, and their
#: absence is not drift (a takeover must not resync, and cleanup works without them: a Kafka
#: Secret without its service name tries every candidate service). The next real sync adds them.
ANNOTATIONS_GO_DID_NOT_WRITE = frozenset({labels.KAFKA_SERVICE_NAME})


def _section_drift(
    app: AivenApplication, section: Section, secret: SecretView, facts: ServiceFacts | None
) -> str | None:
    handler = next(h for h in SERVICES if h.service_type is section.service_type)
    present = frozenset(secret.data_keys)
    required = handler.required_data_keys(section, facts, present) | COMMON_DATA_KEYS
    missing = sorted(required - present)
    if missing:
        return f"{section.key}: data key {missing[0]} missing"
    if facts is not None:
        # Knowing the service, keys it no longer warrants (a replica that went away) are stale.
        stale = sorted((handler.owned_data_keys(section) & present) - required)
        if stale:
            return f"{section.key}: data key {stale[0]} is stale"
    for key in sorted(handler.owned_annotation_keys(section) - ANNOTATIONS_GO_DID_NOT_WRITE):
        if not secret.annotation(key):
            return f"{section.key}: annotation {key} missing"
    if section.service_type is ServiceType.KAFKA and secret.annotation(labels.KAFKA_POOL) != section.pool:
        return f"{section.key}: annotation {labels.KAFKA_POOL} differs"
    if section.service_type is ServiceType.VALKEY:
        expected = f"valkey-{app.namespace}-{section.instance}"
        if secret.annotation(labels.valkey_service_name_annotation(section.instance)) != expected:
            return f"{section.key}: service name annotation differs"
    if section.service_type is ServiceType.OPENSEARCH:
        allowed = {f"opensearch-{app.namespace}-{section.instance}", section.instance}
        if secret.annotation(labels.OPENSEARCH_SERVICE_NAME) not in allowed:
            return f"{section.key}: service name annotation differs"
    return None


def drift(
    app: AivenApplication, section: Section, secret: SecretView, facts: ServiceFacts | None = None
) -> str | None:
    """Why the Secret no longer matches what the operator wrote for `section` (None if it does).

    Cheap by design: metadata and data key names only, never values, never Aiven. `facts` (the
    section's service as last seen, if the shell has it cached) makes the data-key check exact;
    without it, keys that depend on the service's features are judged all-or-none
    (`ServiceHandler.required_data_keys`).
    """
    return _metadata_drift(app, secret) or _section_drift(app, section, secret, facts)


def needs_sync(
    app: AivenApplication,
    existing_secrets: Mapping[str, SecretView | None],
    now: datetime,
    cert_not_valid_after: Mapping[str, datetime] | None = None,
    renewal_window: timedelta = timedelta(days=30),
    *,
    service_facts: Mapping[str, ServiceFacts] | None = None,
) -> SyncReason | None:
    """Why `app` must be synchronized now, or None if it is in its steady state.

    `existing_secrets` maps each of the app's Secret names to the Secret found in the app's
    namespace (None or absent: not found). `cert_not_valid_after` maps a Kafka Secret name to the
    expiry of the certificate it holds. `service_facts` optionally maps a Secret name to the
    facts of its section's service already at hand (never fetched for this), which makes drift
    detection exact (see `drift`). A Secret that is being deleted is not judged: its deletion
    (watch event) triggers the resync once it is gone.
    """
    known_facts = service_facts or {}
    if app.deletion_requested:
        return None
    if not app.status_hash:
        return SyncReason(SyncKind.HASH_CLEARED)
    if app.status_hash != app.spec_hash:
        return SyncReason(SyncKind.SPEC_CHANGED)
    for section in sections_of(app):
        secret = existing_secrets.get(section.secret_name)
        if secret is None:
            return SyncReason(SyncKind.SECRET_MISSING, section.secret_name)
        if secret.deletion_requested:
            continue
        why = drift(app, section, secret, known_facts.get(section.secret_name))
        if why is not None:
            return SyncReason(SyncKind.SECRET_DRIFTED, f"{section.secret_name}: {why}")
    certs = cert_not_valid_after or {}
    for section in sections_of(app):
        if section.service_type is not ServiceType.KAFKA:
            continue
        not_after = certs.get(section.secret_name)
        if not_after is not None and not_after - renewal_window <= now:
            return SyncReason(
                SyncKind.CERT_RENEWAL,
                f"{section.secret_name}: certificate valid until {format_time(not_after)}",
            )
    return None


# --- status ---------------------------------------------------------------------------------------

ROLLOUT_COMPLETE = "RolloutComplete"
ROLLOUT_FAILED = "RolloutFailed"

SUCCEEDED = "Succeeded"
READY = "Ready"
AIVEN_FAILURE = "AivenFailure"
LOCAL_FAILURE = "LocalFailure"
INVALID_SPEC = "InvalidSpec"
DEPRECATED = "Deprecated"
KAFKA_READY = "KafkaReady"
OPENSEARCH_READY = "OpenSearchReady"
VALKEY_READY_PREFIX = "ValkeyReady-"
#: One condition for all Valkey entries, written instead of per-instance ones past
#: `MAX_INSTANCE_CONDITIONS` entries.
VALKEY_READY = "ValkeyReady"
NAME_FALLBACK = "NameFallback"
CERTIFICATE_RENEWAL = "CertificateRenewal"
#: A section names a Secret that is not this application's (another app's, or unmanaged).
SECRET_CONFLICT = "SecretConflict"

_FIXED_TYPES = frozenset(
    {
        SUCCEEDED,
        READY,
        AIVEN_FAILURE,
        LOCAL_FAILURE,
        INVALID_SPEC,
        DEPRECATED,
        KAFKA_READY,
        OPENSEARCH_READY,
        VALKEY_READY,
        NAME_FALLBACK,
        CERTIFICATE_RENEWAL,
        SECRET_CONFLICT,
    }
)

#: The most conditions the operator writes itself: the fixed types and the per-instance ones
#: (the aggregate `ValkeyReady` replaces those, so this over-counts by one).
MAX_OWN_CONDITIONS = len(_FIXED_TYPES) + MAX_INSTANCE_CONDITIONS

#: What Kubernetes accepts as a condition type (metav1.Condition), without the domain prefix.
CONDITION_TYPE_PATTERN = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONDITION_TYPE_MAX = 316


def _owned_type(condition_type: str) -> bool:
    return condition_type in _FIXED_TYPES or condition_type.startswith(VALKEY_READY_PREFIX)


def valkey_condition_type(instance: str) -> str:
    """`ValkeyReady-<instance>`, with characters a condition type cannot hold replaced by `-`."""
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", instance)
    cleaned = re.sub(r"[^A-Za-z0-9]+$", "", cleaned)
    return (
        (VALKEY_READY_PREFIX + cleaned)[:_CONDITION_TYPE_MAX] if cleaned else VALKEY_READY_PREFIX + "unnamed"
    )


class ServiceState(StrEnum):
    READY = "Ready"
    AIVEN_FAILURE = "AivenFailure"
    LOCAL_FAILURE = "LocalFailure"
    WAITING = "Waiting"
    INVALID = "InvalidSpec"
    SECRET_CONFLICT = "SecretConflict"


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """How one section (one Secret) of an application fared in this synchronization.

    `message` must hold no credential (error messages are redacted by the adapters).
    `name_note` explains a fallback user name (empty when the compatible name was used).
    """

    service: ServiceType
    state: ServiceState
    instance: str = ""
    message: str = ""
    name_note: str = ""
    cert_not_valid_after: datetime | None = None
    cert_renewed: bool = False

    @property
    def condition_type(self) -> str:
        if self.service is ServiceType.KAFKA:
            return KAFKA_READY
        if self.service is ServiceType.OPENSEARCH:
            return OPENSEARCH_READY
        return valkey_condition_type(self.instance)

    @property
    def label(self) -> str:
        return f"{self.service}/{self.instance}" if self.service is ServiceType.VALKEY else str(self.service)


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_update_time: str
    #: When `status` last changed (metav1.Condition convention; the Go operator did not write it).
    last_transition_time: str = ""

    def same_state(self, other: Condition) -> bool:
        return (self.status, self.reason, self.message) == (other.status, other.reason, other.message)


@dataclass(frozen=True, slots=True)
class AppStatus:
    """The whole `status` of an AivenApplication, as the operator writes it."""

    synchronization_hash: str | None = None
    synchronization_state: str | None = None
    synchronization_time: str | None = None
    synchronized_generation: int | None = None
    observed_generation: int | None = None
    conditions: tuple[Condition, ...] = ()

    def condition(self, condition_type: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)

    def to_dict(self) -> dict[str, JsonValue]:
        """The status object in API shape (camelCase); absent values are left out."""
        out: dict[str, JsonValue] = {}
        for key, value in (
            ("synchronizationHash", self.synchronization_hash),
            ("synchronizationState", self.synchronization_state),
            ("synchronizationTime", self.synchronization_time),
            ("synchronizedGeneration", self.synchronized_generation),
            ("observedGeneration", self.observed_generation),
        ):
            if value is not None:
                out[key] = value
        out["conditions"] = [
            {
                "type": c.type,
                "status": c.status,
                "lastUpdateTime": c.last_update_time,
                **({"lastTransitionTime": c.last_transition_time} if c.last_transition_time else {}),
                "reason": c.reason,
                "message": c.message,
            }
            for c in self.conditions
        ]
        return out


def status_patch_body(status: AppStatus) -> dict[str, dict[str, JsonValue]]:
    """A JSON merge patch for the status subresource; fields now absent are removed (None)."""
    body: dict[str, JsonValue] = {
        "synchronizationHash": None,
        "synchronizationState": None,
        "synchronizationTime": None,
        "synchronizedGeneration": None,
        "observedGeneration": None,
    }
    body.update(status.to_dict())
    return {"status": body}


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def status_from_dict(raw: Mapping[str, object] | None) -> AppStatus:
    """Read a `status` object as the API returns it; robust to missing or odd fields."""
    if not isinstance(raw, Mapping):
        return AppStatus()
    conditions: list[Condition] = []
    raw_conditions = raw.get("conditions")
    for item in raw_conditions if isinstance(raw_conditions, list) else []:
        if not isinstance(item, Mapping) or not _opt_str(item.get("type")):
            continue
        conditions.append(
            Condition(
                type=str(item.get("type")),
                status=str(item.get("status") or "Unknown"),
                reason=str(item.get("reason") or ""),
                message=str(item.get("message") or ""),
                last_update_time=str(item.get("lastUpdateTime") or ""),
                last_transition_time=str(item.get("lastTransitionTime") or ""),
            )
        )
    return AppStatus(
        synchronization_hash=_opt_str(raw.get("synchronizationHash")),
        synchronization_state=_opt_str(raw.get("synchronizationState")),
        synchronization_time=_opt_str(raw.get("synchronizationTime")),
        synchronized_generation=_opt_int(raw.get("synchronizedGeneration")),
        observed_generation=_opt_int(raw.get("observedGeneration")),
        conditions=tuple(conditions),
    )


@dataclass(frozen=True, slots=True)
class _Desired:
    type: str
    status: bool
    reason: str
    message: str = ""


def _merge_conditions(
    desired: Sequence[_Desired], previous: AppStatus | None, now: datetime
) -> tuple[Condition, ...]:
    """Our conditions in our order (timestamps kept where nothing changed), then foreign ones."""
    stamp = format_time(now)
    out: list[Condition] = []
    for d in desired:
        message = truncate(d.message, MAX_CONDITION_MESSAGE)
        fresh = Condition(d.type, "True" if d.status else "False", d.reason, message, stamp, stamp)
        old = previous.condition(d.type) if previous is not None else None
        if old is not None and old.status == fresh.status and old.last_transition_time:
            fresh = replace(fresh, last_transition_time=old.last_transition_time)
        if old is not None and old.same_state(fresh) and old.last_update_time:
            fresh = replace(fresh, last_update_time=old.last_update_time)
        out.append(fresh)
    if previous is not None:
        # Other writers' conditions are kept, as many as the CRD's bound leaves room for.
        foreign = [c for c in previous.conditions if not _owned_type(c.type)]
        out.extend(foreign[: max(0, MAX_CONDITIONS - len(out))])
    return tuple(out)


def _service_conditions(results: Sequence[ServiceResult]) -> list[_Desired]:
    """One condition per section; past `MAX_INSTANCE_CONDITIONS` Valkey entries, one for them all."""
    valkey = [r for r in results if r.service is ServiceType.VALKEY]
    if len(valkey) <= MAX_INSTANCE_CONDITIONS:
        return [
            _Desired(r.condition_type, r.state is ServiceState.READY, str(r.state), r.message)
            for r in results
        ]
    out = [
        _Desired(r.condition_type, r.state is ServiceState.READY, str(r.state), r.message)
        for r in results
        if r.service is not ServiceType.VALKEY
    ]
    failed = [r for r in valkey if r.state is not ServiceState.READY]
    ready = len(valkey) - len(failed)
    message = f"{ready} of {len(valkey)} Valkey instances ready"
    if failed:
        message += ": " + _listed(f"{r.label}: {r.message or r.state}" for r in failed)
    out.append(_Desired(VALKEY_READY, not failed, "Ready" if not failed else "NotAllReady", message))
    return out


def _join(messages: Iterable[str]) -> str:
    return _listed(messages)


def _listed(messages: Iterable[str], limit: int = MAX_LISTED_IN_MESSAGE) -> str:
    """The non-empty messages joined with "; ", at most `limit` of them, then "... and N more"."""
    present = [m for m in messages if m]
    if len(present) <= limit:
        return "; ".join(present)
    return "; ".join(present[:limit]) + f"; ... and {len(present) - limit} more"


def _finish(
    previous: AppStatus | None,
    now: datetime,
    *,
    generation: int,
    succeeded: bool,
    new_hash: str | None,
    desired: Sequence[_Desired],
) -> AppStatus:
    prev = previous or AppStatus()
    candidate = AppStatus(
        synchronization_hash=new_hash if succeeded else prev.synchronization_hash,
        synchronization_state=ROLLOUT_COMPLETE if succeeded else ROLLOUT_FAILED,
        synchronization_time=prev.synchronization_time,
        synchronized_generation=generation if succeeded else prev.synchronized_generation,
        observed_generation=generation,
        conditions=_merge_conditions(desired, previous, now),
    )
    if succeeded and (
        prev.synchronization_time is None
        or (
            candidate.synchronization_hash,
            candidate.synchronization_state,
            candidate.synchronized_generation,
        )
        != (prev.synchronization_hash, prev.synchronization_state, prev.synchronized_generation)
    ):
        candidate = replace(candidate, synchronization_time=format_time(now))
    return candidate


def compute_status(
    app: AivenApplication,
    per_service_results: Sequence[ServiceResult],
    now: datetime,
    previous_status: AppStatus | None,
) -> AppStatus:
    """The status after synchronizing `app`, given how each section fared.

    The rollout succeeded only if every section is ready; then the spec hash and generation are
    recorded. Otherwise the previous hash stays, so the next pass synchronizes again. Per-service
    conditions (`KafkaReady`, `OpenSearchReady`, `ValkeyReady-<instance>`) show which section
    failed without hiding the others; `Ready` aggregates them.
    """
    results = tuple(per_service_results)
    succeeded = all(r.state is ServiceState.READY for r in results)
    failed = [r for r in results if r.state is not ServiceState.READY]
    aiven = [r for r in results if r.state in (ServiceState.AIVEN_FAILURE, ServiceState.WAITING)]
    local = [r for r in results if r.state is ServiceState.LOCAL_FAILURE]
    invalid = [r for r in results if r.state is ServiceState.INVALID]
    conflicts = [r for r in results if r.state is ServiceState.SECRET_CONFLICT]

    def summary(rs: Sequence[ServiceResult]) -> str:
        return _join(f"{r.label}: {r.message or r.state}" for r in rs)

    desired: list[_Desired] = [
        _Desired(SUCCEEDED, succeeded, ROLLOUT_COMPLETE if succeeded else ROLLOUT_FAILED, summary(failed)),
        _Desired(READY, succeeded, "AllServicesReady" if succeeded else "ServicesNotReady", summary(failed)),
        _Desired(AIVEN_FAILURE, bool(aiven), AIVEN_FAILURE if aiven else "NoFailure", summary(aiven)),
        _Desired(LOCAL_FAILURE, bool(local), LOCAL_FAILURE if local else "NoFailure", summary(local)),
    ]
    if invalid:
        desired.append(_Desired(INVALID_SPEC, True, INVALID_SPEC, summary(invalid)))
    if conflicts:
        desired.append(_Desired(SECRET_CONFLICT, True, SECRET_CONFLICT, summary(conflicts)))
    if app.deprecated_secret_name:
        desired.append(
            _Desired(
                DEPRECATED,
                True,
                "DeprecatedSecretName",
                "spec.secretName is deprecated and ignored; use the per-service secretName",
            )
        )
    desired.extend(_service_conditions(results))
    notes = [r for r in results if r.name_note]
    if notes:
        desired.append(
            _Desired(
                NAME_FALLBACK, True, "FallbackUserName", _join(f"{r.label}: {r.name_note}" for r in notes)
            )
        )
    certs = [r for r in results if r.service is ServiceType.KAFKA and r.cert_not_valid_after is not None]
    if certs:
        renewed = any(r.cert_renewed for r in certs)
        soonest = min(r.cert_not_valid_after for r in certs if r.cert_not_valid_after is not None)
        days_left = max(0, (soonest - now) // timedelta(days=1))
        desired.append(
            _Desired(
                CERTIFICATE_RENEWAL,
                renewed,
                "Renewed" if renewed else "NotDue",
                f"Kafka certificate valid until {format_time(soonest)} ({days_left} days left)",
            )
        )
    return _finish(
        previous_status,
        now,
        generation=app.generation,
        succeeded=succeeded,
        new_hash=app.spec_hash,
        desired=desired,
    )


def compute_invalid_status(
    generation: int, problems: Sequence[str], now: datetime, previous_status: AppStatus | None
) -> AppStatus:
    """The status of an application whose spec cannot be parsed at all (no section was tried)."""
    message = _join(problems) or "invalid spec"
    desired = [
        _Desired(SUCCEEDED, False, ROLLOUT_FAILED, message),
        _Desired(READY, False, INVALID_SPEC, message),
        _Desired(AIVEN_FAILURE, False, "NoFailure"),
        _Desired(LOCAL_FAILURE, False, "NoFailure"),
        _Desired(INVALID_SPEC, True, INVALID_SPEC, message),
    ]
    return _finish(
        previous_status, now, generation=generation, succeeded=False, new_hash=None, desired=desired
    )


def status_changed(old: AppStatus | None, new: AppStatus) -> bool:
    """Whether `new` must be written (an absent old status always must)."""
    return old != new


@dataclass(frozen=True, slots=True)
class Transition:
    """A condition whose status changed (None: absent). Events are emitted only for these."""

    type: str
    old_status: str | None
    new_status: str | None
    reason: str
    message: str


def transitions(old: AppStatus | None, new: AppStatus) -> tuple[Transition, ...]:
    """Conditions that appeared, disappeared or changed status, in `new`'s order then removed ones."""
    previous = {c.type: c for c in (old.conditions if old is not None else ())}
    current = {c.type: c for c in new.conditions}
    out: list[Transition] = []
    for c in new.conditions:
        before = previous.get(c.type)
        if before is None or before.status != c.status:
            out.append(Transition(c.type, before.status if before else None, c.status, c.reason, c.message))
    for c in old.conditions if old is not None else ():
        if c.type not in current:
            out.append(Transition(c.type, c.status, None, "Removed", ""))
    return tuple(out)


#: Conditions that are bad news when True (all others are bad news when False).
_BAD_WHEN_TRUE = frozenset({AIVEN_FAILURE, LOCAL_FAILURE, INVALID_SPEC, SECRET_CONFLICT})


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A Kubernetes Event to record on the application after its status was written."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def status_events(old: AppStatus | None, new: AppStatus) -> tuple[StatusEvent, ...]:
    """The events for writing `new` over `old`: at most `MAX_EVENTS_PER_PASS`, whatever the spec.

    One per condition transition that is news: a condition going bad (Warning, reason = its
    type), recovering (Normal, reason = its reason), or `Ready` appearing. A condition appearing
    in its good state or disappearing is not news. Past the bound, the last event summarises the
    transitions left out (Warning if any of them is bad). Messages must already be redacted; they
    are cut to what the Events API accepts.
    """
    events: list[StatusEvent] = []
    for t in transitions(old, new):
        if t.new_status is None:
            continue
        bad = (t.new_status == "True") if t.type in _BAD_WHEN_TRUE else (t.new_status == "False")
        if t.old_status is None and not bad and t.type != READY:
            continue
        events.append(
            StatusEvent(
                "Warning" if bad else "Normal",
                t.type if bad else t.reason or t.type,
                truncate(t.message or t.reason, MAX_EVENT_MESSAGE),
            )
        )
    if len(events) <= MAX_EVENTS_PER_PASS:
        return tuple(events)
    kept, rest = events[: MAX_EVENTS_PER_PASS - 1], events[MAX_EVENTS_PER_PASS - 1 :]
    warning = any(e.type == "Warning" for e in rest)
    reasons = _listed(sorted({e.reason for e in rest}))
    summary = StatusEvent(
        "Warning" if warning else "Normal",
        "MoreConditionChanges",
        truncate(f"{len(rest)} more condition changes: {reasons}", MAX_EVENT_MESSAGE),
    )
    return (*kept, summary)


def cert_renewed(
    held_not_after: datetime | None,
    issued_not_after: datetime | None,
    now: datetime,
    renewal_window: timedelta,
) -> bool:
    """Did this pass renew a Kafka certificate? The Secret held one inside its renewal window
    (`held_not_after`) and Aiven now issues a different one (`issued_not_after`)."""
    return (
        held_not_after is not None
        and held_not_after - renewal_window <= now
        and issued_not_after is not None
        and issued_not_after != held_not_after
    )
