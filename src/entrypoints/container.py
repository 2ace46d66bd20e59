"""The composition root: one `DeclarativeContainer` for the whole operator.

Production builds everything from the configuration (`build_container(config)`). Tests, the
demo and tooling override the edges with the shipped fakes and keep everything else real:

    container = build_container(config)
    container.kubernetes.override(providers.Object(FakeKubernetes()))
    container.aiven_transport.override(providers.Object(fake_aiven.mock_transport()))
    operator = container.operator()

(or `container.aiven.override(...)` with any `AivenPort`). Nothing does I/O at construction:
the real Kubernetes client reads its kubeconfig when its provider is first called, and the
probe server binds on `Operator.start()`.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_http import AivenHttp
from aivenator.adapters.kubernetes_timing import TimedKubernetes
from aivenator.entrypoints.config import Address, OperatorConfig
from aivenator.entrypoints.runtime.health import HealthServer
from aivenator.entrypoints.runtime.leader import LeaderElector
from aivenator.entrypoints.runtime.logging_setup import get_logger
from aivenator.entrypoints.runtime.operator import Operator
from aivenator.entrypoints.runtime.webhook import CertificateFiles, WebhookServer
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from dependency_injector import containers, providers


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _settings(values: dict[str, Any]) -> OperatorConfig:
    fields = dict(values)
    for key in ("metrics_address", "health_probe_address", "webhook_address"):
        value = fields.get(key)
        if isinstance(value, dict):
            fields[key] = Address(**value)
    fields["projects"] = tuple(fields.get("projects") or ())
    return OperatorConfig(**fields)


def _real_kubernetes(kubeconfig: str | None) -> Any:
    from aivenator.adapters.kubernetes_api import KubernetesApi

    if kubeconfig:
        return KubernetesApi.from_kubeconfig(kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubernetesApi.in_cluster()
    return KubernetesApi.from_kubeconfig(None)


def _timed(kube: Any, clock: Any, metrics: Metrics) -> TimedKubernetes:
    return TimedKubernetes(kube, clock, metrics.observe_kubernetes)


def _identity(configured: str) -> str:
    return configured or f"{socket.gethostname()}-{os.getpid()}"


def _leader(
    enabled: bool, kube: Any, settings: OperatorConfig, now: Any, monotonic: Any
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


def _webhook(settings: OperatorConfig, enabled: bool, log: Any) -> WebhookServer | None:
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


class Container(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)

    settings = providers.Singleton(_settings, config)
    now = providers.Object(_utcnow)
    monotonic = providers.Object(time.monotonic)
    log = providers.Singleton(get_logger, "aivenator")

    metrics = providers.Singleton(Metrics)
    aiven_observer = providers.Singleton(AivenObserver, metrics)

    kubernetes = providers.Singleton(_real_kubernetes, config.kubeconfig)
    #: What the operator and the leader elector use: `kubernetes` (real or overridden) with every
    #: call timed into `aivenator_kubernetes_latency`.
    timed_kubernetes = providers.Singleton(_timed, kubernetes, monotonic, metrics)

    #: An httpx transport for the Aiven client (None: real network). Tests give
    #: `FakeAiven.mock_transport()`.
    aiven_transport: providers.Object[Any] = providers.Object(None)
    aiven_budget = providers.Singleton(_budget, config.aiven_requests_per_second, config.aiven_burst)
    #: The Aiven client's clock and sleep (retries, Retry-After, budget); tests give a fake pair
    #: whose sleep advances the fake clock, so throttling plays out without real waiting.
    aiven_clock = providers.Object(time.monotonic)
    aiven_sleep = providers.Object(time.sleep)
    aiven = providers.Singleton(
        AivenHttp,
        clock=aiven_clock,
        sleep=aiven_sleep,
        base_url=config.aiven_api_url,
        token=config.aiven_token,
        transport=aiven_transport,
        budget=aiven_budget,
        observer=aiven_observer,
    )

    #: Whether to serve /metrics, /healthz, /readyz (tests usually switch it off).
    serve_http = providers.Object(True)
    servers = providers.Singleton(_servers, settings, metrics, serve_http)
    webhook = providers.Singleton(_webhook, settings, serve_http, log)
    leader = providers.Singleton(_leader, config.leader_elect, timed_kubernetes, settings, now, monotonic)
    #: Seconds one watch request stays open (the in-memory cluster is happy with short ones).
    watch_timeout = providers.Object(300.0)

    operator = providers.Singleton(
        Operator,
        config=settings,
        kube=timed_kubernetes,
        aiven=aiven,
        metrics=metrics,
        observer=aiven_observer,
        log=log,
        now=now,
        monotonic=monotonic,
        leader=leader,
        servers=servers,
        watch_timeout=watch_timeout,
        webhook=webhook,
    )


def config_dict(config: OperatorConfig) -> dict[str, Any]:
    values = asdict(config)
    values["projects"] = list(config.projects)
    return values


def build_container(config: OperatorConfig) -> Container:
    container = Container()
    container.config.from_dict(config_dict(config))
    return container


def override(container: Container, **values: Any) -> None:
    """Replace providers by fixed objects (`override(c, kubernetes=FakeKubernetes())`): how the
    demo, tests and tooling swap an edge or a shell without importing the wiring library."""
    for name, value in values.items():
        provider = getattr(container, name, None)
        if not isinstance(provider, providers.Provider):
            raise AttributeError(f"the container has no provider {name!r}")
        provider.override(providers.Object(value))
