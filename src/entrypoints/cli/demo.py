"""The demo: the real operator on the in-memory cluster and the Aiven simulator over loopback HTTP.

Everything except the two edges is production code: the container, the informers, the work
queue, the reconciler, the finalizer and the janitor, and the real httpx Aiven adapter talking
to `FakeAiven.serve()` on 127.0.0.1. The demo walks through the lifecycle one checked step at a
time and prints one plain line per step and per observed change:

1. seed Aiven services and the matching RUNNING `aiven.io` objects in `team-a`;
2. apply the example AivenApplications (`deploy/examples/`, built-in copies as a fallback);
3. converge: every app RolloutComplete, every Secret present, every user in the simulator;
4. show the Secrets (keys, masked values) and the Aiven users created;
5. redeploy one app (new spec, so a new generation, new user names and a new secretName);
6. the janitor keeps the old Secret while a Pod still uses it;
7. roll the Pod over; the janitor (grace period 0) deletes the now unused old Secret;
8. the finalizer deletes the old Aiven user and releases the Secret;
9. no credential value appears in the demo's output or in the operator's logs.

`run_demo` returns 0 when every step passed, 1 otherwise (the failed step is named).
"""

from __future__ import annotations

import base64
import io
import secrets as _secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog
import yaml
from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.kubernetes_port import ObjectMeta
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.container import Container, build_container, override
from aivenator.entrypoints.runtime.logging_setup import configure_logging
from aivenator.entrypoints.runtime.operator import Operator

NAMESPACE = "team-a"
MAIN_PROJECT = "dev-nais-dev"
FINALIZER = "aivenator.aiven.nais.io/finalizer"
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "examples"
EXAMPLE_FILES = ("all-services.yaml", "kafka-only.yaml")
#: The app whose redeploy the demo shows (from kafka-only.yaml).
REDEPLOYED_APP = "myapp"

#: The `aiven.io` objects that make the default simulator seed's services usable from `team-a`.
AIVEN_OBJECTS = (
    ("OpenSearch", "opensearch-team-a-logs"),
    ("Valkey", "valkey-team-a-cache"),
    ("Valkey", "valkey-team-a-sessions"),
)

#: Used when `deploy/examples/` is not next to the code (an installed wheel).
BUILTIN_EXAMPLES: tuple[dict[str, object], ...] = (
    {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": "orders",
            "namespace": NAMESPACE,
            "labels": {"app": "orders", "team": NAMESPACE, "aiven.nais.io/secret-generation": "2"},
        },
        "spec": {
            "kafka": {"pool": MAIN_PROJECT, "secretName": "aiven-orders-kafka-2611273"},
            "openSearch": {
                "instance": "logs",
                "access": "readwrite",
                "secretName": "aiven-orders-opensearch-2611273",
            },
            "valkey": [
                {
                    "instance": "sessions",
                    "access": "readwrite",
                    "secretName": "aiven-orders-valkey-sessions-2611273",
                },
                {"instance": "cache", "secretName": "aiven-orders-valkey-cache-2611273"},
            ],
        },
    },
    {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": "myapp", "namespace": NAMESPACE, "labels": {"app": "myapp", "team": NAMESPACE}},
        "spec": {"kafka": {"pool": MAIN_PROJECT, "secretName": "aiven-myapp-kafka-2611271"}},
    },
)


class StepFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class Output:
    """Timestamped, thread-safe lines on a stream; keeps a copy so the demo can check itself."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.copy = io.StringIO()

    def line(self, text: str = "", stamp: bool = True) -> None:
        prefix = f"[{time.monotonic() - self._started:6.2f}s] " if stamp else ""
        with self._lock:
            for part in text.splitlines() or [""]:
                out = prefix + part + "\n"
                self._stream.write(out)
                self.copy.write(out)
            self._stream.flush()


@dataclass
class Snapshot:
    secrets: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict)
    apps: dict[tuple[str, str], tuple[str, object, object]] = field(default_factory=dict)
    users: set[tuple[str, str, str]] = field(default_factory=set)


def created_users(aiven: FakeAiven) -> set[tuple[str, str, str]]:
    """(project, service, user) of every non built-in user in the simulator."""
    found: set[tuple[str, str, str]] = set()
    for project, services in aiven.projects().items():
        for service in services:
            for name, user in aiven.users(project, service).items():
                if user.get("type") != "primary":
                    found.add((project, service, name))
    return found


class Watcher:
    """Polls the fake cluster and the simulator and prints one line per observed change."""

    def __init__(self, kube: FakeKubernetes, aiven: FakeAiven, out: Output, interval: float = 0.05) -> None:
        self.kube = kube
        self.aiven = aiven
        self.out = out
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watcher", daemon=True)
        self._last = Snapshot()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._last = self._snapshot()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
            self.flush()

    def flush(self) -> None:
        """Report whatever changed since the last poll (called between steps, too)."""
        with self._lock:
            now = self._snapshot()
            for text in self._diff(self._last, now):
                self.out.line("  event: " + text)
            self._last = now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def _snapshot(self) -> Snapshot:
        snap = Snapshot()
        for secret in self.kube.objects("Secret"):
            meta = secret["metadata"]
            if (meta.get("labels") or {}).get("type") != "aivenator.aiven.nais.io":
                continue
            key = (meta["namespace"], meta["name"])
            snap.secrets[key] = (str(meta.get("resourceVersion")), bool(meta.get("deletionTimestamp")))
        for app in self.kube.objects("AivenApplication"):
            meta = app["metadata"]
            status = app.get("status") or {}
            snap.apps[(meta["namespace"], meta["name"])] = (
                str(status.get("synchronizationState") or ""),
                meta.get("generation"),
                status.get("synchronizedGeneration"),
            )
        snap.users = created_users(self.aiven)
        return snap

    @staticmethod
    def _diff(old: Snapshot, new: Snapshot) -> Iterable[str]:
        for project, service, user in sorted(new.users - old.users):
            yield f"aiven user created    {project}/{service}/{user}"
        for project, service, user in sorted(old.users - new.users):
            yield f"aiven user deleted    {project}/{service}/{user}"
        for key, (rv, deleting) in sorted(new.secrets.items()):
            before = old.secrets.get(key)
            if before is None:
                yield f"secret created        {key[0]}/{key[1]}"
            elif deleting and not before[1]:
                yield f"secret terminating    {key[0]}/{key[1]} (finalizer at work)"
            elif before[0] != rv:
                yield f"secret updated        {key[0]}/{key[1]}"
        for key in sorted(set(old.secrets) - set(new.secrets)):
            yield f"secret deleted        {key[0]}/{key[1]}"
        for key, (state, generation, synced) in sorted(new.apps.items()):
            if old.apps.get(key) != (state, generation, synced):
                shown = state or "pending"
                yield (
                    f"application {key[0]}/{key[1]}: {shown} "
                    f"(generation {generation}, synchronized {synced if synced is not None else '-'})"
                )
        for key in sorted(set(old.apps) - set(new.apps)):
            yield f"application deleted   {key[0]}/{key[1]}"


def load_examples(directory: Path | None) -> tuple[list[dict[str, Any]], str]:
    """The example AivenApplications for namespace team-a, and where they came from."""
    folder = EXAMPLES_DIR if directory is None else directory
    apps: list[dict[str, Any]] = []
    if all((folder / name).is_file() for name in EXAMPLE_FILES):
        for name in EXAMPLE_FILES:
            for doc in yaml.safe_load_all((folder / name).read_text(encoding="utf-8")):
                if isinstance(doc, dict) and doc.get("kind") == "AivenApplication":
                    apps.append(doc)
        if apps:
            return [_prepare(app) for app in apps], str(folder)
    if directory is not None:
        raise StepFailed("apply", f"no AivenApplication examples in {directory}")
    return [_prepare(app) for app in BUILTIN_EXAMPLES], "built-in copies"


def _prepare(app: Mapping[str, object]) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(yaml.safe_dump(app))
    meta = body.setdefault("metadata", {})
    meta["namespace"] = NAMESPACE
    # The cluster owns generation; a value in a manifest is only documentation.
    meta.pop("generation", None)
    return body


def secret_names(app: dict[str, Any]) -> list[str]:
    spec = app.get("spec") or {}
    names = [
        str(section["secretName"])
        for section in (spec.get("kafka"), spec.get("openSearch"))
        if isinstance(section, dict) and section.get("secretName")
    ]
    names += [str(v["secretName"]) for v in spec.get("valkey") or [] if v.get("secretName")]
    return names


def service_users(secret: dict[str, Any]) -> list[str]:
    """The Aiven user names a Secret records (its `...serviceUser` annotations)."""
    annotations = secret["metadata"].get("annotations") or {}
    return sorted(str(v) for k, v in annotations.items() if k.endswith("/serviceUser"))


def masked(value: str) -> str:
    return f"*** ({len(base64.b64decode(value))} bytes)"


def _pod(name: str, secret: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": REDEPLOYED_APP}},
        "spec": {
            "containers": [
                {"name": "app", "image": "example/myapp:1", "envFrom": [{"secretRef": {"name": secret}}]}
            ]
        },
    }


class Demo:
    def __init__(self, stream: TextIO, timeout: float, workers: int, examples: Path | None, verbose: bool):
        self.out = Output(stream)
        self.timeout = timeout
        self.workers = workers
        self.examples = examples
        self.verbose = verbose
        self.token = "demo-" + _secrets.token_urlsafe(24)
        self.logs = io.StringIO()
        self.aiven = FakeAiven.with_default_seed(token=self.token)
        self.kube = FakeKubernetes(namespaces=(NAMESPACE,))
        self.server: FakeAivenServer | None = None
        self.container: Container | None = None
        self.operator: Operator | None = None
        self.watcher = Watcher(self.kube, self.aiven, self.out)
        self.apps: list[dict[str, Any]] = []
        #: Every credential value seen, to prove none reached the output.
        self.seen_values: dict[str, str] = {}
        self.steps_passed = 0

    # --- helpers ----------------------------------------------------------------------------------

    def wait_for(self, step: str, what: str, check: Callable[[], str | None]) -> None:
        """Poll `check` (None = satisfied, else the reason it is not) until the step timeout."""
        deadline = time.monotonic() + self.timeout
        reason: str | None = "not checked"
        while time.monotonic() < deadline:
            reason = check()
            if reason is None:
                return
            time.sleep(0.05)
        raise StepFailed(step, f"{what} not reached within {self.timeout:.0f} s: {reason}")

    def idle(self, step: str) -> None:
        assert self.operator is not None
        if not self.operator.wait_until_idle(timeout=self.timeout, settle=0.3):
            raise StepFailed(step, f"operator still busy after {self.timeout:.0f} s")

    def secret(self, name: str) -> dict[str, Any] | None:
        return self.kube.get("Secret", NAMESPACE, name)

    def begin(self, number: int, name: str, text: str) -> None:
        self.watcher.flush()
        self.out.line(f"step {number} {name}: {text}")

    def passed(self, name: str, detail: str) -> None:
        self.watcher.flush()
        self.steps_passed += 1
        self.out.line(f"  ok {name}: {detail}")

    def remember_values(self) -> None:
        """Collect every credential value (by key) of the managed Secrets seen so far."""
        for secret in self.kube.objects("Secret", NAMESPACE):
            for key, value in (secret.get("data") or {}).items():
                if _is_public(key):
                    continue
                self.seen_values[value] = key
                try:
                    text = base64.b64decode(value).decode()
                except UnicodeDecodeError:
                    continue
                self.seen_values[text] = key
                # PEM bodies: every line of the base64 body is itself secret material.
                for line in text.splitlines():
                    if len(line) >= 16 and not line.startswith("-----"):
                        self.seen_values[line] = key

    # --- the run ----------------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        step = "setup"
        try:
            step = "seed"
            self.step_seed()
            step = "apply"
            self.step_apply()
            step = "converge"
            self.step_converge()
            step = "show"
            self.step_show()
            step = "redeploy"
            old_secret, old_users = self.step_redeploy()
            step = "janitor-keeps-used"
            self.step_janitor_keeps(old_secret)
            step = "janitor-removes-unused"
            self.step_janitor_removes(old_secret)
            step = "finalizer"
            self.step_finalizer(old_secret, old_users)
            step = "no-leaks"
            self.step_no_leaks()
        except StepFailed as failed:
            self.out.line(f"FAILED step {failed.step}: {failed.reason}")
            return 1
        except Exception as exc:  # a crash is a failed step too, named as such
            self.out.line(f"FAILED step {step}: {type(exc).__name__}: {exc}")
            return 1
        finally:
            self.shutdown()
        self.out.line(f"demo passed: {self.steps_passed} steps in {time.monotonic() - started:.1f} s")
        return 0

    def start_operator(self) -> None:
        self.server = self.aiven.serve()
        config = OperatorConfig(
            aiven_token=self.token,
            aiven_api_url=self.server.base_url,
            projects=(MAIN_PROJECT, "nav-prod"),
            main_project=MAIN_PROJECT,
            workers=self.workers,
            janitor_grace_period=0.0,
            # The demo is short: nothing periodic should fire during it.
            sync_period=3600.0,
            janitor_interval=3600.0,
            # Loopback simulator: no need for the client-side budget to pace the demo.
            aiven_requests_per_second=1000.0,
            aiven_burst=1000,
        )
        registry = SecretRegistry()
        stream: Any = _Tee(self.logs, sys.stderr) if self.verbose else self.logs
        configure_logging("info", "text", stream=stream, registry=registry, secrets=(self.token,))
        container = build_container(config)
        override(container, kubernetes=self.kube, serve_http=False, watch_timeout=5.0)
        self.container = container
        self.operator = container.operator()
        self.operator.start(sync_timeout=self.timeout)
        if not self.operator.caches_synced():
            raise StepFailed("seed", "operator caches did not sync")

    def shutdown(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        if self.container is not None:
            self.container.aiven().close()
        self.watcher.stop()
        if self.server is not None:
            self.server.stop()
        structlog.reset_defaults()

    # --- steps ------------------------------------------------------------------------------------

    def step_seed(self) -> None:
        self.begin(1, "seed", "Aiven simulator on loopback HTTP, in-memory cluster, operator started")
        for kind, name in AIVEN_OBJECTS:
            self.kube.apply(
                {
                    "apiVersion": "aiven.io/v1alpha1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {},
                    "status": {"state": "RUNNING"},
                }
            )
            self.out.line(f"  {kind} {NAMESPACE}/{name} state RUNNING")
        for project, services in sorted(self.aiven.projects().items()):
            self.out.line(f"  aiven project {project}: services {', '.join(sorted(services))}")
        self.watcher.start()
        self.start_operator()
        assert self.server is not None
        self.passed("seed", f"operator running, Aiven API at {self.server.base_url}")

    def step_apply(self) -> None:
        self.apps, source = load_examples(self.examples)
        self.begin(2, "apply", f"{len(self.apps)} AivenApplications from {source}")
        for app in self.apps:
            self.kube.apply(app)
            self.out.line(
                f"  applied AivenApplication {NAMESPACE}/{app['metadata']['name']}: "
                f"Secrets {', '.join(secret_names(app))}"
            )
        self.passed("apply", "applications stored in the cluster")

    def check_converged(self, app_name: str, wanted: list[str]) -> str | None:
        app = self.kube.get("AivenApplication", NAMESPACE, app_name)
        if app is None:
            return f"{app_name} missing"
        status = app.get("status") or {}
        if status.get("synchronizationState") != "RolloutComplete":
            return f"{app_name} state {status.get('synchronizationState')!r}"
        if status.get("synchronizedGeneration") != app["metadata"].get("generation"):
            return f"{app_name} synchronized generation {status.get('synchronizedGeneration')}"
        for name in wanted:
            secret = self.secret(name)
            if secret is None:
                return f"Secret {name} missing"
            if FINALIZER not in (secret["metadata"].get("finalizers") or []):
                return f"Secret {name} has no finalizer"
            users = service_users(secret)
            if not users:
                return f"Secret {name} records no service user"
            known = {u for _, _, u in created_users(self.aiven)}
            missing = [u for u in users if u not in known]
            if missing:
                return f"Secret {name}: user {missing[0]} not in Aiven"
        return None

    def step_converge(self) -> None:
        self.begin(3, "converge", "waiting for every application to be RolloutComplete")
        for app in self.apps:
            name = app["metadata"]["name"]
            wanted = secret_names(app)
            self.wait_for("converge", f"{name} converged", _bind(self.check_converged, name, wanted))
        self.idle("converge")
        total = sum(len(secret_names(a)) for a in self.apps)
        self.passed("converge", f"{len(self.apps)} applications RolloutComplete, {total} Secrets written")

    def step_show(self) -> None:
        self.begin(4, "show", "the Secrets (values masked) and the Aiven users created")
        self.remember_values()
        for app in self.apps:
            for name in secret_names(app):
                secret = self.secret(name) or {}
                meta = ObjectMeta(secret)
                self.out.line(f"  Secret {NAMESPACE}/{name} (app {meta.labels.get('app')})", stamp=False)
                for key, value in sorted(meta.annotations.items()):
                    self.out.line(f"    annotation {key}={value}", stamp=False)
                for key, value in sorted((secret.get("data") or {}).items()):
                    self.out.line(f"    {key}: {masked(value)}", stamp=False)
        users = sorted(created_users(self.aiven))
        for project, service, user in users:
            self.out.line(f"  Aiven user {project}/{service}/{user}", stamp=False)
        if not users:
            raise StepFailed("show", "no Aiven users were created")
        self.passed("show", f"{len(users)} Aiven users")

    def step_redeploy(self) -> tuple[str, list[str]]:
        self.begin(5, "redeploy", f"deploy tooling rolls out {REDEPLOYED_APP} with a new secretName")
        app = next((a for a in self.apps if a["metadata"]["name"] == REDEPLOYED_APP), None)
        if app is None or "kafka" not in (app.get("spec") or {}):
            raise StepFailed("redeploy", f"the examples have no Kafka application {REDEPLOYED_APP}")
        old_secret = str(app["spec"]["kafka"]["secretName"])
        old = self.secret(old_secret)
        if old is None:
            raise StepFailed("redeploy", f"Secret {old_secret} missing before the redeploy")
        old_users = service_users(old)
        # The running Pod of the current rollout uses the current Secret.
        self.kube.apply(_pod(f"{REDEPLOYED_APP}-1", old_secret))
        self.out.line(f"  Pod {NAMESPACE}/{REDEPLOYED_APP}-1 uses Secret {old_secret}")
        assert self.operator is not None
        pods = self.operator.workloads["Pod"]
        # The Pod of the running rollout existed long before the redeploy in real life.
        self.wait_for(
            "redeploy",
            "Pod in the operator's cache",
            lambda: None if pods.get((NAMESPACE, f"{REDEPLOYED_APP}-1")) is not None else "not cached yet",
        )
        before = self.kube.get("AivenApplication", NAMESPACE, REDEPLOYED_APP) or {}
        generation = before["metadata"].get("generation")
        new_secret = f"{old_secret}-v2"
        app = yaml.safe_load(yaml.safe_dump(app))
        app["spec"]["kafka"]["secretName"] = new_secret
        labels = app["metadata"].setdefault("labels", {})
        labels["aiven.nais.io/secret-generation"] = str(
            int(labels.get("aiven.nais.io/secret-generation", "0")) + 1
        )
        self.apps = [app if a["metadata"]["name"] == REDEPLOYED_APP else a for a in self.apps]
        self.kube.apply(app)
        after = self.kube.get("AivenApplication", NAMESPACE, REDEPLOYED_APP) or {}
        self.out.line(
            f"  applied {REDEPLOYED_APP}: generation {generation} -> {after['metadata'].get('generation')}, "
            f"secretName {old_secret} -> {new_secret}"
        )
        if after["metadata"].get("generation") == generation:
            raise StepFailed("redeploy", "the generation did not change")
        self.wait_for(
            "redeploy",
            f"{REDEPLOYED_APP} converged",
            lambda: self.check_converged(REDEPLOYED_APP, [new_secret]),
        )
        new_users = service_users(self.secret(new_secret) or {"metadata": {}})
        if set(new_users) & set(old_users):
            raise StepFailed("redeploy", "the new generation reused the old user name")
        self.remember_values()
        self.passed("redeploy", f"new Secret {new_secret}, new user {', '.join(new_users)}")
        return old_secret, old_users

    def step_janitor_keeps(self, old_secret: str) -> None:
        self.begin(6, "janitor-keeps-used", f"the janitor ran after the change; Pod still uses {old_secret}")
        self.idle("janitor-keeps-used")
        old = self.secret(old_secret)
        if old is None or old["metadata"].get("deletionTimestamp"):
            raise StepFailed("janitor-keeps-used", f"Secret {old_secret} was deleted while a Pod used it")
        self.passed("janitor-keeps-used", f"Secret {old_secret} kept (referenced by Pod {REDEPLOYED_APP}-1)")

    def step_janitor_removes(self, old_secret: str) -> None:
        assert self.operator is not None
        operator = self.operator
        app = next(a for a in self.apps if a["metadata"]["name"] == REDEPLOYED_APP)
        new_secret = str(app["spec"]["kafka"]["secretName"])
        self.begin(7, "janitor-removes-unused", "rollout finishes: the new Pod replaces the old one")
        self.kube.apply(_pod(f"{REDEPLOYED_APP}-2", new_secret))
        self.kube.delete("Pod", NAMESPACE, f"{REDEPLOYED_APP}-1")
        self.out.line(f"  Pod {REDEPLOYED_APP}-1 deleted, Pod {REDEPLOYED_APP}-2 uses {new_secret}")
        pods = operator.workloads["Pod"]
        self.wait_for(
            "janitor-removes-unused",
            "Pod cache up to date",
            lambda: (
                None
                if pods.get((NAMESPACE, f"{REDEPLOYED_APP}-1")) is None
                and pods.get((NAMESPACE, f"{REDEPLOYED_APP}-2")) is not None
                else "old Pod still cached"
            ),
        )
        self.out.line(f"  janitor pass for namespace {NAMESPACE} (grace period 0)")
        operator.queue.add(("janitor", NAMESPACE, ""))
        self.wait_for(
            "janitor-removes-unused",
            f"Secret {old_secret} deleted",
            lambda: (
                None
                if (self.secret(old_secret) or {}).get("metadata", {}).get("deletionTimestamp")
                or self.secret(old_secret) is None
                else "still there"
            ),
        )
        self.idle("janitor-removes-unused")
        for app in self.apps:
            for name in secret_names(app):
                if self.secret(name) is None:
                    raise StepFailed(
                        "janitor-removes-unused", f"the janitor deleted Secret {name}, which is in use"
                    )
        self.passed("janitor-removes-unused", f"unused Secret {old_secret} deleted, every used Secret kept")

    def step_finalizer(self, old_secret: str, old_users: list[str]) -> None:
        self.begin(8, "finalizer", f"the finalizer deletes {', '.join(old_users)} in Aiven")
        self.wait_for(
            "finalizer",
            f"Secret {old_secret} gone",
            lambda: None if self.secret(old_secret) is None else "finalizer not released",
        )
        known = {u for _, _, u in created_users(self.aiven)}
        still = [u for u in old_users if u in known]
        if still:
            raise StepFailed("finalizer", f"Aiven user {still[0]} still exists")
        for app in self.apps:
            if self.check_converged(app["metadata"]["name"], secret_names(app)) is not None:
                raise StepFailed("finalizer", f"{app['metadata']['name']} lost its credentials")
        self.passed("finalizer", f"user {', '.join(old_users)} deleted, finalizer released, Secret gone")

    def step_no_leaks(self) -> None:
        self.begin(9, "no-leaks", "no credential value in the output or the operator's logs")
        self.remember_values()
        values = {v: k for v, k in self.seen_values.items() if len(v) >= 8}
        values[self.token] = "the Aiven token"
        for where, text in (("output", self.out.copy.getvalue()), ("logs", self.logs.getvalue())):
            leaked = sorted({key for value, key in values.items() if value in text})
            if leaked:
                raise StepFailed("no-leaks", f"a value of {', '.join(leaked)} appears in the {where}")
        self.passed("no-leaks", f"{len(values)} credential values checked against output and logs")


def _is_public(key: str) -> bool:
    """Connection facts and user names are not credentials (the demo prints user names)."""
    if "PASSWORD" in key or "PRIVATE" in key or key.endswith((".p12", ".jks")):
        return False
    return any(p in key for p in ("HOST", "PORT", "URI", "BROKERS", "SCHEMA_REGISTRY", "UPDATED", "USER"))


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


def _bind(
    check: Callable[[str, list[str]], str | None], name: str, wanted: list[str]
) -> Callable[[], str | None]:
    return lambda: check(name, wanted)


def run_demo(
    stream: TextIO,
    timeout: float = 15.0,
    workers: int = 4,
    examples: Path | None = None,
    verbose: bool = False,
) -> int:
    return Demo(stream, timeout, workers, examples, verbose).run()
