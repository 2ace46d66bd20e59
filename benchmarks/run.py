"""`make bench`: figures for the operator on the in-memory cluster and the Aiven simulator.

    python -m benchmarks.run [--apps 500] [--latency-ms 50] [--workers N] [--transport http|mock] [--quick]

(a) cold convergence of N Kafka applications: wall time, Aiven requests per application, and the
    ratio of wall time to the bound `apps * requests_per_app * latency / workers` (1.0 would mean
    the workers spend all their time waiting for Aiven, nothing else);
(b) a full resync of the same converged applications: Aiven requests and Kubernetes writes
    (both must be 0; the run exits 1 otherwise);
(c) peak RSS of an operator process (a subprocess, `ru_maxrss`) holding 10,000 managed Secrets,
    10,000 applications and 30,000 Pods in its caches, next to the RSS of a bare interpreter and
    of the same process with only the in-memory cluster filled (the fake cluster lives in the same
    process, so the operator's share is the difference).

The real operator code runs (container, informers, work queue, reconciler) with the real httpx
Aiven adapter; by default it talks to `FakeAiven.serve()` over loopback HTTP, and the simulator
delays every request by `--latency-ms`. The client-side Aiven request budget (default 10/s) is
lifted so that the figures measure the operator rather than the budget; the printed line says
what the default budget alone would cost.

These are figures, not a timed test: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer  # noqa: E402
from aivenator.adapters.fakes.kubernetes import FakeKubernetes  # noqa: E402
from aivenator.adapters.redaction import SecretRegistry  # noqa: E402
from aivenator.domain.parse import spec_hash  # noqa: E402
from aivenator.entrypoints.config import OperatorConfig  # noqa: E402
from aivenator.entrypoints.container import Container, build_container  # noqa: E402
from aivenator.entrypoints.runtime.logging_setup import configure_logging  # noqa: E402
from aivenator.entrypoints.runtime.operator import Operator  # noqa: E402
from dependency_injector import providers  # noqa: E402

NAMESPACE = "bench"
PROJECT = "dev-nais-dev"
TOKEN = "bench-token-0123456789abcdef"
DEFAULT_WORKERS = OperatorConfig(aiven_token="x").workers
DEFAULT_BUDGET = OperatorConfig(aiven_token="x").aiven_requests_per_second


def kafka_app(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": name, "team": NAMESPACE, "aiven.nais.io/secret-generation": "1"},
        },
        "spec": {"kafka": {"pool": PROJECT, "secretName": f"{name}-kafka"}},
    }


@dataclass
class Rig:
    kube: FakeKubernetes
    aiven: FakeAiven
    server: FakeAivenServer | None
    container: Container
    operator: Operator

    def stop(self) -> None:
        self.operator.stop()
        self.container.aiven().close()
        if self.server is not None:
            self.server.stop()


def build_rig(workers: int, transport: str, kube: FakeKubernetes | None = None) -> Rig:
    aiven = FakeAiven.with_default_seed(token=TOKEN)
    kube = kube if kube is not None else FakeKubernetes(namespaces=(NAMESPACE,))
    server = aiven.serve() if transport == "http" else None
    config = OperatorConfig(
        aiven_token=TOKEN,
        aiven_api_url=server.base_url if server is not None else "https://api.aiven.io",
        projects=(PROJECT,),
        main_project=PROJECT,
        workers=workers,
        janitor_grace_period=0.0,
        sync_period=3600.0,
        janitor_interval=3600.0,
        aiven_requests_per_second=1_000_000.0,
        aiven_burst=1_000_000,
    )
    container = build_container(config)
    container.kubernetes.override(providers.Object(kube))
    if server is None:
        container.aiven_transport.override(providers.Object(aiven.mock_transport()))
    container.serve_http.override(providers.Object(False))
    container.watch_timeout.override(providers.Object(30.0))
    return Rig(kube, aiven, server, container, container.operator())


def converged(kube: FakeKubernetes, count: int) -> int:
    done = 0
    for app in kube.objects("AivenApplication", NAMESPACE):
        status = app.get("status") or {}
        if status.get("synchronizationState") == "RolloutComplete" and status.get(
            "synchronizedGeneration"
        ) == app["metadata"].get("generation"):
            done += 1
    return done


def wait(predicate: Callable[[], bool], timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def bench_convergence(apps: int, latency_ms: float, workers: int, transport: str) -> bool:
    rig = build_rig(workers, transport)
    ok = True
    try:
        if latency_ms > 0:
            rig.aiven.faults.latency(latency_ms)
        rig.operator.start(sync_timeout=30.0)
        names = [f"app-{i:05d}" for i in range(apps)]
        aiven_before = len(rig.aiven.request_log)
        started = time.monotonic()
        for name in names:
            rig.kube.apply(kafka_app(name))
        timeout = max(120.0, apps * 2.0)
        if not wait(lambda: converged(rig.kube, apps) == apps, timeout, poll=0.1):
            print(
                f"(a) FAILED: only {converged(rig.kube, apps)} of {apps} applications converged in {timeout:.0f} s"
            )
            return False
        wall = time.monotonic() - started
        rig.operator.wait_until_idle(timeout=60.0, settle=0.3)
        requests = len(rig.aiven.request_log) - aiven_before
        per_app = requests / apps
        bound = apps * per_app * (latency_ms / 1000.0) / workers
        print(
            f"(a) cold convergence: {apps} applications, {workers} workers, wall {wall:.2f} s "
            f"({apps / wall:.1f} apps/s)"
        )
        print(f"    Aiven requests per application: {per_app:.2f} ({requests} in total)")
        by_kind: dict[str, int] = {}
        for req in rig.aiven.request_log[aiven_before:]:
            kind = req.method + " " + _route(req.path)
            by_kind[kind] = by_kind.get(kind, 0) + 1
        for kind, n in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            print(f"      {n:6d}  {kind}")
        if bound > 0:
            print(
                f"    bound apps*requests_per_app*{latency_ms:g}ms/workers = {bound:.2f} s; "
                f"wall/bound = {wall / bound:.2f}"
            )
        else:
            print("    bound: 0 (no injected latency); wall/bound not defined")
        print(
            f"    (client-side budget lifted; at the default {DEFAULT_BUDGET:g} requests/s the "
            f"{requests} requests alone would take >= {requests / DEFAULT_BUDGET:.0f} s)"
        )

        # (b) full resync of the converged applications.
        aiven_before = len(rig.aiven.request_log)
        writes_before = rig.kube.write_count()
        processed_before = _processed(rig.operator)
        started = time.monotonic()
        enqueued = rig.operator.resync()
        rig.operator.wait_until_idle(timeout=120.0, settle=0.3)
        resync_wall = time.monotonic() - started
        aiven_requests = len(rig.aiven.request_log) - aiven_before
        kube_writes = rig.kube.write_count() - writes_before
        reconciled = _processed(rig.operator) - processed_before
        print(
            f"(b) resync: Aiven requests {aiven_requests}, Kubernetes writes {kube_writes} "
            f"({enqueued} applications re-enqueued, wall {resync_wall:.2f} s incl. 0.3 s settle)"
        )
        if aiven_requests or kube_writes:
            print("    FAILED: a steady-state resync must cost nothing")
            ok = False
        if enqueued != apps or reconciled < 0:
            print(f"    FAILED: resync enqueued {enqueued} of {apps} applications")
            ok = False
    finally:
        rig.stop()
    return ok


def _route(path: str) -> str:
    """The request path with user names and ACL ids replaced, for grouping."""
    parts = path.strip("/").split("/")
    return "/" + "/".join(
        "{name}" if i > 0 and parts[i - 1] in ("user", "acl") else p for i, p in enumerate(parts)
    )


def _processed(operator: Operator) -> float:
    try:
        return float(
            operator.metrics.value(
                "aivenator_aiven_applications_processed", {"synchronization_state": "RolloutComplete"}
            )
        )
    except Exception:
        return 0.0


# --- (c) memory ---------------------------------------------------------------------------------


def _rss_now_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _hwm_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _peak_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _template(workers: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One converged Kafka app and its Secret, from the real operator (cloned below)."""
    rig = build_rig(workers, "mock")
    try:
        rig.operator.start(sync_timeout=30.0)
        rig.kube.apply(kafka_app("template"))
        if not wait(lambda: converged(rig.kube, 1) == 1, 60.0):
            raise RuntimeError("template application did not converge")
        rig.operator.wait_until_idle(timeout=30.0, settle=0.2)
        app = rig.kube.get("AivenApplication", NAMESPACE, "template")
        secret = rig.kube.get("Secret", NAMESPACE, "template-kafka")
        assert app is not None and secret is not None
        return app, secret
    finally:
        rig.stop()


