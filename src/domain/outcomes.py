"""What a reconcile step asks the shell to do next, as values.

A purely computational module. The shell maps these to work-queue actions: `Done` forgets the
item until the next event or periodic resync, `Retry` requeues it after `after` seconds,
`WaitFor` requeues it slowly (something outside our control must change first, such as an
`aiven.io` object becoming RUNNING), `Invalid` does not requeue at all (only a spec edit helps).

Retry delays are data computed here from the classified error, never `sleep()` calls in the
shell. Backoff is deterministic: the shell may add jitter on top if it wants to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aivenator.domain.facts import AivenError, Conflict, NotFound, Rejected, Throttled, Unavailable
from aivenator.domain.kubernetes_port import (
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
)

#: Exponential backoff: BASE * 2**attempt seconds, capped.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
#: How long to wait before looking again at something outside our control.
WAIT_SECONDS = 30.0
#: Authorization failures are an operator misconfiguration: retry, but slowly.
FORBIDDEN_RETRY_SECONDS = 600.0
#: A write the API server rejected (admission, quota): retry, slowly.
REJECTED_RETRY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Done:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    after: float
    reason: str


@dataclass(frozen=True, slots=True)
class WaitFor:
    what: str
    after: float = WAIT_SECONDS


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


Outcome = Done | Retry | WaitFor | Invalid


def backoff(attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Delay before retry number `attempt` (0 for the first retry): base * 2**attempt, capped."""
    exponent = min(max(attempt, 0), 32)  # keep the float finite for absurd attempt counts
    return float(min(cap, base * (2.0**exponent)))


def outcome_for_aiven_error(error: AivenError, attempt: int = 0, what: str = "") -> Outcome:
    """Map a classified Aiven error to what the shell should do next.

    `what` names the thing the call was about (for example "service kafka in project p"); a
    `NotFound` of a service means waiting for it to appear, not failing the application.
    """
    match error:
        case Throttled(retry_after=retry_after):
            # Aiven's Retry-After is a floor: never come back earlier than it asks.
            return Retry(max(retry_after, backoff(attempt)), f"throttled by Aiven: {error.message}")
        case Unavailable(retry_after=retry_after):
            delay = backoff(attempt) if retry_after is None else max(retry_after, backoff(attempt))
            return Retry(delay, f"Aiven unavailable: {error.message}")
        case Conflict():
            return Retry(backoff(attempt), f"conflict at Aiven: {error.message}")
        case NotFound():
            return WaitFor(what or f"Aiven resource: {error.message}")
        case Rejected(status=status) if status in (401, 403):
            return Retry(
                FORBIDDEN_RETRY_SECONDS, f"Aiven refused the operator's credentials: {error.message}"
            )
        case Rejected():
            return Invalid(f"Aiven rejected the request: {error.message}")


def outcome_for_kube_error(error: KubeError, attempt: int = 0, what: str = "") -> Outcome:
    """Map a classified Kubernetes error to what the shell should do next.

    Conflicts (stale resourceVersion, a precondition that no longer holds, someone else created
    the object first) mean "read again and decide again": retry at once-ish. A missing object is
    waited for (`what` names it). Forbidden is an RBAC misconfiguration: retry slowly. A write the
    API server rejects is retried slowly too, never dropped: what we write is derived from valid
    input, so a rejection comes from outside (an admission webhook, a quota) and can go away,
    and a dropped Secret finalizer would be stuck for good.
    """
    about = f"{what}: " if what else ""
    match error:
        case KubeConflict() | KubeAlreadyExists() | KubeGone():
            return Retry(
                min(backoff(attempt, base=0.5), 10.0), f"{about}stale read, decide again: {error.message}"
            )
        case KubeUnavailable(retry_after=retry_after):
            delay = backoff(attempt) if retry_after is None else max(retry_after, backoff(attempt))
            return Retry(delay, f"{about}Kubernetes API unavailable: {error.message}")
        case KubeNotFound():
            return WaitFor(what or f"Kubernetes object: {error.message}")
        case KubeForbidden():
            return Retry(FORBIDDEN_RETRY_SECONDS, f"{about}forbidden by RBAC: {error.message}")
        case KubeInvalid():
            return Retry(
                max(REJECTED_RETRY_SECONDS, backoff(attempt)),
                f"{about}Kubernetes rejected the request: {error.message}",
            )


def _urgency(outcome: Outcome) -> tuple[int, float]:
    match outcome:
        case Retry(after=after):
            return (0, after)
        case WaitFor(after=after):
            return (1, after)
        case Invalid():
            return (2, 0.0)
        case Done():
            return (3, 0.0)


def combine(outcomes: Iterable[Outcome]) -> Outcome:
    """One outcome for several independent steps: the most urgent one wins.

    A retry beats waiting (soonest first), waiting beats invalid input, anything beats done. So a
    failing service gets retried even when another service's section is invalid.
    """
    return min(outcomes, key=_urgency, default=Done())
