"""Shared builders for the operator tests (in-memory cluster + Aiven simulator over MockTransport).

Named `test_operator_*` so it sits with the suites it serves; it holds fixtures and builders
plus one smoke test of the wiring itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from aivenator.adapters.fakes.aiven import FakeAiven
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.redaction import SecretRegistry
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.container import Container, build_container
from aivenator.entrypoints.runtime.logging_setup import configure_logging
from aivenator.entrypoints.runtime.operator import Operator
from dependency_injector import providers

NAMESPACE = "team-a"
TOKEN = "test-token-for-the-simulator-0123456789"


class Clock:
    """Wall clock (datetime) and monotonic clock moving together, advanced by tests."""

    def __init__(self) -> None:
        self.wall = datetime.now(UTC).replace(microsecond=0)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds

    def sleep(self, seconds: float) -> None:
        """The Aiven client's sleep: time passes at once (at least 1 ms, so a token bucket's
        tiny float remainder cannot make it spin)."""
        self.advance(max(seconds, 0.001))


@dataclass
class Harness:
    kube: FakeKubernetes
    aiven: FakeAiven
    operator: Operator
    container: Container
    clock: Clock
    logs: io.StringIO

    def close(self) -> None:
        """Stop everything; fail if any work item crashed (a bug hidden by the retry loop)."""
        self.operator.stop()
        self.container.aiven().close()
        structlog.reset_defaults()
        crashed = [line for line in self.logs.getvalue().splitlines() if "work_item_failed" in line]
        assert not crashed, crashed[:3]

    def aiven_requests(self) -> int:
        return len(self.aiven.request_log)

    def kube_writes(self) -> int:
        return sum(self.kube.writes.values())

    def secret(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.kube.get("Secret", namespace, name)

    def app(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.kube.get("AivenApplication", namespace, name)

    def condition(
        self, app_name: str, condition_type: str, namespace: str = NAMESPACE
    ) -> dict[str, Any] | None:
        app = self.app(app_name, namespace) or {}
        for c in (app.get("status") or {}).get("conditions") or []:
            if c.get("type") == condition_type:
                return dict(c)
        return None


def make_config(**overrides: Any) -> OperatorConfig:
    base = OperatorConfig(
        aiven_token=TOKEN,
        aiven_api_url="https://api.aiven.io",
        projects=("dev-nais-dev", "nav-prod"),
        main_project="dev-nais-dev",
        workers=2,
        janitor_grace_period=0.0,
    )
    return replace(base, **overrides)


def build(
    config: OperatorConfig | None = None,
    kube: FakeKubernetes | None = None,
    aiven: FakeAiven | None = None,
    real_monotonic: bool = False,
) -> Harness:
    clock = Clock()
    cfg = config or make_config()
    kube = kube or FakeKubernetes(clock=clock, namespaces=(NAMESPACE,))
    aiven = aiven or FakeAiven.with_default_seed(token=TOKEN, clock=clock.now)
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs, registry=SecretRegistry(), secrets=(TOKEN,))
    container = build_container(cfg)
    container.kubernetes.override(providers.Object(kube))
    container.aiven_transport.override(providers.Object(aiven.mock_transport()))
    container.now.override(providers.Object(clock.now))
    if not real_monotonic:
        container.monotonic.override(providers.Object(clock.monotonic))
        container.aiven_clock.override(providers.Object(clock.monotonic))
        container.aiven_sleep.override(providers.Object(clock.sleep))
    container.serve_http.override(providers.Object(False))
    container.watch_timeout.override(providers.Object(1.0))
    operator = container.operator()
    return Harness(kube, aiven, operator, container, clock, logs)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = build()
    yield h
    h.close()


def aiven_object(kind: str, name: str, namespace: str = NAMESPACE, state: str = "RUNNING") -> dict[str, Any]:
    return {
        "apiVersion": "aiven.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
        "status": {"state": state},
    }


def application(
    name: str = "app",
    namespace: str = NAMESPACE,
    kafka: dict[str, Any] | None = None,
    opensearch: dict[str, Any] | None = None,
    valkey: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = dict(spec)
    if kafka is not None:
        body["kafka"] = kafka
    if opensearch is not None:
        body["openSearch"] = opensearch
    if valkey is not None:
        body["valkey"] = valkey
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"aiven.nais.io/secret-generation": "1"},
        },
        "spec": body,
    }


def full_application(name: str = "app", generation_tag: str = "1") -> dict[str, Any]:
    return application(
        name,
        kafka={"pool": "dev-nais-dev", "secretName": f"{name}-kafka-{generation_tag}"},
        opensearch={"instance": "logs", "access": "readwrite", "secretName": f"{name}-os-{generation_tag}"},
        valkey=[{"instance": "cache", "access": "write", "secretName": f"{name}-valkey-{generation_tag}"}],
    )


def seed_aiven_objects(h: Harness) -> None:
    h.kube.apply(aiven_object("OpenSearch", "opensearch-team-a-logs"))
    h.kube.apply(aiven_object("Valkey", "valkey-team-a-cache"))
    h.kube.apply(aiven_object("Valkey", "valkey-team-a-sessions"))


def test_container_wires_the_operator_to_the_fakes(harness: Harness) -> None:
    assert harness.operator.kube is harness.kube
    harness.operator.drain()
    assert harness.operator.caches_synced()
    assert harness.operator.readiness()[0]
