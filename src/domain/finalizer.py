"""Cleanup when a managed Secret is deleted (product spec section 6), with ownership checks.

A purely computational module. The annotations on a Secret are tenant-writable, so the Aiven
actions derived from them (`aivenator.domain.services.cleanup_actions`) are requests, and each one is
checked here before the shell may execute it. An action is refused (with a reason) when:

- the user is built in (`avnadmin`, `default`, ... see `aivenator.domain.names.BUILTIN_USERS`);
- the Secret's `team` label is not its own namespace (the labels were tampered with);
- the user does not belong to the Secret's namespace and `app` label under our naming rules
  (`aivenator.domain.names.owner_matches`): Kafka names embed a hash of namespace and app, OpenSearch names
  the namespace, Valkey names only the app;
- for OpenSearch and Valkey, the service is not proven to belong to the Secret's namespace. User
  names alone cannot prove it (Valkey names carry no namespace at all, and `valkey-a-b-c` reads
  as namespace `a` + instance `b-c` or as `a-b` + `c`), so the proof is the `aiven.io/v1alpha1`
  object named like the service existing in the Secret's own namespace (the action's
  `requires`), which the shell looks up (`required_objects`) before planning. Valkey services
  must also be named `valkey-<namespace>-...`. OpenSearch services are either
  `opensearch-<namespace>-...` or, for legacy instances, any name: for those the object in the
  namespace is the only proof, exactly as when credentials were first handed out;
- the project is not one the operator serves (when the shell says which ones those are);
- the user is still recorded by another live managed Secret (`aivenator.domain.ownership`):
  deleting it would take the credentials of a Secret still in use.

A refused action is reported, never executed; it does not keep the finalizer, so a forged
annotation cannot block the Secret's deletion. A legitimate user left behind because its proof
was gone (for example the OpenSearch object was deleted first) is found by the orphan sweep.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from aivenator.domain import labels
from aivenator.domain.actions import Action, RemoveOpenSearchAcl, RequiredObject
from aivenator.domain.facts import (
    AivenError,
    Conflict,
    NotFound,
    Rejected,
    ServiceType,
    Throttled,
    Unavailable,
)
from aivenator.domain.janitor import SecretView
from aivenator.domain.names import is_builtin, owner_matches
from aivenator.domain.outcomes import backoff
from aivenator.domain.ownership import UserKey
from aivenator.domain.services import cleanup_actions
from aivenator.domain.services.base import SecretMeta

_OBJECT_KINDS = {ServiceType.OPENSEARCH: labels.OPENSEARCH_KIND, ServiceType.VALKEY: labels.VALKEY_KIND}


class RefusalReason(StrEnum):
    BUILTIN_USER = "builtin_user"
    LABELS_TAMPERED = "labels_tampered"
    FOREIGN_USER = "foreign_user"
    FOREIGN_SERVICE = "foreign_service"
    SERVICE_NOT_PROVEN = "service_not_proven"
    PROJECT_NOT_ALLOWED = "project_not_allowed"
    STILL_RECORDED = "still_recorded"


@dataclass(frozen=True, slots=True)
class Refused:
    action: Action
    reason: RefusalReason
    detail: str


@dataclass(frozen=True, slots=True)
class FinalizerPlan:
    """Actions to execute, requests refused, and whether our finalizer is to be removed once the
    actions succeeded (False when the Secret is not being deleted or carries no finalizer of ours)."""

    actions: tuple[Action, ...]
    refused: tuple[Refused, ...]
    remove_finalizer: bool


def _service_type(action: Action) -> ServiceType:
    return ServiceType.OPENSEARCH if isinstance(action, RemoveOpenSearchAcl) else action.service_type


def secret_meta(secret: SecretView) -> SecretMeta:
    return SecretMeta(secret.namespace, secret.name, dict(secret.labels), dict(secret.annotations))


def requested_actions(secret: SecretView) -> tuple[Action, ...]:
    """What the Secret's annotations ask for, unchecked."""
    return cleanup_actions(secret_meta(secret))


