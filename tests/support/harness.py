"""The one operator test harness: fake clock, in-memory cluster, Aiven simulator, and operators
built from the production DI container (`wire` is the one place that points a container at them).

`build()` gives one operator (`Harness`) for behaviour tests; `World` holds any number of
replicas for resilience tests.

Everything runs in the operator's synchronous step mode (no threads) unless a test starts a
replica itself, so runs are deterministic. What the harness adds on top of the container:

* `SimulatedCrash` (a `BaseException`, so the operator's "a bug must not kill the worker" guard
  does not swallow it) raised by a `CrashPlan` before or after a chosen port call: the replica
  is then abandoned as a killed process would be, and a fresh one is built on the same cluster
  and simulator state;
* a recording Aiven transport per replica: when each request was sent (fake monotonic clock)
  and every `Retry-After` received, to check that no request went out too early;
* log capture (structlog to a string) and collection of every credential value seen, for the
  "no credential anywhere" check.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from aivenator.adapters.fakes.aiven import FakeAiven
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain import labels as L
from aivenator.domain.actions import DeleteServiceUser
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceType
from aivenator.domain.names import is_builtin, matches_our_scheme
from aivenator.domain.parse import parse_application
from aivenator.domain.references import POD_SPEC_PATHS
from aivenator.domain.services import all_sections, cleanup_actions
from aivenator.domain.services.base import SecretMeta, ServiceConfig
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.container import Container, build_container, override
from aivenator.entrypoints.runtime.logging_setup import configure_logging
from aivenator.entrypoints.runtime.operator import JANITOR, ORPHANS, Operator
from dependency_injector import providers
from returns.result import Failure, Success

from tests.support.clock import FakeClock

NAMESPACE = "team-a"
OTHER_NAMESPACE = "team-b"
TOKEN = "resilience-token-for-the-simulator-0123456789"
PROJECT = "dev-nais-dev"
KAFKA_SERVICE = (PROJECT, "kafka")
OPENSEARCH_SERVICE = (PROJECT, "opensearch-team-a-logs")
VALKEY_SERVICE = (PROJECT, "valkey-team-a-cache")
MANAGED_SERVICES = (KAFKA_SERVICE, OPENSEARCH_SERVICE, VALKEY_SERVICE)

#: Data keys whose values are credentials (never to be seen outside the Secret).
SECRET_KEY_MARKERS = ("PASSWORD", "PRIVATE_KEY", "keystore")


class SimulatedCrash(BaseException):
    """The operator process 'dies' here. Not an `Exception`: nothing in the operator catches it."""


# --- crash injection ---------------------------------------------------------------------------------


@dataclass
class CrashPlan:
    """Crash on the `nth` call of `method` on the wrapped port, `before` or `after` it runs."""

    port: str  # "kube" or "aiven"
    method: str
    when: str = "before"  # or "after"
    nth: int = 1
    calls: int = 0
    fired: bool = False

    def hit(self, port: str, method: str, when: str) -> bool:
        if self.fired or port != self.port or method != self.method or when != self.when:
            return False
        if when == "before":
            self.calls += 1
        if self.calls >= self.nth:
            self.fired = True
            return True
        return False


class CrashingProxy:
    """Delegates every attribute to `target`; calls of the planned method may raise
    `SimulatedCrash` before they run or after they returned (their effect then stands)."""

    def __init__(self, target: Any, port: str, plans: list[CrashPlan]) -> None:
        self._target = target
        self._port = port
        self._plans = plans

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        port, plans = self._port, self._plans

        def call(*args: Any, **kwargs: Any) -> Any:
            for plan in plans:
                if plan.port == port and plan.method == name and plan.when == "after" and not plan.fired:
                    plan.calls += 1
            if any(p.hit(port, name, "before") for p in plans):
                raise SimulatedCrash(f"crash before {port}.{name}")
            result = value(*args, **kwargs)
            if any(p.hit(port, name, "after") for p in plans):
                raise SimulatedCrash(f"crash after {port}.{name}")
            return result

        return call


# --- the Aiven client's view of the wire ---------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    at: float
    method: str
    path: str
    status: int | str
    retry_after: float | None


class RecordingTransport(httpx.MockTransport):
    """The simulator's MockTransport, recording what this one client sent and got."""

    def __init__(self, aiven: FakeAiven, monotonic: Callable[[], float]) -> None:
        self.sent: list[Sent] = []

        def handler(request: httpx.Request) -> httpx.Response:
            at = monotonic()
            try:
                response = aiven.handle(request)
            except httpx.TransportError as exc:
                self.sent.append(Sent(at, request.method, request.url.path, type(exc).__name__, None))
                raise
            header = response.headers.get("Retry-After")
            retry_after: float | None = None
            if header is not None:
                try:
                    retry_after = float(header)
                except ValueError:
                    retry_after = None
            self.sent.append(Sent(at, request.method, request.url.path, response.status_code, retry_after))
            return response

        super().__init__(handler)

    def early_requests(self) -> list[tuple[Sent, Sent]]:
        """(answer with Retry-After, a later request sent before it elapsed)."""
        bad: list[tuple[Sent, Sent]] = []
        not_before = float("-inf")
        cause: Sent | None = None
        for sent in self.sent:
            if sent.at < not_before - 1e-9 and cause is not None:
                bad.append((cause, sent))
            if (
                sent.status == 429
                and sent.retry_after is not None
                and sent.at + sent.retry_after > not_before
            ):
                not_before = sent.at + sent.retry_after
                cause = sent
        return bad