def _clone(app: dict[str, Any], secret: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    new_app = json.loads(json.dumps(app))
    meta = new_app["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        meta.pop(key, None)
    meta["name"] = name
    meta["labels"]["app"] = name
    new_app["spec"]["kafka"]["secretName"] = f"{name}-kafka"
    new_app["status"]["synchronizationHash"] = spec_hash(new_app["spec"])
    new_secret = json.loads(json.dumps(secret))
    smeta = new_secret["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp"):
        smeta.pop(key, None)
    smeta["name"] = f"{name}-kafka"
    smeta["labels"]["app"] = name
    return new_app, new_secret


def _pod(i: int, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i:06d}", "namespace": NAMESPACE, "labels": {"app": "bench"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "example/app:1",
                    "envFrom": [{"secretRef": {"name": secret}}],
                    "volumeMounts": [{"name": "creds", "mountPath": "/var/run/creds"}],
                }
            ],
            "volumes": [{"name": "creds", "secret": {"secretName": secret}}],
        },
    }


def memory_child(secrets: int, apps: int, pods: int, workers: int) -> dict[str, Any]:
    """Runs in the subprocess: fill the fake cluster, run the operator over it, report RSS."""
    figures: dict[str, Any] = {"after_imports_kib": _rss_now_kib()}
    app, secret = _template(workers)
    kube = FakeKubernetes(namespaces=(NAMESPACE,), history=1000)
    for i in range(max(secrets, apps)):
        new_app, new_secret = _clone(app, secret, f"app-{i:05d}")
        if i < apps:
            kube.apply(new_app)
        if i < secrets:
            kube.apply(new_secret)
    for i in range(pods):
        kube.apply(_pod(i, f"app-{i % max(secrets, 1):05d}-kafka"))
    figures["fake_cluster_filled_kib"] = _rss_now_kib()
    figures["peak_before_operator_kib"] = _peak_kib()
    rig = build_rig(workers, "mock", kube=kube)
    try:
        aiven_before = len(rig.aiven.request_log)
        writes_before = kube.write_count()
        started = time.monotonic()
        rig.operator.start(sync_timeout=300.0)
        figures["caches_synced_s"] = time.monotonic() - started
        rig.operator.resync()
        rig.operator.wait_until_idle(timeout=600.0, settle=0.5)
        figures["resync_s"] = time.monotonic() - started - figures["caches_synced_s"]
        rig.operator.janitor.run(None)
        figures["cached"] = {
            "applications": len(rig.operator.apps),
            "secrets": len(rig.operator.secrets),
            "workloads": sum(len(i) for i in rig.operator.workloads.values()),
        }
        figures["aiven_requests"] = len(rig.aiven.request_log) - aiven_before
        figures["kube_writes"] = kube.write_count() - writes_before
        figures["with_operator_kib"] = _rss_now_kib()
        figures["peak_kib"] = _peak_kib()
        figures["vm_hwm_kib"] = _hwm_kib()
    finally:
        rig.stop()
    return figures


