"""The Secret finalizer: delete the Aiven users a managed Secret names, then let it go.

Gather (the Secret, which of its claimed `aiven.io` objects exist in its namespace) → plan
(`aivenator.domain.finalizer.plan_finalizer`, with ownership checks) → execute the allowed actions against
Aiven → decide (`aivenator.domain.finalizer.decide_after_cleanup`) → remove our finalizer, retry later, or
report the Secret as stuck (Warning event + `aivenator_finalizer_stuck` metric), never silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from aivenator.adapters.redaction import redact_text
from aivenator.domain import labels as L
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl, RequiredObject
from aivenator.domain.facts import AivenError
from aivenator.domain.finalizer import (
    ActionResult,
    RemoveFinalizer,
    RetryCleanup,
    Stuck,
    cleanup_passes,
    decide_after_cleanup,
    plan_finalizer,
    requested_actions,
    required_objects,
)
from aivenator.domain.janitor import secret_view
from aivenator.domain.kubernetes_port import KubeError, KubeNotFound, KubeObject, KubernetesPort, ObjectRef
from aivenator.domain.outcomes import Done, Outcome, Retry, outcome_for_kube_error
from aivenator.domain.ownership import OwnershipIndex, UserKey
from aivenator.domain.ports import AivenPort
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from returns.result import Failure, Success
from structlog.typing import FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    outcome: Outcome
    deleted_users: int = 0
    refused: int = 0
    stuck: bool = False


class Finalizer:
    def __init__(
        self,
        kube: KubernetesPort,
        aiven: AivenPort,
        metrics: Metrics,
        observer: AivenObserver,
        get_secret: Callable[[str, str], KubeObject | None],
        may_mutate: Callable[[], bool],
        log: FilteringBoundLogger,
        allowed_projects: frozenset[str] | None = None,
        main_project: str | None = None,
        max_attempts: int = 8,
        client_attempts: int = 1,
        ownership: OwnershipIndex | None = None,
    ) -> None:
        """`max_attempts`: the configured limit of passes; `client_attempts`: requests the Aiven
        client may send per call (its retries). The passes actually allowed keep one stuck cycle
        within the request budget (`aivenator.domain.finalizer.cleanup_passes`)."""
        self._kube = kube
        self._aiven = aiven
        self._metrics = metrics
        self._observer = observer
        self._get_secret = get_secret
        self._may_mutate = may_mutate
        self._log = log
        self._allowed = allowed_projects
        self._main_project = main_project
        self._max_attempts = cleanup_passes(client_attempts, max_attempts)
        self._ownership = ownership if ownership is not None else OwnershipIndex()
        self._lock = threading.Lock()
        self._stuck: set[tuple[str, str]] = set()

    def finalize(self, namespace: str, name: str, attempt: int = 0) -> FinalizeResult:
        """`attempt`: failed passes so far for this Secret (0 on the first)."""
        raw = self._get_secret(namespace, name)
        if raw is None:
            self._unstick(namespace, name)
            return FinalizeResult(Done())
        secret = secret_view(raw)
        if not secret.deletion_requested or not secret.has_finalizer:
            self._unstick(namespace, name)
            return FinalizeResult(Done())
        log = self._log.bind(
            namespace=namespace, secret_name=name, aiven_application=secret.label(L.APP_LABEL)
        )
        if not self._may_mutate():
            return FinalizeResult(Done())

        existing: list[RequiredObject] = []
        for required in required_objects(secret):
            match self._kube.aiven_object_state(required.kind, required.namespace, required.name):
                case Success(None):
                    pass
                case Success(_):
                    existing.append(required)
                case Failure(kerr):
                    return FinalizeResult(outcome_for_kube_error(kerr, attempt, f"{required.kind} {required.name}"))
        shared = frozenset(
            key
            for action in requested_actions(secret)
            if self._ownership.recorded_elsewhere(
                key := UserKey(action.project, action.service, action.username), (namespace, name)
            )
        )
        plan = plan_finalizer(secret, existing, self._allowed, self._main_project, shared)
        ref = ObjectRef("v1", "Secret", namespace, name, secret.uid)
        for refusal in plan.refused:
            log.warning(
                "finalizer_action_refused", reason=str(refusal.reason), detail=redact_text(refusal.detail)
            )
            self._kube.record_event(ref, "Warning", "CleanupRefused", redact_text(refusal.detail)[:1000])

        results: list[ActionResult] = []
        deleted = 0
        for action in plan.actions:
            if not self._may_mutate():
                return FinalizeResult(Done())
            error: AivenError | None = None
            with self._observer.context(action.project, action.service):
                match action:
                    case RemoveOpenSearchAcl():
                        got = self._aiven.remove_user_rules(action.project, action.service, action.username)
                    case DeleteServiceUser():
                        got = self._aiven.delete_user(action.project, action.service, action.username)
            if isinstance(got, Failure):
                error = got.failure()
            elif isinstance(action, DeleteServiceUser):
                deleted += 1
                log.info(
                    "service_user_deleted",
                    username=action.username,
                    project=action.project,
                    aiven_service=action.service,
                )
            results.append(ActionResult(action, error))

        decision = decide_after_cleanup(results, attempt + 1, self._max_attempts)
        match decision:
            case RemoveFinalizer():
                if not self._may_mutate():
                    return FinalizeResult(Done())
                removed = self._kube.remove_secret_finalizer(namespace, name, L.FINALIZER)
                if isinstance(removed, Failure) and not isinstance(removed.failure(), KubeNotFound):
                    failed: KubeError = removed.failure()
                    return FinalizeResult(
                        outcome_for_kube_error(failed, attempt, f"finalizer of Secret {name}"), deleted
                    )
                self._unstick(namespace, name)
                self._metrics.kubernetes_resources_written.labels(
                    resource_type="Secret", namespace=namespace
                ).inc()
                log.info("secret_finalized", users_deleted=deleted, refused=len(plan.refused))
                return FinalizeResult(Done(), deleted, len(plan.refused))
            case RetryCleanup(after=after, reason=reason):
                clean = redact_text(reason)
                self._metrics.finalizer_failures.labels(namespace=namespace).inc()
                log.warning("finalizer_cleanup_failed", reason=clean, attempt=attempt + 1)
                return FinalizeResult(Retry(after, clean), deleted, len(plan.refused))
            case Stuck(reason=reason, retry_after=retry_after):
                clean = redact_text(reason)
                self._metrics.finalizer_failures.labels(namespace=namespace).inc()
                newly = self._stick(namespace, name)
                if newly:
                    log.error("finalizer_stuck", reason=clean)
                    self._kube.record_event(ref, "Warning", "FinalizerStuck", clean[:1000])
                return FinalizeResult(Retry(retry_after, clean), deleted, len(plan.refused), stuck=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stick(self, namespace: str, name: str) -> bool:
        with self._lock:
            if (namespace, name) in self._stuck:
                return False
            self._stuck.add((namespace, name))
            self._update_stuck_metric_locked()
            return True

    def _unstick(self, namespace: str, name: str) -> None:
        with self._lock:
            if (namespace, name) in self._stuck:
                self._stuck.discard((namespace, name))
                self._update_stuck_metric_locked()

    def _update_stuck_metric_locked(self) -> None:
        counts: dict[str, int] = {}
        for ns, _ in self._stuck:
            counts[ns] = counts.get(ns, 0) + 1
        self._metrics.finalizer_stuck.clear()
        for ns, count in counts.items():
            self._metrics.finalizer_stuck.labels(namespace=ns).set(count)