# --- wiring ------------------------------------------------------------------------------------------


def wire(
    container: Container,
    kube: object,
    transport: httpx.BaseTransport,
    clock: FakeClock,
    *,
    sleep: Callable[[float], None],
    real_monotonic: bool,
    watch_timeout: float,
) -> None:
    """Point a production container at the fakes and the fake clock (monotonic readings and the
    Aiven client's clock stay real when `real_monotonic`); no HTTP endpoints are served."""
    container.kubernetes.override(providers.Object(kube))
    container.aiven_transport.override(providers.Object(transport))
    container.now.override(providers.Object(clock.now))
    if not real_monotonic:
        container.monotonic.override(providers.Object(clock.monotonic))
        container.aiven_clock.override(providers.Object(clock.monotonic))
        container.aiven_sleep.override(providers.Object(sleep))
    container.serve_http.override(providers.Object(False))
    container.watch_timeout.override(providers.Object(watch_timeout))


# --- one operator --------------------------------------------------------------------------------------


@dataclass
class Harness:
    kube: FakeKubernetes
    aiven: FakeAiven
    operator: Operator
    container: Container
    clock: FakeClock
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
    """The single-operator configuration (no leader election; orphan sweep as configured by default)."""
    base = OperatorConfig(
        aiven_token=TOKEN,
        aiven_api_url="https://api.aiven.io",
        projects=(PROJECT, "nav-prod"),
        main_project=PROJECT,
        workers=2,
        janitor_grace_period=0.0,
    )
    return replace(base, **overrides)


def build(
    config: OperatorConfig | None = None,
    kube: FakeKubernetes | None = None,
    aiven: FakeAiven | None = None,
    real_monotonic: bool = False,
    overrides: Mapping[str, object] | None = None,
) -> Harness:
    """One operator on the fakes; the clock starts at the real current time. `overrides`
    replaces container providers by name (a shell, the queue, ...) before the operator is built."""
    clock = FakeClock(start=datetime.now(UTC))
    kube = kube or FakeKubernetes(clock=clock, namespaces=(NAMESPACE,))
    aiven = aiven or FakeAiven.with_default_seed(token=TOKEN, clock=clock.now)
    logs = io.StringIO()
    configure_logging("debug", "json", stream=logs, registry=SecretRegistry(), secrets=(TOKEN,))
    container = build_container(config or make_config())
    wire(
        container,
        kube,
        aiven.mock_transport(),
        clock,
        sleep=clock.sleep,
        real_monotonic=real_monotonic,
        watch_timeout=1.0,
    )
    override(container, **(overrides or {}))
    return Harness(kube, aiven, container.operator(), container, clock, logs)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = build()
    yield h
    h.close()