def _clean(argv: list[str]) -> list[str]:
    """Start `argv` from a small shell that forks it.

    On Linux a process keeps the ru_maxrss of the image it replaced at exec; spawned directly
    from this (large) process, the child's ru_maxrss would start at our RSS. A shell in between
    forks the child from its own small image, so the child's ru_maxrss is its own.
    """
    return ["/bin/sh", "-c", shlex.join(argv) + "; exit $?"]


def bench_memory(secrets: int, apps: int, pods: int, workers: int) -> bool:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    bare = subprocess.run(
        _clean(
            [
                sys.executable,
                "-c",
                "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ]
        ),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    baseline_kib = int(bare.stdout.strip())
    child = subprocess.run(
        _clean(
            [
                sys.executable,
                "-m",
                "benchmarks.run",
                "--memory-child",
                f"{secrets},{apps},{pods}",
                "--workers",
                str(workers),
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO,
        timeout=1800,
    )
    if child.returncode != 0:
        print(f"(c) FAILED: memory subprocess exit {child.returncode}: {child.stderr[-2000:]}")
        return False
    figures = json.loads(child.stdout.strip().splitlines()[-1])

    def mib(kib: int) -> str:
        return f"{kib / 1024:.1f}"

    operator_share = figures["peak_kib"] - figures["fake_cluster_filled_kib"]
    print(
        f"(c) memory with {secrets} managed Secrets, {apps} applications, {pods} Pods "
        f"(cached: {figures['cached']['secrets']} Secrets, {figures['cached']['applications']} apps, "
        f"{figures['cached']['workloads']} workload refs)"
    )
    print(
        f"    peak RSS: baseline interpreter {mib(baseline_kib)} MiB, operator {mib(figures['peak_kib'])} MiB "
        f"(ru_maxrss of the operator process; VmHWM {mib(figures['vm_hwm_kib'])} MiB)"
    )
    print(
        f"    RSS after imports {mib(figures['after_imports_kib'])} MiB, with the fake cluster filled "
        f"{mib(figures['fake_cluster_filled_kib'])} MiB, with the operator synced "
        f"{mib(figures['with_operator_kib'])} MiB; operator share of the peak ~{mib(operator_share)} MiB"
    )
    print(
        f"    caches synced in {figures['caches_synced_s']:.1f} s, steady-state resync in "
        f"{figures['resync_s']:.1f} s with {figures['aiven_requests']} Aiven requests and "
        f"{figures['kube_writes']} Kubernetes writes"
    )
    return True


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--apps", type=int, default=None, help="applications for (a)/(b) (default 500, quick 50)"
    )
    parser.add_argument("--latency-ms", type=float, default=50.0, help="injected latency per Aiven request")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="reconcile workers (default: operator default)"
    )
    parser.add_argument(
        "--transport",
        choices=("http", "mock"),
        default="http",
        help="http: simulator on loopback HTTP (default); mock: httpx MockTransport in process",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 apps, memory test at 1/10 scale")
    parser.add_argument("--skip-memory", action="store_true", help="skip (c)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging("error", "text", stream=io.StringIO(), registry=SecretRegistry(), secrets=(TOKEN,))

    if args.memory_child:
        secrets, apps, pods = (int(x) for x in args.memory_child.split(","))
        print(json.dumps(memory_child(secrets, apps, pods, args.workers)))
        return 0

    apps = args.apps if args.apps is not None else (50 if args.quick else 500)
    scale = 10 if args.quick else 1
    print(
        f"aivenator benchmark: Aiven simulator over "
        f"{'loopback HTTP' if args.transport == 'http' else 'httpx MockTransport'}, "
        f"{args.latency_ms:g} ms injected latency per Aiven request, in-memory cluster, "
        f"{args.workers} workers, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    ok = bench_convergence(apps, args.latency_ms, args.workers, args.transport)
    if not args.skip_memory:
        ok = bench_memory(10_000 // scale, 10_000 // scale, 30_000 // scale, args.workers) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
