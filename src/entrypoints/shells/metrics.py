"""Prometheus metrics with the compatible names (prefix `aivenator_`), on a private registry.

Only what really happened is counted: a user is "created" when Aiven created it (not when an
existing one was read), a Secret "written" when the API server accepted a create or patch (not
when the diff said Unchanged). Gauges are set from observed state, never incremented by guess.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

PREFIX = "aivenator"

#: Buckets as the Go operator declares them (client_golang `LinearBuckets(1, 2, 20)` and
#: `ExponentialBuckets(0.02, 2, 14)`), so dashboards' `histogram_quantile` reads the same `le`s.
HANDLER_BUCKETS = tuple(1.0 + 2.0 * i for i in range(20))
KUBERNETES_LATENCY_BUCKETS = tuple(0.02 * 2.0**i for i in range(14))
AIVEN_LATENCY_BUCKETS = KUBERNETES_LATENCY_BUCKETS

__all__ = ["CONTENT_TYPE_LATEST", "AivenObserver", "LegacyCounter", "Metrics"]


class _Series:
    """Label values -> float, exposed as one family: what both collectors below share."""

    kind = "untyped"

    def __init__(
        self, name: str, documentation: str, labelnames: Iterable[str], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def _key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self._labelnames):
            raise ValueError(f"{self.name}: expected labels {self._labelnames}, got {tuple(labels)}")
        return tuple(sys.intern(str(labels[n])) for n in self._labelnames)

    def get(self, labels: Mapping[str, str]) -> float | None:
        """One series' value without building the family, O(1); None when absent, as for labels
        other than this family's (a sample that cannot exist)."""
        if set(labels) != set(self._labelnames):
            return None
        with self._lock:
            return self._values.get(self._key(labels))

    def _update(self, key: tuple[str, ...], change: Callable[[float | None], float]) -> None:
        with self._lock:
            self._values[key] = change(self._values.get(key))

    def _family(self) -> Metric:
        family = Metric(self.name, self.documentation, self.kind)
        # Metric strips a trailing "_total" from counter names; ours have none, so it is exact.
        family.name = self.name
        return family

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> list[Metric]:
        family = self._family()
        with self._lock:
            items = list(self._values.items())
        for key, value in items:
            family.add_sample(self.name, dict(zip(self._labelnames, key, strict=True)), value)
        return [family]


class _LegacyChild:
    def __init__(self, parent: LegacyCounter, key: tuple[str, ...]) -> None:
        self._parent = parent
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self._parent._update(self._key, lambda value: (value or 0.0) + amount)


class LegacyCounter(_Series):
    """A counter exposed under exactly its name, without the `_total` suffix.

    The Go operator's counters (client_golang, text format 0.0.4) are named
    `aivenator_aiven_applications_processed` and so on; prometheus_client always appends
    `_total` to a Counter, which would break every existing dashboard and alert. This collector
    writes the family as TYPE counter with samples under the bare name, as client_golang does.
    Only the subset of the Counter API the operator uses is offered: `labels(**kw).inc(n)`.
    """

    kind = "counter"

    def labels(self, **labels: str) -> _LegacyChild:
        return _LegacyChild(self, self._key(labels))


class _CompactGaugeChild:
    def __init__(self, parent: CompactGauge, key: tuple[str, ...]) -> None:
        self._parent = parent
        self._key = key

    def set(self, value: float) -> None:
        self._parent._update(self._key, lambda _: float(value))