def seed_aiven_objects(h: Harness | World) -> None:
    """The aiven.io objects the default applications require, RUNNING in NAMESPACE."""
    for kind, name in AIVEN_OBJECTS:
        h.kube.apply(aiven_object(kind, name))


#: aiven.io objects gating the default OpenSearch and Valkey instances.
AIVEN_OBJECTS = (
    ("OpenSearch", "opensearch-team-a-logs"),
    ("Valkey", "valkey-team-a-cache"),
    ("Valkey", "valkey-team-a-sessions"),
)


# --- replicas and the world ---------------------------------------------------------------------------


@dataclass
class Replica:
    name: str
    container: Container
    operator: Operator
    transport: RecordingTransport
    plans: list[CrashPlan]
    alive: bool = True

    def is_leader(self) -> bool:
        return self.operator.may_mutate()


def base_config(**overrides: Any) -> OperatorConfig:
    config = OperatorConfig(
        aiven_token=TOKEN,
        aiven_api_url="https://api.aiven.io",
        projects=(PROJECT, "nav-prod"),
        main_project=PROJECT,
        workers=2,
        janitor_grace_period=0.0,
        orphan_grace_period=120.0,
        orphan_sweep_dry_run=False,
        cert_renewal_window=7 * 86400.0,
        lease_duration=15.0,
        renew_deadline=10.0,
        retry_period=2.0,
    )
    return replace(config, **overrides)