def required_objects(secret: SecretView) -> tuple[RequiredObject, ...]:
    """The objects in the Secret's namespace whose existence the shell must look up before
    `plan_finalizer` (objects claimed in other namespaces are never looked up: refused anyway)."""
    seen: dict[RequiredObject, None] = {}
    for action in requested_actions(secret):
        if action.requires is not None and action.requires.namespace == secret.namespace:
            seen[action.requires] = None
    return tuple(seen)


def _service_refusal(
    action: Action, secret: SecretView, existing: Collection[RequiredObject]
) -> tuple[RefusalReason, str] | None:
    service_type = _service_type(action)
    namespace = secret.namespace
    if service_type is ServiceType.VALKEY and not action.service.startswith(f"valkey-{namespace}-"):
        return (
            RefusalReason.FOREIGN_SERVICE,
            f"Valkey service {action.service} is not named for namespace {namespace}",
        )
    required = action.requires
    if required is None:
        return (
            RefusalReason.SERVICE_NOT_PROVEN,
            f"no proof that service {action.service} belongs to {namespace}",
        )
    expected = RequiredObject(
        labels.AIVEN_IO_API_VERSION, _OBJECT_KINDS[service_type], namespace, action.service
    )
    if required != expected:
        return RefusalReason.FOREIGN_SERVICE, f"service {action.service} is claimed through another object"
    if required not in existing:
        return (
            RefusalReason.SERVICE_NOT_PROVEN,
            f"no {required.kind} {required.name} in namespace {namespace}",
        )
    return None


def check_action(
    action: Action,
    secret: SecretView,
    existing_objects: Collection[RequiredObject],
    allowed_projects: Collection[str] | None = None,
    main_project: str | None = None,
) -> Refused | None:
    """Why `action` must not be executed for `secret` (None: it may)."""

    def refuse(reason: RefusalReason, detail: str) -> Refused:
        return Refused(action, reason, detail)

    service_type = _service_type(action)
    if is_builtin(action.username):
        return refuse(RefusalReason.BUILTIN_USER, f"{action.username} is a built-in user")
    team = secret.label(labels.TEAM_LABEL)
    if team != secret.namespace:
        return refuse(
            RefusalReason.LABELS_TAMPERED, f"team label {team!r} is not the namespace {secret.namespace!r}"
        )
    app = secret.label(labels.APP_LABEL)
    if not owner_matches(service_type, action.username, secret.namespace, app):
        return refuse(
            RefusalReason.FOREIGN_USER,
            f"{service_type} user {action.username} is not owned by {secret.namespace}/{app}",
        )
    if service_type is ServiceType.KAFKA:
        if allowed_projects is not None and action.project not in allowed_projects:
            return refuse(
                RefusalReason.PROJECT_NOT_ALLOWED, f"project {action.project} is not an allowed Kafka pool"
            )
        if action.requires is not None and action.requires not in existing_objects:
            return refuse(
                RefusalReason.SERVICE_NOT_PROVEN, f"no {action.requires.kind} {action.requires.name}"
            )
        return None
    if main_project is not None and action.project != main_project:
        return refuse(RefusalReason.PROJECT_NOT_ALLOWED, f"project {action.project} is not the main project")
    service_problem = _service_refusal(action, secret, existing_objects)
    return refuse(*service_problem) if service_problem is not None else None


def plan_finalizer(
    secret: SecretView,
    existing_objects: Collection[RequiredObject] = (),
    allowed_projects: Collection[str] | None = None,
    main_project: str | None = None,
    recorded_elsewhere: Collection[UserKey] = (),
) -> FinalizerPlan:
    """The checked cleanup for a Secret being deleted.

    `existing_objects`: those of `required_objects(secret)` that exist (any state).
    `allowed_projects` / `main_project`: the operator's configuration; None skips that check.
    `recorded_elsewhere`: users of this Secret that another live managed Secret also records
    (`OwnershipIndex.recorded_elsewhere`): they stay.
    """
    if not secret.deletion_requested or not secret.has_finalizer:
        return FinalizerPlan((), (), False)
    allowed: list[Action] = []
    refused: list[Refused] = []
    for action in requested_actions(secret):
        refusal = check_action(action, secret, existing_objects, allowed_projects, main_project)
        if refusal is None and UserKey(action.project, action.service, action.username) in recorded_elsewhere:
            refusal = Refused(
                action,
                RefusalReason.STILL_RECORDED,
                f"user {action.username} on {action.service} is still recorded by another Secret",
            )
        if refusal is None:
            allowed.append(action)
        else:
            refused.append(refusal)
    return FinalizerPlan(tuple(allowed), tuple(refused), True)


