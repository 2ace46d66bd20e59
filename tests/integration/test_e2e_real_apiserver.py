"""End to end: `aivenator run` as a subprocess on a real kube-apiserver, Aiven simulated over HTTP.

The operator runs exactly as deployed: its own process, the ServiceAccount token bound by the
RBAC in deploy/, the real Kubernetes and Aiven adapters; only Aiven is the simulator
(`FakeAiven.serve()` on loopback). The tests act as the platform (admin token): they create the
`aiven.io` instances, apply AivenApplications, edit and delete things, and observe the results
in the cluster and in the simulator.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer
from kubernetes import client as k8s
from kubernetes.client import CoordinationV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.integration.real_apiserver import OPERATOR_NAMESPACE, RealApiserver

pytestmark = pytest.mark.real_apiserver

REPO = Path(__file__).resolve().parents[2]
PROJECT = "dev-nais-dev"
TOKEN = "e2e-" + uuid.uuid4().hex
FINALIZER = "aivenator.aiven.nais.io/finalizer"
WAIT = 60.0

T = TypeVar("T")


# --------------------------------------------------------------------------- the operator process


@dataclass
class OperatorProcess:
    name: str
    log_path: Path
    process: subprocess.Popen[bytes]
    _log: Any = field(repr=False, default=None)

    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for line in self.text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def saw(self, event: str, **fields: str) -> bool:
        return any(
            e.get("event") == event and all(e.get(k) == v for k, v in fields.items()) for e in self.events()
        )

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL the operator if the test process dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Operators:
    """Starts `aivenator run` subprocesses and always stops them on teardown."""

    def __init__(self, server: RealApiserver, aiven_url: str, token_file: Path, workdir: Path) -> None:
        self.server = server
        self.aiven_url = aiven_url
        self.token_file = token_file
        self.workdir = workdir
        self.started: list[OperatorProcess] = []

    def start(self, name: str, *extra: str) -> OperatorProcess:
        argv = [
            sys.executable,
            "-m",
            "aivenator.entrypoints.cli.main",
            "run",
            "--kubeconfig",
            str(self.server.kubeconfig_operator),
            "--aiven-api-url",
            self.aiven_url,
            "--aiven-token-file",
            str(self.token_file),
            "--projects",
            PROJECT,
            "--main-project",
            PROJECT,
            "--metrics-address",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--workers",
            "2",
            *extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIVENATOR_")}
        env["PYTHONPATH"] = str(REPO)
        log_path = self.workdir / f"operator-{name}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # started from the test thread
        )
        op = OperatorProcess(name, log_path, process, log)
        self.started.append(op)
        return op

    def stop_all(self) -> None:
        for op in self.started:
            op.stop()


@pytest.fixture(scope="module")
def aiven() -> Iterator[tuple[FakeAiven, FakeAivenServer]]:
    fake = FakeAiven.with_default_seed(token=TOKEN)
    server = fake.serve()
    yield fake, server
    server.stop()


@pytest.fixture
def operators(
    real_apiserver: RealApiserver, aiven: tuple[FakeAiven, FakeAivenServer], tmp_path: Path
) -> Iterator[Operators]:
    token_file = tmp_path / "aiven-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    ops = Operators(real_apiserver, aiven[1].base_url, token_file, tmp_path)
    try:
        yield ops
    finally:
        ops.stop_all()
    for op in ops.started:
        text = op.text()
        assert TOKEN not in text, f"the Aiven token appears in the log of operator {op.name}"
        assert "work_item_failed" not in text, op.tail()
        check_log_lines(op)


def check_log_lines(op: OperatorProcess) -> None:
    """Every line is one JSON object (`--log-format json`, whoever logged it), and the shipped
    RBAC was enough: no 401/403 anywhere (the adapter logs each as `kubernetes_forbidden`)."""
    for number, line in enumerate(op.text().splitlines(), 1):
        try:
            parsed = json.loads(line)
        except ValueError:
            pytest.fail(f"operator {op.name} log line {number} is not JSON: {line[:300]!r}")
        assert isinstance(parsed, dict), line
        assert "kubernetes_forbidden" not in str(parsed.get("event")), f"operator {op.name}: {line}"
        assert "KubeForbidden" not in line, f"operator {op.name}: {line}"


@pytest.fixture(scope="module")
def admin(real_apiserver: RealApiserver) -> Iterator[k8s.ApiClient]:
    with real_apiserver.admin_client() as api:
        yield api


# --------------------------------------------------------------------------- helpers


def wait_for(
    what: str, check: Callable[[], T | None], ops: list[OperatorProcess], timeout: float = WAIT
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for op in ops:
            if not op.alive():
                pytest.fail(
                    f"operator {op.name} exited ({op.process.returncode}) waiting for {what}:\n{op.tail()}"
                )
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- operator {op.name}:\n{op.tail()}" for op in ops)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.25)


def new_namespace(admin: k8s.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    CoreV1Api(admin).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    return name


def create_aiven_instance(admin: k8s.ApiClient, namespace: str, plural: str, kind: str, name: str) -> None:
    api = CustomObjectsApi(admin)
    body = {
        "apiVersion": "aiven.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
    }
    api.create_namespaced_custom_object("aiven.io", "v1alpha1", namespace, plural, body)
    # status is a subresource: a create ignores it, so RUNNING is set as Aiven's operator would.
    api.patch_namespaced_custom_object_status(
        "aiven.io", "v1alpha1", namespace, plural, name, {"status": {"state": "RUNNING"}}
    )


def application(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"aiven.nais.io/secret-generation": "1"},
            "annotations": {"nais.io/deploymentCorrelationID": str(uuid.uuid4())},
        },
        "spec": spec,
    }


def apply_app(admin: k8s.ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    created: Any = CustomObjectsApi(admin).create_namespaced_custom_object(
        "aiven.nais.io", "v1", body["metadata"]["namespace"], "aivenapplications", body
    )
    return dict(created)


def get_app(admin: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    got: Any = CustomObjectsApi(admin).get_namespaced_custom_object(
        "aiven.nais.io", "v1", namespace, "aivenapplications", name
    )
    return dict(got)


def converged(
    admin: k8s.ApiClient, namespace: str, name: str, generation: int | None = None
) -> dict[str, Any] | None:
    app = get_app(admin, namespace, name)
    status = app.get("status") or {}
    wanted = app["metadata"]["generation"] if generation is None else generation
    if app["metadata"]["generation"] != wanted:
        return None
    if (
        status.get("synchronizationState") == "RolloutComplete"
        and status.get("synchronizedGeneration") == wanted
    ):
        return app
    return None


def read_secret(admin: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret as plain JSON (None if it does not exist)."""
    try:
        secret = CoreV1Api(admin).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    plain: dict[str, Any] = admin.sanitize_for_serialization(secret)  # type: ignore[no-untyped-call]  # the kubernetes ApiClient is unannotated
    return plain