@dataclass
class World:
    """One cluster, one Aiven, one clock; replicas come and go."""

    config: OperatorConfig = field(default_factory=base_config)
    clock: FakeClock = field(default_factory=FakeClock)
    logs: io.StringIO = field(default_factory=io.StringIO)
    replicas: list[Replica] = field(default_factory=list)
    transports: list[RecordingTransport] = field(default_factory=list)
    crashes: int = 0
    #: Threaded tests: the operator's monotonic clock, the Aiven client's clock and sleep, and the
    #: simulator's are real (the wall clock stays fake: it only stamps objects and certificates).
    real_time: bool = False
    kube: FakeKubernetes = field(init=False)
    aiven: FakeAiven = field(init=False)
    _last_resync: float = field(init=False)

    def __post_init__(self) -> None:
        self._last_resync = self.clock.monotonic()
        self.kube = FakeKubernetes(clock=self.clock, namespaces=(NAMESPACE, OTHER_NAMESPACE, "aivenator"))
        if self.real_time:
            self.aiven = FakeAiven.with_default_seed(token=TOKEN, clock=self.clock.now)
        else:
            self.aiven = FakeAiven.with_default_seed(
                token=TOKEN, clock=self.clock.now, monotonic=self.clock.monotonic, sleep=self.clock.advance
            )
        configure_logging("debug", "json", stream=self.logs, registry=SecretRegistry(), secrets=(TOKEN,))
        seed_aiven_objects(self)

    # --- replicas ------------------------------------------------------------------------------------

    def start_replica(self, plans: list[CrashPlan] | None = None) -> Replica:
        name = f"replica-{len(self.transports)}"
        config = replace(self.config, leader_election_identity=name)
        plans = plans if plans is not None else []
        container = build_container(config)
        transport = RecordingTransport(self.aiven, time.monotonic if self.real_time else self.clock.monotonic)
        wire(
            container,
            CrashingProxy(self.kube, "kube", plans),
            transport,
            self.clock,
            sleep=self.clock.advance,
            real_monotonic=self.real_time,
            watch_timeout=0.05,
        )
        real_aiven = container.aiven()
        container.aiven.override(providers.Object(CrashingProxy(real_aiven, "aiven", plans)))
        operator = container.operator()
        replica = Replica(name, container, operator, transport, plans)
        self.replicas.append(replica)
        self.transports.append(transport)
        return replica

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def leader(self) -> Replica | None:
        for replica in self.live():
            if replica.is_leader():
                return replica
        return None

    def kill(self, replica: Replica) -> None:
        """Abandon a replica as a SIGKILL would: no Lease release, no cleanup of any kind."""
        replica.alive = False

    def replace_crashed(self, replica: Replica) -> Replica:
        self.crashes += 1
        self.kill(replica)
        return self.start_replica()

    # --- driving -------------------------------------------------------------------------------------

    def elect(self) -> None:
        """One election round, the current leader first (so a clock jump does not hand the Lease
        to a standby that merely has not looked for a while)."""
        live = self.live()
        if not live or live[0].operator.leader is None:
            return
        holder = self._holder()
        live.sort(key=lambda r: r.name != holder)
        for replica in live:
            assert replica.operator.leader is not None
            replica.operator.leader.try_acquire_or_renew()

    def _holder(self) -> str | None:
        lease = self.kube.get(
            "Lease", self.config.leader_election_namespace, self.config.leader_election_name
        )
        if lease is None:
            return None
        return str((lease.get("spec") or {}).get("holderIdentity") or "") or None

    def drain(self, max_steps: int = 2_000) -> None:
        """Let every live replica process what is ready. A crash replaces that replica."""
        for replica in list(self.live()):
            try:
                replica.operator.drain(max_steps)
            except SimulatedCrash:
                self.replace_crashed(replica)

    def tick(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self.elect()
        self.drain()

    def advance(self, seconds: float, step: float = 5.0) -> None:
        """Move time forward in steps short enough for the leader to renew its Lease."""
        left = seconds
        while left > 0:
            chunk = min(step, left)
            self.tick(chunk)
            left -= chunk

    def advance_with_resync(self, seconds: float, step: float) -> None:
        """`advance`, with what the run loop's timer adds: every live replica re-enqueues every
        application once per `sync_period` of (fake) time (`Operator.resync`)."""
        left = seconds
        while left > 0:
            chunk = min(step, left)
            self.tick(chunk)
            left -= chunk
            if self.clock.monotonic() - self._last_resync >= self.config.sync_period:
                self._last_resync = self.clock.monotonic()
                for replica in self.live():
                    replica.operator.resync()
                self.drain()

    def settle(self, rounds: int = 3, backoff_horizon: float = 310.0) -> None:
        """Faults off; time past every backoff; queues drained; janitor and orphan sweep run
        (the sweep twice, past its grace period)."""
        self.aiven.faults.clear()
        for replica in self.live():
            replica.plans.clear()
        for _ in range(rounds):
            self.advance(backoff_horizon, step=self._step(backoff_horizon))
        self.run_janitor()
        self.sweep()
        grace = self.config.orphan_grace_period + 1
        self.advance(grace, step=self._step(grace))
        self.sweep()
        self.tick()
        self.run_janitor()

    def _step(self, total: float) -> float:
        """Big jumps with one replica; Lease-renewal-sized steps when a standby could take over."""
        return max(5.0, total / 4) if len(self.live()) == 1 else 5.0

    def run_janitor(self) -> None:
        for replica in self.live():
            replica.operator.queue.add((JANITOR, "", ""))
        self.tick()

    def sweep(self) -> None:
        for replica in self.live():
            replica.operator.queue.add((ORPHANS, "", ""))
        self.tick()

    def close(self) -> None:
        for replica in self.replicas:
            with contextlib.suppress(Exception):
                replica.container.aiven().close()
        structlog.reset_defaults()

    # --- observations --------------------------------------------------------------------------------

    def secret(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.kube.get("Secret", namespace, name)

    def managed_secrets(self) -> list[dict[str, Any]]:
        return [
            s
            for s in self.kube.objects("Secret")
            if ((s.get("metadata") or {}).get("labels") or {}).get(L.TYPE_LABEL) == L.TYPE_VALUE
        ]

    def our_users(self, service: tuple[str, str]) -> set[str]:
        return {u for u in self.aiven.users(*service) if not is_builtin(u)}

    def crashed_work(self) -> list[str]:
        return [line for line in self.logs.getvalue().splitlines() if "work_item_failed" in line]

    def early_requests(self) -> list[tuple[Sent, Sent]]:
        return [pair for t in self.transports for pair in t.early_requests()]

    def credentials(self) -> set[str]:
        """Every credential value currently known: Secret values under credential keys (and the
        PEM bodies of private keys), every Aiven user password and private key, the token."""
        found = {TOKEN}
        for secret in self.kube.objects("Secret"):
            for key, value in (secret.get("data") or {}).items():
                if any(marker in key for marker in SECRET_KEY_MARKERS) and value:
                    raw = base64.b64decode(value)
                    found.add(value)
                    with contextlib.suppress(UnicodeDecodeError):
                        found.update(_pieces(raw.decode("utf-8")))
        for project, services in self.aiven.projects().items():
            for service in services:
                for user in self.aiven.users(project, service).values():
                    found.update(_pieces(str(user.get("password") or "")))
                    found.update(_pieces(str(user.get("access_key") or "")))
        return {c for c in found if len(c) >= 8}

    def public_text(self) -> str:
        """Everything a credential must never reach: logs, events, every application status."""
        parts = [self.logs.getvalue()]
        parts.extend(json.dumps(e) for e in self.kube.events())
        parts.extend(json.dumps(a.get("status") or {}) for a in self.kube.objects("AivenApplication"))
        return "\n".join(parts)


def _pieces(value: str) -> set[str]:
    """A password, or the base64 body lines of a PEM key (each distinctive on its own)."""
    if "-----BEGIN" not in value:
        return {value} if value else set()
    return {line for line in value.splitlines() if line and not line.startswith("-----") and len(line) >= 16}


# --- objects -------------------------------------------------------------------------------------------


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
    *,
    kafka: dict[str, Any] | None = None,
    opensearch: dict[str, Any] | None = None,
    valkey: list[dict[str, Any]] | None = None,
    protected: bool = False,
    expires_at: datetime | None = None,
    **extra_spec: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = dict(extra_spec)
    if kafka is not None:
        spec["kafka"] = kafka
    if opensearch is not None:
        spec["openSearch"] = opensearch
    if valkey is not None:
        spec["valkey"] = valkey
    if protected:
        spec["protected"] = True
    if expires_at is not None:
        spec["expiresAt"] = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"aiven.nais.io/secret-generation": "1"},
        },
        "spec": spec,
    }


