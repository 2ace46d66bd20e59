"""Prometheus metrics with the compatible names (prefix `aivenator_`), on a private registry.

Only what really happened is counted: a user is "created" when Aiven created it (not when an
existing one was read), a Secret "written" when the API server accepted a create or patch (not
when the diff said Unchanged). Gauges are set from observed state, never incremented by guess.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PREFIX = "aivenator"

__all__ = ["CONTENT_TYPE_LATEST", "AivenObserver", "Metrics"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.applications_processed = Counter(
            f"{PREFIX}_aiven_applications_processed",
            "AivenApplications reconciled, by resulting synchronization state",
            ["synchronization_state"],
            registry=r,
        )
        self.applications_requeued = Counter(
            f"{PREFIX}_aiven_applications_requeued",
            "AivenApplications put back on the queue for another attempt, by reason",
            ["reason"],
            registry=r,
        )
        self.processing_time = Histogram(
            f"{PREFIX}_aiven_application_processing_time_seconds",
            "Time to reconcile one AivenApplication",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.service_users_created = Counter(
            f"{PREFIX}_service_users_created",
            "Aiven service users created by the operator",
            ["pool", "service"],
            registry=r,
        )
        self.service_users_deleted = Counter(
            f"{PREFIX}_service_users_deleted",
            "Aiven service users deleted by the operator",
            ["pool", "service"],
            registry=r,
        )
        self.service_users_count = Gauge(
            f"{PREFIX}_service_users_count",
            "Service users Aiven reports for a service (last observed)",
            ["pool", "service"],
            registry=r,
        )
        self.aiven_latency = Histogram(
            f"{PREFIX}_aiven_latency",
            "Latency of Aiven API operations in seconds",
            ["operation", "status"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.kubernetes_resources_written = Counter(
            f"{PREFIX}_kubernetes_resources_written",
            "Kubernetes objects created or patched by the operator",
            ["resource_type", "namespace"],
            registry=r,
        )
        self.kubernetes_resources_deleted = Counter(
            f"{PREFIX}_kubernetes_resources_deleted",
            "Kubernetes objects deleted by the operator",
            ["resource_type", "namespace"],
            registry=r,
        )
        self.secrets_managed = Gauge(
            f"{PREFIX}_secrets_managed",
            "Managed Secrets in the watch cache, per namespace",
            ["namespace"],
            registry=r,
        )
        self.finalizer_stuck = Gauge(
            f"{PREFIX}_finalizer_stuck",
            "Secrets whose finalizer could not clean up after the maximum number of attempts",
            ["namespace"],
            registry=r,
        )
        self.finalizer_failures = Counter(
            f"{PREFIX}_finalizer_failures",
            "Failed finalizer cleanup attempts",
            ["namespace"],
            registry=r,
        )
        self.janitor_deleted = Counter(
            f"{PREFIX}_janitor_deleted",
            "Unused managed Secrets deleted by the janitor",
            ["namespace"],
            registry=r,
        )
        self.janitor_runs = Counter(
            f"{PREFIX}_janitor_runs",
            "Janitor passes, by scope (namespace or cluster)",
            ["scope"],
            registry=r,
        )
        self.cert_days_left = Gauge(
            f"{PREFIX}_cert_days_left",
            "Days until the Kafka client certificate of an application expires",
            ["namespace", "aiven_application"],
            registry=r,
        )
        self.queue_depth = Gauge(f"{PREFIX}_workqueue_depth", "Keys ready in the work queue", registry=r)
        self.is_leader = Gauge(f"{PREFIX}_leader", "1 while this replica holds the leader Lease", registry=r)
        self.watch_restarts = Counter(
            f"{PREFIX}_watch_restarts",
            "Watches restarted, by resource and reason (expired = relist after 410)",
            ["resource", "reason"],
            registry=r,
        )

    def set_secrets_managed(self, per_namespace: Mapping[str, int]) -> None:
        """Replace the whole gauge so namespaces that lost their last Secret drop to absent."""
        self.secrets_managed.clear()
        for namespace, count in per_namespace.items():
            self.secrets_managed.labels(namespace=namespace).set(count)

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A sample's current value (0 when absent); for tests and the demo."""
        got = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if got is None else float(got)


class AivenObserver:
    """The `AivenHttp` observer hook: latency per operation/status, and users created/deleted.

    The adapter reports only the operation name, so the reconciler says which (project, service)
    it is working on with `context(...)`; calls happen on the same thread, so a thread-local is
    enough. A user counts as created/deleted only when Aiven answered 2xx to that very request.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._local = threading.local()

    @contextmanager
    def context(self, pool: str, service: str) -> Iterator[None]:
        previous = getattr(self._local, "target", None)
        self._local.target = (pool, service)
        try:
            yield
        finally:
            self._local.target = previous

    def __call__(self, operation: str, outcome: str, duration: float) -> None:
        self._metrics.aiven_latency.labels(operation=operation, status=outcome).observe(duration)
        target = getattr(self._local, "target", None)
        if target is None or not outcome.isdigit() or not 200 <= int(outcome) < 300:
            return
        pool, service = target
        if operation == "ServiceUserCreate":
            self._metrics.service_users_created.labels(pool=pool, service=service).inc()
        elif operation == "ServiceUserDelete":
            self._metrics.service_users_deleted.labels(pool=pool, service=service).inc()