class CompactGauge(_Series):
    """A gauge with one series per application, kept as one float per label set.

    prometheus_client's Gauge keeps a child object, a value object and a lock per label set
    (about 440 bytes); with one series per application that was the largest per-application
    cost after the caches. Offers what the operator uses: `labels(**kw).set(v)` and
    `remove(*label_values)`."""

    kind = "gauge"

    def labels(self, **labels: str) -> _CompactGaugeChild:
        return _CompactGaugeChild(self, self._key(labels))

    def remove(self, *label_values: str) -> None:
        with self._lock:
            self._values.pop(tuple(label_values), None)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.applications_processed = LegacyCounter(
            f"{PREFIX}_aiven_applications_processed",
            "AivenApplications reconciled, by resulting synchronization state",
            ["synchronization_state"],
            registry=r,
        )
        self.applications_requeued = LegacyCounter(
            f"{PREFIX}_aiven_applications_requeued",
            "AivenApplications put back on the queue for another attempt, by synchronization state and reason",
            ["synchronization_state", "reason"],
            registry=r,
        )
        self.processing_time = Histogram(
            f"{PREFIX}_aiven_application_processing_time_seconds",
            "Time to reconcile one AivenApplication, by its synchronization state after the pass",
            ["synchronization_state"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.service_users_created = LegacyCounter(
            f"{PREFIX}_service_users_created",
            "Aiven service users created by the operator",
            ["pool", "service"],
            registry=r,
        )
        self.service_users_deleted = LegacyCounter(
            f"{PREFIX}_service_users_deleted",
            "Aiven service users deleted by the operator",
            ["pool", "service"],
            registry=r,
        )
        self.service_users_updated = LegacyCounter(
            f"{PREFIX}_service_users_updated",
            "Existing Aiven service users the operator changed (Valkey access control corrected)",
            ["pool", "service"],
            registry=r,
        )
        self.service_users_count = Gauge(
            f"{PREFIX}_service_users_count",
            "Service users Aiven reports for a service (last observed), by user-name convention",
            ["pool", "service", "username_convention"],
            registry=r,
        )
        self.aiven_latency = Histogram(
            f"{PREFIX}_aiven_latency",
            "Latency of Aiven API operations in seconds, by operation, status and pool (Aiven project)",
            ["operation", "status", "pool"],
            buckets=AIVEN_LATENCY_BUCKETS,
            registry=r,
        )
        self.kubernetes_resources_written = LegacyCounter(
            f"{PREFIX}_kubernetes_resources_written",
            "Kubernetes objects created or patched by the operator",
            ["resource_type", "namespace"],
            registry=r,
        )
        self.kubernetes_resources_not_written = LegacyCounter(
            f"{PREFIX}_kubernetes_resources_not_written",
            "Kubernetes writes skipped because the object already had the desired content",
            ["resource_type", "namespace"],
            registry=r,
        )
        self.kubernetes_latency = Histogram(
            f"{PREFIX}_kubernetes_latency",
            "Latency of Kubernetes API operations in seconds, by operation (<Kind>_<Verb>)",
            ["operation"],
            buckets=KUBERNETES_LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_processing_time = Histogram(
            f"{PREFIX}_aiven_handler_processing_time_seconds",
            "Seconds one service handler spent on one section of an AivenApplication",
            ["handler"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.processing_reason = LegacyCounter(
            f"{PREFIX}_processing_reason",
            "Why an AivenApplication was synchronized",
            ["processing_reason"],
            registry=r,
        )
        self.kubernetes_resources_deleted = LegacyCounter(
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
        self.cert_days_left = CompactGauge(
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

        self._legacy = tuple(c for c in vars(self).values() if isinstance(c, LegacyCounter))
        self._series = {c.name: c for c in vars(self).values() if isinstance(c, _Series)}

    def set_secrets_managed(self, per_namespace: Mapping[str, int]) -> None:
        """Replace the whole gauge so namespaces that lost their last Secret drop to absent."""
        self.secrets_managed.clear()
        for namespace, count in per_namespace.items():
            self.secrets_managed.labels(namespace=namespace).set(count)

    def observe_kubernetes(self, operation: str, seconds: float) -> None:
        """The Kubernetes adapter's timing hook (`TimedKubernetes`)."""
        self.kubernetes_latency.labels(operation=operation).observe(seconds)

    def exposition(self) -> bytes:
        text = bytes(generate_latest(self.registry))
        # The 0.0.4 text writer names every counter family `<name>_total` in HELP/TYPE; the
        # legacy counters' samples carry the bare name, so their metadata must too.
        for legacy in self._legacy:
            bare = legacy.name.encode()
            text = text.replace(b"# HELP " + bare + b"_total ", b"# HELP " + bare + b" ")
            text = text.replace(b"# TYPE " + bare + b"_total counter", b"# TYPE " + bare + b" counter")
        return text

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A sample's current value (0 when absent); for tests, the demo and the benchmark's
        convergence poll. A series of our own collectors is read directly (O(1)); any other sample
        through a registry collect, which is O(series): one per application for cert_days_left."""
        series = self._series.get(name)
        if series is not None:
            got = series.get(labels or {})
        else:
            got = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if got is None else float(got)

    def total(self, name: str) -> float:
        """The sum of a sample name's values over all its label sets; for tests and the demo."""
        return sum(s.value for family in self.registry.collect() for s in family.samples if s.name == name)


class AivenObserver:
    """The `AivenHttp` observer hook: latency per operation/status/pool, users created/updated/deleted.

    The adapter reports only the operation name, so the reconciler says which (project, service)
    it is working on with `context(...)`; calls happen on the same thread, so a thread-local is
    enough. A user counts as created/updated/deleted only when Aiven answered 2xx to that very
    request (updated: `ServiceUserCredentialsModify`, the Valkey access-control correction).
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
        target = getattr(self._local, "target", None)
        pool = target[0] if target is not None else ""
        self._metrics.aiven_latency.labels(operation=operation, status=outcome, pool=pool).observe(duration)
        if target is None or not outcome.isdigit() or not 200 <= int(outcome) < 300:
            return
        pool, service = target
        if operation == "ServiceUserCreate":
            self._metrics.service_users_created.labels(pool=pool, service=service).inc()
        elif operation == "ServiceUserDelete":
            self._metrics.service_users_deleted.labels(pool=pool, service=service).inc()
        elif operation == "ServiceUserCredentialsModify":
            self._metrics.service_users_updated.labels(pool=pool, service=service).inc()