def full_application(name: str = "app", generation_tag: str = "1") -> dict[str, Any]:
    """Kafka, OpenSearch `logs` and Valkey `cache`, Secrets named `<name>-<service>-<tag>`."""
    return application(
        name,
        kafka={"pool": PROJECT, "secretName": f"{name}-kafka-{generation_tag}"},
        opensearch={"instance": "logs", "access": "readwrite", "secretName": f"{name}-os-{generation_tag}"},
        valkey=[{"instance": "cache", "access": "write", "secretName": f"{name}-valkey-{generation_tag}"}],
    )


#: Kinds of workload and where their pod spec is.
WORKLOAD_KINDS = tuple(POD_SPEC_PATHS)
REFERENCE_WAYS = ("volume", "projected", "env", "env_from")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def workload(
    kind: str,
    name: str,
    secret: str,
    way: str,
    container_list: str = "containers",
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """A workload of `kind` referring to `secret` in one of the supported ways."""
    container: dict[str, Any] = {"name": "c", "image": "x"}
    pod_spec: dict[str, Any] = {container_list: [container]}
    if container_list != "containers":
        pod_spec["containers"] = [{"name": "main", "image": "x"}]
    if way == "volume":
        pod_spec["volumes"] = [{"name": "v", "secret": {"secretName": secret}}]
    elif way == "projected":
        pod_spec["volumes"] = [{"name": "v", "projected": {"sources": [{"secret": {"name": secret}}]}}]
    elif way == "env":
        container["env"] = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": secret, "key": "k"}}}]
    else:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    api = {"Pod": "v1", "Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    body: dict[str, Any] = {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
    }
    path = POD_SPEC_PATHS[kind]
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = pod_spec
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        body["spec"]["selector"] = {"matchLabels": {"app": name}}
    return body


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def iter_conditions(app: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (app.get("status") or {}).get("conditions") or []


def condition(app: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in iter_conditions(app or {}):
        if c.get("type") == kind:
            return c
    return None


Check = Callable[[World], None]


# --- the promises, checked on a settled world -------------------------------------------------------

#: Keys every Secret of a section must have (a sample that proves the right renderer ran).
EXPECTED_KEYS = {
    ServiceType.KAFKA: (
        "KAFKA_CERTIFICATE",
        "KAFKA_PRIVATE_KEY",
        "KAFKA_CA",
        "KAFKA_BROKERS",
        "client.keystore.p12",
    ),
    ServiceType.OPENSEARCH: ("OPEN_SEARCH_USERNAME", "OPEN_SEARCH_PASSWORD", "OPEN_SEARCH_URI"),
    ServiceType.VALKEY: ("VALKEY_USERNAME_{I}", "VALKEY_PASSWORD_{I}", "REDIS_URI_{I}"),
}


def _env_instance(instance: str) -> str:
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9") else "_" for c in instance).upper()


def current_apps(world: World) -> list[AivenApplication]:
    """Valid, live, unexpired applications in the cluster."""
    apps = []
    for raw in world.kube.objects("AivenApplication"):
        match parse_application(raw, frozenset(world.config.projects)):
            case Success(parsed):
                app = parsed.app
                if app.deletion_requested:
                    continue
                if app.expires_at is not None and app.expires_at <= world.clock.now():
                    continue
                apps.append(app)
            case Failure(_):
                continue
    return apps


def referenced_users(world: World) -> dict[tuple[str, str, str], list[str]]:
    """(project, service, user) -> the managed Secrets (ns/name) whose annotations record it."""
    refs: dict[tuple[str, str, str], list[str]] = {}
    for raw in world.managed_secrets():
        meta = raw["metadata"]
        seen: set[tuple[str, str, str]] = set()
        for action in cleanup_actions(SecretMeta.from_raw(raw)):
            if isinstance(action, DeleteServiceUser):
                key = (action.project, action.service, action.username)
                if key not in seen:
                    seen.add(key)
                    refs.setdefault(key, []).append(f"{meta['namespace']}/{meta['name']}")
    return refs


def check_apps_have_their_secrets(world: World) -> None:
    """Promise 1: every application has exactly its Secrets, with the right keys and the
    credentials Aiven currently has."""
    config = ServiceConfig(main_project=world.config.main_project)
    for app in current_apps(world):
        for handler, section in all_sections(app):
            where = f"{app.namespace}/{app.name} {section.key} -> Secret {section.secret_name}"
            secret = world.secret(section.secret_name, app.namespace)
            assert secret is not None, f"{where}: missing"
            if not writable_by(secret, app.name):
                # Another app's or an unmanaged Secret: refused, and the status says so.
                check_conflict_reported(world, app, section.secret_name)
                continue
            assert not secret["metadata"].get("deletionTimestamp"), f"{where}: being deleted"
            labels = secret["metadata"].get("labels") or {}
            assert labels.get(L.APP_LABEL) == app.name and labels.get(L.TYPE_LABEL) == L.TYPE_VALUE, where
            assert L.FINALIZER in (secret["metadata"].get("finalizers") or []), f"{where}: no finalizer"
            data = decoded(secret)
            inst = _env_instance(section.instance)
            for key in EXPECTED_KEYS[section.service_type]:
                assert key.format(I=inst) in data, f"{where}: key {key} missing"
            target = handler.target(app, section, config)
            recorded = [
                a
                for a in cleanup_actions(SecretMeta.from_raw(secret))
                if isinstance(a, DeleteServiceUser) and a.service in {c.service for c in target.candidates}
            ]
            assert recorded, f"{where}: records no user"
            action = recorded[0]
            users = world.aiven.users(action.project, action.service)
            assert action.username in users, f"{where}: user {action.username} not in Aiven"
            user = users[action.username]
            if section.service_type is ServiceType.KAFKA:
                assert data["KAFKA_CERTIFICATE"].decode() == user["access_cert"], (
                    f"{where}: stale certificate"
                )
                assert data["KAFKA_SCHEMA_REGISTRY_PASSWORD"].decode() == user["password"], (
                    f"{where}: stale password"
                )
            elif section.service_type is ServiceType.OPENSEARCH:
                assert data["OPEN_SEARCH_USERNAME"].decode() == action.username, where
                assert data["OPEN_SEARCH_PASSWORD"].decode() == user["password"], f"{where}: stale password"
            else:
                assert data[f"VALKEY_USERNAME_{inst}"].decode() == action.username, where
                assert data[f"VALKEY_PASSWORD_{inst}"].decode() == user["password"], (
                    f"{where}: stale password"
                )


def writable_by(secret: dict[str, Any], app_name: str) -> bool:
    """Ours to write for `app_name` (product spec section 11): our type label and its app label."""
    labels = secret["metadata"].get("labels") or {}
    return labels.get(L.TYPE_LABEL) == L.TYPE_VALUE and labels.get(L.APP_LABEL) == app_name


def check_conflict_reported(world: World, app: AivenApplication, secret_name: str) -> None:
    """A section refused for a Secret that is not the app's: `SecretConflict` names it."""
    raw = world.kube.get("AivenApplication", app.namespace, app.name)
    assert raw is not None
    conditions = {c.get("type"): c for c in (raw.get("status") or {}).get("conditions") or []}
    conflict = conditions.get("SecretConflict") or {}
    assert conflict.get("status") == "True", f"{app.name}: Secret {secret_name} is not its own, no SecretConflict"
    assert secret_name in str(conflict.get("message")), conflict


def check_every_user_has_one_owner(world: World, spare: frozenset[str] = frozenset()) -> None:
    """Promise 2: every user of ours in the managed services is recorded by exactly one managed
    Secret (`spare`: users a test knows are inside their grace period)."""
    refs = referenced_users(world)
    for project, service in MANAGED_SERVICES:
        stype = SERVICE_TYPES[(project, service)]
        for username in sorted(world.our_users((project, service))):
            if not matches_our_scheme(stype, username) or username in spare:
                continue
            owners = refs.get((project, service, username), [])
            assert len(owners) == 1, (
                f"user {username} on {service}: recorded by {owners or 'no Secret (orphan)'}"
            )


def check_opensearch_acl_matches_secrets(world: World) -> None:
    """Promise 4: the shared ACL document holds exactly the managed Secrets' users, each with
    rules for `_*` and `*`."""
    project, service = OPENSEARCH_SERVICE
    wanted = {u for (p, s, u) in referenced_users(world) if (p, s) == (project, service)}
    doc = world.aiven.opensearch_acl(project, service)
    entries = {e["username"]: e for e in doc.get("acls") or [] if not is_builtin(e["username"])}
    assert set(entries) == wanted, f"ACL users {sorted(entries)} != Secrets' users {sorted(wanted)}"
    for username, entry in entries.items():
        assert {r["index"] for r in entry.get("rules") or []} == {"_*", "*"}, f"{username}: {entry}"
    if wanted:
        assert doc.get("enabled") is True


def check_no_credential_leaked(world: World) -> None:
    """Promise 5: no credential value in logs, events, statuses."""
    text = world.public_text()
    leaked = sorted(c[:6] + "…" for c in world.credentials() if c in text)
    assert not leaked, f"credentials leaked (prefixes): {leaked}"


def check_retry_after_honoured(world: World) -> None:
    """Promise 6: no request sent before a Retry-After its client had received elapsed."""
    early = world.early_requests()
    assert not early, f"requests sent too early: {early[:3]}"


def check_no_crashed_work(world: World) -> None:
    crashed = world.crashed_work()
    assert not crashed, crashed[:3]


def check_all(world: World, spare: frozenset[str] = frozenset()) -> None:
    check_apps_have_their_secrets(world)
    check_every_user_has_one_owner(world, spare)
    check_opensearch_acl_matches_secrets(world)
    check_no_credential_leaked(world)
    check_retry_after_honoured(world)
    check_no_crashed_work(world)


SERVICE_TYPES = {
    KAFKA_SERVICE: ServiceType.KAFKA,
    OPENSEARCH_SERVICE: ServiceType.OPENSEARCH,
    VALKEY_SERVICE: ServiceType.VALKEY,
}