def field_managers(obj: dict[str, Any], subresource: str = "") -> set[str]:
    """Managers named in `managedFields` for the main resource or one subresource."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return {str(e.get("manager")) for e in entries if str(e.get("subresource") or "") == subresource}


def user_of(secret: dict[str, Any]) -> str:
    annotations = secret["metadata"].get("annotations") or {}
    users = [v for k, v in annotations.items() if k.endswith("/serviceUser")]
    assert len(users) == 1, annotations
    return str(users[0])


def condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (app.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def lease_holder(admin: k8s.ApiClient, name: str) -> str | None:
    try:
        lease = CoordinationV1Api(admin).read_namespaced_lease(name, OPERATOR_NAMESPACE)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    holder = lease.spec.holder_identity if lease.spec is not None else None
    return str(holder) if holder else None


# --------------------------------------------------------------------------- lifecycle


def test_the_operator_gives_an_app_its_secrets_rotates_them_and_cleans_up(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    fake, _ = aiven
    ns = new_namespace(admin, "e2e")
    opensearch, valkey = f"opensearch-{ns}-logs", f"valkey-{ns}-cache"
    fake.add_service(PROJECT, opensearch, "opensearch")
    fake.add_service(PROJECT, valkey, "valkey", replica=True)
    create_aiven_instance(admin, ns, "opensearches", "OpenSearch", opensearch)
    create_aiven_instance(admin, ns, "valkeys", "Valkey", valkey)
    # The janitor grace period keeps unused Secrets for an hour, so this test decides when the
    # old Secret is deleted (the janitor itself is covered by the fake tier and the demo).
    op = operators.start("lifecycle", "--janitor-grace-period", "1h", "--janitor-interval", "1h")
    ops = [op]
    wait_for("operator_started", lambda: op.saw("operator_started"), ops)

    spec = {
        "kafka": {"pool": PROJECT, "secretName": "app-kafka-1"},
        "openSearch": {"instance": "logs", "access": "readwrite", "secretName": "app-os-1"},
        "valkey": [{"instance": "cache", "access": "write", "secretName": "app-valkey-1"}],
    }
    apply_app(admin, application(ns, "app", spec))
    app = wait_for("app converged", lambda: converged(admin, ns, "app", 1), ops)

    assert condition(app, "Ready").get("status") == "True"
    assert condition(app, "KafkaReady").get("status") == "True"
    assert app["status"]["synchronizationHash"]
    secrets = {name: read_secret(admin, ns, name) for name in ("app-kafka-1", "app-os-1", "app-valkey-1")}
    for name, secret in secrets.items():
        assert secret is not None, name
        meta = secret["metadata"]
        assert meta["labels"]["type"] == "aivenator.aiven.nais.io"
        assert meta["labels"]["app"] == "app"
        assert meta["labels"]["team"] == ns
        assert FINALIZER in (meta.get("finalizers") or [])
        assert not meta.get("ownerReferences")
        assert secret["type"] == "Opaque"
        assert {"AIVEN_CA", "AIVEN_SECRET_UPDATED"} <= set(secret["data"])
        assert field_managers(secret) == {"aivenator"}, meta.get("managedFields")
    # managedFields name this operator for what it wrote: the status and its events.
    assert field_managers(app, "status") == {"aivenator"}, app["metadata"].get("managedFields")
    events = [
        e
        for e in admin.sanitize_for_serialization(CoreV1Api(admin).list_namespaced_event(ns).items)  # type: ignore[no-untyped-call]  # the ApiClient is unannotated
        if e.get("reportingComponent") == "aivenator"
    ]
    assert events and all(field_managers(e) == {"aivenator"} for e in events), events[:1]
    kafka, os_secret, vk = secrets["app-kafka-1"], secrets["app-os-1"], secrets["app-valkey-1"]
    assert kafka is not None and os_secret is not None and vk is not None
    assert {"KAFKA_CERTIFICATE", "KAFKA_PRIVATE_KEY", "client.keystore.p12", "client.truststore.jks"} <= set(
        kafka["data"]
    )
    assert {"OPEN_SEARCH_USERNAME", "OPEN_SEARCH_PASSWORD", "OPEN_SEARCH_URI"} <= set(os_secret["data"])
    assert {"VALKEY_USERNAME_CACHE", "REDIS_URI_CACHE", "VALKEY_REPLICA_URI_CACHE"} <= set(vk["data"])
    kafka_user = user_of(kafka)
    assert kafka_user in fake.users(PROJECT, "kafka")
    assert user_of(os_secret) in fake.users(PROJECT, opensearch)
    assert user_of(vk) in fake.users(PROJECT, valkey)
    assert user_of(os_secret) in json.dumps(fake.opensearch_acl(PROJECT, opensearch))

    # Redeploy: deploy tooling writes a new secretName; the apiserver bumps the generation.
    CustomObjectsApi(admin).patch_namespaced_custom_object(
        "aiven.nais.io",
        "v1",
        ns,
        "aivenapplications",
        "app",
        {"spec": {"kafka": {"pool": PROJECT, "secretName": "app-kafka-2"}}},
    )
    app = wait_for("new generation converged", lambda: converged(admin, ns, "app", 2), ops)
    new_kafka = wait_for("Secret app-kafka-2", lambda: read_secret(admin, ns, "app-kafka-2"), ops)
    new_user = user_of(new_kafka)
    assert new_user != kafka_user
    assert new_user in fake.users(PROJECT, "kafka")
    assert condition(app, "Ready").get("status") == "True"
    old = read_secret(admin, ns, "app-kafka-1")
    assert old is not None, "the grace period must keep the old Secret"

    # Nothing references the old Secret any more: delete it; the finalizer deletes its user.
    CoreV1Api(admin).delete_namespaced_secret("app-kafka-1", ns)
    wait_for("old Secret gone", lambda: read_secret(admin, ns, "app-kafka-1") is None, ops)
    assert kafka_user not in fake.users(PROJECT, "kafka")
    assert new_user in fake.users(PROJECT, "kafka")
    assert op.saw("secret_finalized", namespace=ns)
    # The app's current Secrets are untouched.
    for name in ("app-kafka-2", "app-os-1", "app-valkey-1"):
        current = read_secret(admin, ns, name)
        assert current is not None and not current["metadata"].get("deletionTimestamp"), name

    op.stop()
    assert op.process.returncode == 0, op.tail()
    assert op.saw("aivenator_stopped")


# --------------------------------------------------------------------------- leader failover


def test_only_the_leader_mutates_and_a_standby_takes_over(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    fake, _ = aiven
    ns = new_namespace(admin, "e2e-lf")
    lease = f"e2e-leader-{uuid.uuid4().hex[:6]}"
    flags = (
        "--leader-elect",
        "--leader-election-name",
        lease,
        "--leader-election-namespace",
        OPERATOR_NAMESPACE,
        # Generous against a stalled renewal on a loaded 2-core machine (that would be a
        # legitimate hand-over, but not the one this test is about).
        "--lease-duration",
        "10s",
        "--renew-deadline",
        "8s",
        "--retry-period",
        "1s",
    )
    first = operators.start("a", *flags, "--leader-election-identity", "replica-a")
    wait_for("replica-a leads", lambda: lease_holder(admin, lease) == "replica-a", [first])
    second = operators.start("b", *flags, "--leader-election-identity", "replica-b")
    both = [first, second]
    wait_for("replica-b started", lambda: second.saw("operator_started"), both)

    apply_app(admin, application(ns, "one", {"kafka": {"pool": PROJECT, "secretName": "one-kafka"}}))
    wait_for("app one converged", lambda: converged(admin, ns, "one"), both)
    secret = wait_for("Secret one-kafka", lambda: read_secret(admin, ns, "one-kafka"), both)
    assert user_of(secret) in fake.users(PROJECT, "kafka")
    assert first.saw("leader_elected"), first.tail()
    assert first.saw("aiven_application_synced", namespace=ns, aiven_application="one"), first.tail()
    assert first.saw("secret_written", namespace=ns, aiven_application="one"), first.tail()
    # The standby did nothing: no sync, no write, and it never led.
    assert not second.saw("aiven_application_sync_started", namespace=ns), second.tail()
    assert not second.saw("secret_written"), second.tail()
    assert not second.saw("leader_elected"), second.tail() + "\n--- a:\n" + first.tail()
    assert lease_holder(admin, lease) == "replica-a"

    # The leader dies without releasing the Lease; the standby takes over once it expires.
    first.stop(signal.SIGKILL)
    wait_for("replica-b leads", lambda: lease_holder(admin, lease) == "replica-b", [second], timeout=30.0)
    wait_for("replica-b elected", lambda: second.saw("leader_elected"), [second])

    apply_app(admin, application(ns, "two", {"kafka": {"pool": PROJECT, "secretName": "two-kafka"}}))
    wait_for("app two converged", lambda: converged(admin, ns, "two"), [second])
    two = wait_for("Secret two-kafka", lambda: read_secret(admin, ns, "two-kafka"), [second])
    assert user_of(two) in fake.users(PROJECT, "kafka")
    # The status lands before the pass logs its end: wait for the line rather than race it.
    wait_for(
        "replica-b logged the sync of two",
        lambda: second.saw("aiven_application_synced", namespace=ns, aiven_application="two"),
        [second],
    )
    # Taking over re-checked app one, which was already converged: nothing rewritten there.
    assert not second.saw("aiven_application_sync_started", namespace=ns, aiven_application="one"), (
        second.tail()
    )


# --------------------------------------------------------------------------- faults and logs


def test_through_aiven_errors_every_log_line_is_json(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    """Aiven answers 500 to user creation a few times; the operator recovers. The fixture then
    parses every line of the log (and fails on any 403)."""
    fake, _ = aiven
    ns = new_namespace(admin, "e2e-err")
    fault = fake.faults.error(500, method="POST", path=r"/service/kafka/user$", times=4)
    op = operators.start("aiven-errors")
    apply_app(admin, application(ns, "errs", {"kafka": {"pool": PROJECT, "secretName": "errs-kafka"}}))
    wait_for("app converged after Aiven errors", lambda: converged(admin, ns, "errs", 1), [op])
    assert fault.hits == 4, "every injected 500 was served"
    levels = {e.get("level") for e in op.events()}
    assert "warning" in levels, op.tail()
    op.stop()


# --------------------------------------------------------------------------- ownership (issue 11)


def events_for(admin: k8s.ApiClient, namespace: str, name: str, reason: str) -> list[Any]:
    items = CoreV1Api(admin).list_namespaced_event(namespace).items
    return [
        e
        for e in items
        if e.involved_object is not None and e.involved_object.name == name and e.reason == reason
    ]


def conflicted(admin: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    app = get_app(admin, namespace, name)
    return app if condition(app, "SecretConflict").get("status") == "True" else None


def test_an_app_naming_another_apps_secret_is_refused_and_recovers_with_its_own(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    fake, _ = aiven
    ns = new_namespace(admin, "e2e-own")
    op = operators.start("collide")
    ops = [op]
    apply_app(admin, application(ns, "good", {"kafka": {"pool": PROJECT, "secretName": "good-kafka"}}))
    wait_for("good converged", lambda: converged(admin, ns, "good"), ops)
    good_before = read_secret(admin, ns, "good-kafka")
    assert good_before is not None
    users_before = set(fake.users(PROJECT, "kafka"))

    apply_app(admin, application(ns, "collide", {"kafka": {"pool": PROJECT, "secretName": "good-kafka"}}))
    app = wait_for("collide reports SecretConflict", lambda: conflicted(admin, ns, "collide"), ops)
    message = condition(app, "SecretConflict")["message"]
    assert "good-kafka" in message and "good" in message
    assert condition(app, "Ready").get("status") == "False"
    warnings = wait_for(
        "a SecretConflict Warning event", lambda: events_for(admin, ns, "collide", "SecretConflict"), ops
    )
    assert warnings[0].type == "Warning" and "good-kafka" in warnings[0].message
    # good's Secret is untouched and collide got no Aiven user.
    good_after = read_secret(admin, ns, "good-kafka")
    assert good_after is not None
    assert good_after["metadata"]["resourceVersion"] == good_before["metadata"]["resourceVersion"]
    assert good_after["metadata"]["labels"]["app"] == "good"
    assert user_of(good_after) in fake.users(PROJECT, "kafka")
    assert set(fake.users(PROJECT, "kafka")) == users_before
    assert converged(admin, ns, "good") is not None

    # The spec changes to a Secret of its own: the conflict clears by itself.
    CustomObjectsApi(admin).patch_namespaced_custom_object(
        "aiven.nais.io",
        "v1",
        ns,
        "aivenapplications",
        "collide",
        {"spec": {"kafka": {"pool": PROJECT, "secretName": "collide-kafka"}}},
    )
    app = wait_for("collide converged", lambda: converged(admin, ns, "collide", 2), ops)
    assert not condition(app, "SecretConflict")
    own = read_secret(admin, ns, "collide-kafka")
    assert own is not None and user_of(own) in fake.users(PROJECT, "kafka")
    assert user_of(own) != user_of(good_after)


def test_an_unmanaged_secret_named_by_an_app_is_never_written_nor_collected(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    fake, _ = aiven
    ns = new_namespace(admin, "e2e-unm")
    core = CoreV1Api(admin)
    core.create_namespaced_secret(
        ns,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(name="db-creds"), string_data={"DB_PASSWORD": "hunter2-" + ns}
        ),
    )
    before = read_secret(admin, ns, "db-creds")
    assert before is not None
    op = operators.start("unmanaged", "--janitor-interval", "1s", "--janitor-grace-period", "0s")
    ops = [op]
    users_before = set(fake.users(PROJECT, "kafka"))
    apply_app(admin, application(ns, "db", {"kafka": {"pool": PROJECT, "secretName": "db-creds"}}))
    app = wait_for("db reports SecretConflict", lambda: conflicted(admin, ns, "db"), ops)
    assert "not managed by aivenator" in condition(app, "SecretConflict")["message"]
    wait_for("a SecretConflict Warning event", lambda: events_for(admin, ns, "db", "SecretConflict"), ops)

    # The janitor has run over the namespace (it collects an unused managed canary) ...
    core.create_namespaced_secret(
        ns,
        k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(
                name="canary",
                labels={"type": "aivenator.aiven.nais.io", "app": "gone", "team": ns},
            ),
            string_data={"AIVEN_CA": "x"},
        ),
    )
    wait_for("the janitor collected the canary", lambda: read_secret(admin, ns, "canary") is None, ops)
    # ... and db-creds is exactly as it was: no label, no finalizer, its data, still there.
    after = read_secret(admin, ns, "db-creds")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert not after["metadata"].get("labels") and not after["metadata"].get("finalizers")
    assert after["data"] == before["data"]
    assert set(fake.users(PROJECT, "kafka")) == users_before

    # Once the foreign Secret is gone, the app provisions its own.
    core.delete_namespaced_secret("db-creds", ns)
    wait_for("db converged", lambda: converged(admin, ns, "db"), ops)
    mine = read_secret(admin, ns, "db-creds")
    assert mine is not None and mine["metadata"]["labels"]["app"] == "db"
    assert user_of(mine) in fake.users(PROJECT, "kafka")


def test_deleting_all_secrets_of_an_app_recreates_them_with_users_that_exist(
    operators: Operators, admin: k8s.ApiClient, aiven: tuple[FakeAiven, FakeAivenServer]
) -> None:
    fake, _ = aiven
    ns = new_namespace(admin, "e2e-mass")
    opensearch, valkey = f"opensearch-{ns}-logs", f"valkey-{ns}-cache"
    fake.add_service(PROJECT, opensearch, "opensearch")
    fake.add_service(PROJECT, valkey, "valkey")
    create_aiven_instance(admin, ns, "opensearches", "OpenSearch", opensearch)
    create_aiven_instance(admin, ns, "valkeys", "Valkey", valkey)
    op = operators.start("mass")
    ops = [op]
    names = ("trio-kafka", "trio-os", "trio-valkey")
    spec = {
        "kafka": {"pool": PROJECT, "secretName": names[0]},
        "openSearch": {"instance": "logs", "access": "read", "secretName": names[1]},
        "valkey": [{"instance": "cache", "access": "read", "secretName": names[2]}],
    }
    apply_app(admin, application(ns, "trio", spec))
    wait_for("trio converged", lambda: converged(admin, ns, "trio"), ops)
    old_uids = {}
    for name in names:
        secret = read_secret(admin, ns, name)
        assert secret is not None
        old_uids[name] = secret["metadata"]["uid"]

    for name in names:
        CoreV1Api(admin).delete_namespaced_secret(name, ns)

    def recreated() -> dict[str, dict[str, Any]] | None:
        found = {n: read_secret(admin, ns, n) for n in names}
        fresh = {
            n: s
            for n, s in found.items()
            if s is not None
            and s["metadata"]["uid"] != old_uids[n]
            and not s["metadata"].get("deletionTimestamp")
        }
        return fresh if len(fresh) == len(names) else None

    fresh = wait_for("all three Secrets recreated", recreated, ops)
    wait_for("trio converged again", lambda: converged(admin, ns, "trio"), ops)
    services = {names[0]: "kafka", names[1]: opensearch, names[2]: valkey}
    for name, secret in fresh.items():
        assert user_of(secret) in fake.users(PROJECT, services[name]), f"{name}: its user does not exist"
    assert user_of(fresh[names[1]]) in json.dumps(fake.opensearch_acl(PROJECT, opensearch))
    # Still true once everything settled (a finalizer deleting a reused user would show here).
    assert op.saw("secret_finalized", namespace=ns)
    for name in names:
        again = read_secret(admin, ns, name)
        assert again is not None and user_of(again) in fake.users(PROJECT, services[name]), name