# --- after executing the actions -------------------------------------------------------------------

#: Retries of a failing cleanup before it is declared stuck.
DEFAULT_MAX_ATTEMPTS = 8
#: A stuck cleanup is still retried, at most this rarely, so it recovers once Aiven does.
STUCK_RETRY_SECONDS = 3600.0
#: The first retry once stuck; the pause doubles each time up to `STUCK_RETRY_SECONDS`.
STUCK_FIRST_RETRY_SECONDS = 300.0
#: Aiven requests one action may cost before its Secret is reported stuck, the Aiven client's
#: own retries included (each pass may send up to the client's attempts per request).
REQUEST_BUDGET_PER_CYCLE = 10


def cleanup_passes(client_attempts: int, max_passes: int, budget: int = REQUEST_BUDGET_PER_CYCLE) -> int:
    """Passes of a failing cleanup before it is reported stuck.

    Each pass may send `client_attempts` requests per action (the client retries 5xx itself), so
    `budget // client_attempts` passes keep one stuck cycle within `budget` requests; at least
    one pass, at most `max_passes` (the operator's configured limit).
    """
    return max(1, min(max_passes, budget // max(1, client_attempts)))


def stuck_retry_after(passes_while_stuck: int) -> float:
    """The pause before the next pass of a stuck cleanup (1: the first since it got stuck):
    5 minutes, doubling, at most an hour."""
    exponent = min(max(0, passes_while_stuck - 1), 16)
    return min(STUCK_RETRY_SECONDS, STUCK_FIRST_RETRY_SECONDS * 2.0**exponent)


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    pass


@dataclass(frozen=True, slots=True)
class RetryCleanup:
    after: float
    reason: str


@dataclass(frozen=True, slots=True)
class Stuck:
    """Cleanup keeps failing: keep the finalizer, make it visible (Warning event, metric), and
    retry only rarely."""

    reason: str
    retry_after: float = STUCK_RETRY_SECONDS


CleanupDecision = RemoveFinalizer | RetryCleanup | Stuck


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The result of executing one action: `error` None means it succeeded."""

    action: Action
    error: AivenError | None = None


def _describe(action: Action) -> str:
    verb = "remove OpenSearch ACL of" if isinstance(action, RemoveOpenSearchAcl) else "delete user"
    return f"{verb} {action.username} in {action.project}/{action.service}"


def decide_after_cleanup(
    results: Sequence[ActionResult], attempts: int, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> CleanupDecision:
    """What to do once the planned actions ran (`attempts`: passes so far, including this one).

    Success and NotFound (user or service already gone) both count as done: a missing service must
    never leave a Secret, or a namespace, stuck. Transient errors are retried with backoff up to
    `max_attempts` passes (see `cleanup_passes`); after that, and at once for errors retrying
    cannot fix, the cleanup is stuck and retried with `stuck_retry_after`'s growing pause.
    """
    failures = [r for r in results if r.error is not None and not isinstance(r.error, NotFound)]
    if not failures:
        return RemoveFinalizer()
    reason = "; ".join(f"{_describe(r.action)}: {_error_text(r.error)}" for r in failures)
    if any(isinstance(r.error, Rejected) for r in failures):
        return Stuck(reason, stuck_retry_after(attempts))
    if attempts >= max_attempts:
        return Stuck(
            f"gave up after {attempts} attempts: {reason}", stuck_retry_after(attempts - max_attempts + 1)
        )
    delay = backoff(attempts - 1)
    for r in failures:
        floor = r.error.retry_after if isinstance(r.error, Throttled | Unavailable) else None
        if floor is not None:
            delay = max(delay, floor)
    return RetryCleanup(delay, reason)


def _error_text(error: AivenError | None) -> str:
    match error:
        case Throttled():
            return f"throttled ({error.message})"
        case Unavailable():
            return f"unavailable ({error.message})"
        case Conflict():
            return f"conflict ({error.message})"
        case Rejected():
            return f"rejected with {error.status} ({error.message})"
        case NotFound():
            return "not found"
        case None:
            return "ok"
