"""The composition root: one `DeclarativeContainer` for the whole operator.

Production builds everything from the typed configuration (`build_container(config)`: the
`OperatorConfig` is the `settings` provider, read by attribute, never converted). The container
builds the edges (Kubernetes, Aiven), the caches, the work queue, every shell (reconciler,
finalizer, janitor, orphan sweeper), the leader elector and servers, and the `Operator`, which
only receives them. Tests, the demo and tooling override any provider, edge or shell:

    container = build_container(config)
    override(container, kubernetes=FakeKubernetes(), aiven_transport=fake_aiven.mock_transport())
    operator = container.operator()

(or `override(container, aiven=...)` with any `AivenPort`, `reconciler=...`). Nothing does I/O at construction:
the real Kubernetes client reads its kubeconfig when its provider is first called, and the
probe server binds on `Operator.start()`.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_http import AivenHttp
from aivenator.adapters.kubernetes_timing import TimedKubernetes
from aivenator.domain.kubernetes_port import KubernetesPort, ObjectRef
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.runtime.caches import Caches
from aivenator.entrypoints.runtime.health import HealthServer
from aivenator.entrypoints.runtime.leader import LeaderElector
from aivenator.entrypoints.runtime.logging_setup import get_logger
from aivenator.entrypoints.runtime.operator import Key, Operator
from aivenator.entrypoints.runtime.webhook import CertificateFiles, WebhookServer
from aivenator.entrypoints.runtime.workqueue import Backoff, WorkQueue
from aivenator.entrypoints.shells.finalize import Finalizer
from aivenator.entrypoints.shells.janitor_runner import JanitorRunner
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from aivenator.entrypoints.shells.orphan_sweep import OrphanSweeper
from aivenator.entrypoints.shells.reconcile import Reconciler
from dependency_injector import containers, providers
from structlog.typing import FilteringBoundLogger


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _real_kubernetes(kubeconfig: str | None) -> KubernetesPort:
    from aivenator.adapters.kubernetes_api import KubernetesApi

    if kubeconfig:
        return KubernetesApi.from_kubeconfig(kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubernetesApi.in_cluster()
    return KubernetesApi.from_kubeconfig(None)


def _timed(kube: KubernetesPort, clock: Callable[[], float], metrics: Metrics) -> TimedKubernetes:
    return TimedKubernetes(kube, clock, metrics.observe_kubernetes)


def _identity(configured: str) -> str:
    return configured or f"{socket.gethostname()}-{os.getpid()}"


def _leader(
    enabled: bool,
    kube: KubernetesPort,
    settings: OperatorConfig,
    now: Callable[[], datetime],
    monotonic: Callable[[], float],
) -> LeaderElector | None:
    if not enabled:
        return None
    return LeaderElector(
        kube,
        settings.leader_election_namespace,
        settings.leader_election_name,
        _identity(settings.leader_election_identity),
        lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline,
        retry_period=settings.retry_period,
        now=now,
        monotonic=monotonic,
    )


def _servers(settings: OperatorConfig, metrics: Metrics, enabled: bool) -> tuple[HealthServer, ...]:
    """/metrics (with the probes) on the metrics address; the probes also on their own address
    when one is configured."""
    if not enabled:
        return ()
    metrics_at = settings.metrics_address
    servers = [HealthServer(metrics_at.host, metrics_at.port, metrics)]
    probes_at = settings.health_probe_address
    if probes_at is not None and probes_at != metrics_at:
        servers.append(HealthServer(probes_at.host, probes_at.port, metrics, serve_metrics=False))
    return tuple(servers)


def _webhook(settings: OperatorConfig, enabled: bool, log: FilteringBoundLogger) -> WebhookServer | None:
    """The conversion webhook when --webhook-address is set (the certificate is read here, so a
    missing or bad file fails start-up with one clear line)."""
    at = settings.webhook_address
    if not enabled or at is None or not settings.webhook_cert_file or not settings.webhook_key_file:
        return None
    return WebhookServer(
        at.host, at.port, CertificateFiles(settings.webhook_cert_file, settings.webhook_key_file), log
    )


def _budget(rate: float, burst: int) -> RequestBudget:
    return RequestBudget(rate=rate, burst=burst)


def _may_mutate(leader: LeaderElector | None) -> Callable[[], bool]:
    """Whether this replica may write: always without leader election, else while leading."""
    if leader is None:
        return lambda: True
    return leader.is_leader


def _allowed_projects(settings: OperatorConfig) -> frozenset[str]:
    return frozenset(settings.projects)


def _new_password() -> str:
    return secrets.token_urlsafe(24)


def _work_queue(monotonic: Callable[[], float], metrics: Metrics) -> WorkQueue[Key]:
    return WorkQueue(clock=monotonic, backoff=Backoff(base=1.0, cap=300.0), on_depth=metrics.queue_depth.set)


def _lease_ref(settings: OperatorConfig) -> ObjectRef:
    """What the orphan sweep's events are about: the replicas' Lease."""
    return ObjectRef(
        "coordination.k8s.io/v1", "Lease", settings.leader_election_namespace, settings.leader_election_name
    )


class Container(containers.DeclarativeContainer):
    #: The typed configuration, given once by `build_container`.
    settings = providers.Dependency(instance_of=OperatorConfig)
    now = providers.Object(_utcnow)
    monotonic = providers.Object(time.monotonic)
    log = providers.Singleton(get_logger, "aivenator")

    metrics = providers.Singleton(Metrics)
    aiven_observer = providers.Singleton(AivenObserver, metrics)

    kubernetes = providers.Singleton(_real_kubernetes, settings.provided.kubeconfig)
    #: What the operator, its shells and the leader elector use: `kubernetes` (real or
    #: overridden) with every call timed into `aivenator_kubernetes_latency`.
    timed_kubernetes = providers.Singleton(_timed, kubernetes, monotonic, metrics)

    #: An httpx transport for the Aiven client (None: real network). Tests give
    #: `FakeAiven.mock_transport()`.
    aiven_transport: providers.Object[Any] = providers.Object(None)
    aiven_budget = providers.Singleton(
        _budget, settings.provided.aiven_requests_per_second, settings.provided.aiven_burst
    )
    #: The Aiven client's clock and sleep (retries, Retry-After, budget); tests give a fake pair
    #: whose sleep advances the fake clock, so throttling plays out without real waiting.
    aiven_clock = providers.Object(time.monotonic)
    aiven_sleep = providers.Object(time.sleep)
    aiven = providers.Singleton(
        AivenHttp,
        clock=aiven_clock,
        sleep=aiven_sleep,
        base_url=settings.provided.aiven_api_url,
        token=settings.provided.aiven_token,
        transport=aiven_transport,
        budget=aiven_budget,
        observer=aiven_observer,
    )

    #: Whether to serve /metrics, /healthz, /readyz (tests usually switch it off).
    serve_http = providers.Object(True)
    servers = providers.Singleton(_servers, settings, metrics, serve_http)
    webhook = providers.Singleton(_webhook, settings, serve_http, log)
    leader = providers.Singleton(
        _leader, settings.provided.leader_elect, timed_kubernetes, settings, now, monotonic
    )
    may_mutate = providers.Singleton(_may_mutate, leader)
    #: Seconds one watch request stays open (the in-memory cluster is happy with short ones).
    watch_timeout = providers.Object(300.0)
    new_password = providers.Object(_new_password)
    allowed_projects = providers.Singleton(_allowed_projects, settings)

    caches = providers.Singleton(Caches, timed_kubernetes, metrics, watch_timeout)
    queue = providers.Singleton(_work_queue, monotonic, metrics)

    reconciler = providers.Singleton(
        Reconciler,
        timed_kubernetes,
        aiven,
        settings,
        metrics,
        aiven_observer,
        get_app=caches.provided.get_app,
        get_secret=caches.provided.get_secret,
        remember_secret=caches.provided.remember_secret,
        remember_app=caches.provided.remember_app,
        now=now,
        may_mutate=may_mutate,
        log=log,
        new_password=new_password,
        ownership=caches.provided.ownership,
        monotonic=monotonic,
        certs=caches.provided.certs,
    )
    finalizer = providers.Singleton(
        Finalizer,
        timed_kubernetes,
        aiven,
        metrics,
        aiven_observer,
        get_secret=caches.provided.get_secret,
        may_mutate=may_mutate,
        log=log,
        allowed_projects=allowed_projects,
        main_project=settings.provided.main_project,
        max_attempts=settings.provided.max_finalizer_attempts,
        client_attempts=aiven.provided.retry_policy.attempts,
        ownership=caches.provided.ownership,
    )
    janitor = providers.Singleton(
        JanitorRunner,
        timed_kubernetes,
        metrics,
        secrets=caches.provided.secrets_in,
        applications=caches.provided.apps_in,
        workloads=caches.provided.workload_refs,
        caches_synced=caches.provided.synced,
        now=now,
        may_mutate=may_mutate,
        grace_period=settings.provided.janitor_grace_period,
        log=log,
    )
    orphans = providers.Singleton(
        OrphanSweeper,
        aiven,
        aiven_observer,
        secrets=caches.provided.secrets.iterate,
        applications=caches.provided.apps.iterate,
        caches_synced=caches.provided.synced,
        may_mutate=may_mutate,
        now=now,
        allowed_projects=allowed_projects,
        main_project=settings.provided.main_project,
        grace_period=settings.provided.orphan_grace_period,
        dry_run=settings.provided.orphan_sweep_dry_run,
        log=log,
        metrics=metrics,
        kube=timed_kubernetes,
        event_ref=providers.Singleton(_lease_ref, settings),
        ownership=caches.provided.ownership,
    )

    operator = providers.Singleton(
        Operator,
        config=settings,
        kube=timed_kubernetes,
        metrics=metrics,
        log=log,
        caches=caches,
        queue=queue,
        reconciler=reconciler,
        finalizer=finalizer,
        janitor=janitor,
        orphans=orphans,
        monotonic=monotonic,
        leader=leader,
        servers=servers,
        webhook=webhook,
    )


def build_container(config: OperatorConfig) -> Container:
    return Container(settings=config)


def override(container: Container, **values: object) -> None:
    """Replace providers by fixed objects (`override(c, kubernetes=FakeKubernetes())`): how the
    demo, tests and tooling swap an edge or a shell without importing the wiring library."""
    for name, value in values.items():
        provider = getattr(container, name, None)
        if not isinstance(provider, providers.Provider):
            raise AttributeError(f"the container has no provider {name!r}")
        provider.override(providers.Object(value))
