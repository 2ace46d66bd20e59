"""The janitor shell: garbage-collect managed Secrets that nothing uses (product spec section 7).

Inputs come from the watch caches only (managed Secrets, AivenApplications, and the Secret names
each workload refers to), so a pass costs no list call. Decisions are `aivenator.domain.janitor.plan_cleanup`;
deletions carry uid + resourceVersion preconditions, so a Secret changed (or re-referenced and
touched) since it was cached is not deleted by a stale decision. The janitor refuses to run until
every cache has synced: an empty workload cache would make every Secret look unused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aivenator.domain.janitor import (
    CleanupPlan,
    app_secret_refs_from_raw,
    plan_cleanup,
    secret_view,
)
from aivenator.domain.kubernetes_port import KubeConflict, KubeNotFound, KubeObject, KubernetesPort
from aivenator.domain.references import WorkloadRefs
from aivenator.entrypoints.shells.metrics import Metrics
from returns.result import Failure, Success
from structlog.typing import FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class JanitorResult:
    ran: bool
    deleted: tuple[tuple[str, str], ...] = ()
    plan: CleanupPlan | None = None
    skipped_reason: str = ""


class JanitorRunner:
    def __init__(
        self,
        kube: KubernetesPort,
        metrics: Metrics,
        secrets: Callable[[str | None], Iterable[KubeObject]],
        applications: Callable[[str | None], Iterable[KubeObject]],
        workloads: Callable[[str | None], Iterable[WorkloadRefs]],
        caches_synced: Callable[[], bool],
        now: Callable[[], datetime],
        may_mutate: Callable[[], bool],
        grace_period: float,
        log: FilteringBoundLogger,
    ) -> None:
        self._kube = kube
        self._metrics = metrics
        self._secrets = secrets
        self._applications = applications
        self._workloads = workloads
        self._synced = caches_synced
        self._now = now
        self._may_mutate = may_mutate
        self._grace = timedelta(seconds=grace_period)
        self._log = log

    def run(self, namespace: str | None = None) -> JanitorResult:
        """One pass over `namespace` (None: every namespace)."""
        scope = namespace or "cluster"
        if not self._synced():
            return JanitorResult(False, skipped_reason="caches not synced")
        if not self._may_mutate():
            return JanitorResult(False, skipped_reason="not leader")
        # Only the Secret names each application spells out are needed, read from the raw spec:
        # for an application that parses they are exactly its sections' names
        # (tests/unit/test_janitor.py checks this), and one that does not parse still claims
        # them. No full parse, and no spec hash, per application and run.
        apps = (app_secret_refs_from_raw(raw) for raw in self._applications(namespace))
        # Every input streams from the caches, one object decoded at a time: the plan keeps only
        # the names referenced per namespace and its small per-Secret decisions (at 10k apps,
        # holding every view and workload reference at once was tens of MB per pass, and the
        # heap each pass left behind stayed in the RSS).
        views = (secret_view(s) for s in self._secrets(namespace))
        plan = plan_cleanup(views, apps, self._workloads(namespace), self._now(), self._grace)
        self._metrics.janitor_runs.labels(scope="namespace" if namespace else "cluster").inc()
        deleted: list[tuple[str, str]] = []
        for deletion in plan.deletions:
            if not self._may_mutate():
                break
            result = self._kube.delete_secret(
                deletion.namespace,
                deletion.name,
                uid=deletion.uid or None,
                resource_version=deletion.resource_version or None,
            )
            match result:
                case Success(_):
                    deleted.append((deletion.namespace, deletion.name))
                    self._metrics.janitor_deleted.labels(namespace=deletion.namespace).inc()
                    self._metrics.kubernetes_resources_deleted.labels(
                        resource_type="Secret", namespace=deletion.namespace
                    ).inc()
                    self._log.info(
                        "secret_garbage_collected",
                        namespace=deletion.namespace,
                        secret_name=deletion.name,
                        reason=str(deletion.reason),
                    )
                case Failure(KubeNotFound()):
                    pass
                case Failure(KubeConflict()):
                    self._log.info(
                        "secret_gc_skipped_changed", namespace=deletion.namespace, secret_name=deletion.name
                    )
                case Failure(error):
                    self._log.warning(
                        "secret_gc_failed",
                        namespace=deletion.namespace,
                        secret_name=deletion.name,
                        error=type(error).__name__,
                    )
        if deleted or plan.deletions:
            self._log.info("janitor_pass", scope=scope, deleted=len(deleted), kept=len(plan.kept))
        return JanitorResult(True, tuple(deleted), plan)
