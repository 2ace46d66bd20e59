"""`make bench-scale`: the operator in its own process at 10k applications, real kube-apiserver.

    python -m benchmarks.scale [--apps 10000] [--pods-per-app 3] [--operator PATH]

`make bench-scale` first installs the operator as the image does (hack/dry-build.sh: the wheel and
requirements.lock into a fresh venv under out/runtime) and runs that `aivenator` as the operator
(`--operator`), so the memory measured is the shipped install's, not the dev venv's.

Starts etcd + kube-apiserver from the real-apiserver test tier (tests/integration/real_apiserver.py,
binaries from hack/kube-test-assets.sh), the Aiven simulator as its own process
(`aivenator fake-aiven`), and `aivenator run` as its own process under the operator's RBAC
token, logging at info in JSON to out/bench-scale-operator.log. It creates N AivenApplications
and 3N Pods (never scheduled: no scheduler runs) that mount the Secrets, with concurrent requests;
the operator converges them, writing N managed Secrets. Convergence is read from the operator's
own /metrics (its RolloutComplete counter: O(1) per poll). CPU is the operator's utime + stime
from /proc/<pid>/stat at convergence. The operator's periodic work runs at shorter periods than
its defaults (orphan sweep and janitor every 3 minutes, full resync every 4; defaults 10m, 10m,
1h): the first of each comes after the cold start, as with the defaults. After convergence the
operator runs on until 15 s after its second orphan sweep, its VmRSS (/proc/<pid>/status) is
sampled every second, and `rss_mib` is the highest sample: the memory of a sweep, a janitor pass
and a resync counts. Writes rss_mib_10k into out/bench.json (other fields kept) and exits 1
above 150 MiB or when the window did not hold two sweeps and a resync.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.real_apiserver import RealApiserver, find_assets, running_apiserver  # noqa: E402

OUT = REPO / "out"
NAMESPACE = "bench"
PROJECT = "dev-nais-dev"
RSS_TARGET_MIB = 150.0
#: Periods of the operator's periodic work in this run (defaults: 10m, 10m, 1h): long enough that
#: the first of each comes after the cold start, as it does with the defaults, short enough that
#: the window after convergence holds two sweeps, two janitor passes and a full resync.
SWEEP_PERIOD_S = 180.0
RESYNC_PERIOD_S = 240.0
#: The window ends this long after the second sweep that started after convergence.
SETTLE_S = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app(i: int) -> dict[str, Any]:
    name = f"app-{i:05d}"
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name, "team": NAMESPACE}},
        "spec": {"kafka": {"pool": PROJECT, "secretName": f"{name}-kafka"}},
    }


def _pod(i: int, app: int) -> dict[str, Any]:
    secret = f"app-{app:05d}-kafka"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pod-{i:06d}", "namespace": NAMESPACE, "labels": {"app": f"app-{app:05d}"}},
        "spec": {
            "automountServiceAccountToken": False,
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


def create_all(
    server: RealApiserver, items: list[tuple[str, dict[str, Any]]], threads: int = 24, method: str = "POST"
) -> float:
    """POST (or merge-PATCH) every (path, body) with `threads` concurrent clients; returns seconds."""
    started = time.monotonic()
    local = threading_local()

    def client() -> httpx.Client:
        c = getattr(local, "client", None)
        if c is None:
            c = httpx.Client(
                base_url=server.host,
                verify=str(server.ca_file),
                headers={"Authorization": f"Bearer {server.admin_token}"},
                timeout=60.0,
            )
            local.client = c
        return c

    def post(item: tuple[str, dict[str, Any]]) -> None:
        path, body = item
        for attempt in range(5):
            if method == "PATCH":
                response = client().patch(
                    path, json=body, headers={"Content-Type": "application/merge-patch+json"}
                )
            else:
                response = client().post(path, json=body)
            if response.status_code in (200, 201, 409):
                return
            if response.status_code in (429, 500, 503, 504):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        raise RuntimeError(f"{method} {path}: gave up")

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(post, items, chunksize=64):
            pass
    return time.monotonic() - started


def threading_local() -> Any:
    import threading

    return threading.local()


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def metric(url: str, name: str, labels: str = "") -> float:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+]+)$", re.MULTILINE)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def start_operator(
    aivenator: str, server: RealApiserver, url: str, token: str, metrics_port: int, log_name: str
) -> subprocess.Popen[str]:
    log_file = (OUT / log_name).open("w", encoding="utf-8")
    return subprocess.Popen(
        [
            aivenator,
            "run",
            "--kubeconfig",
            str(server.kubeconfig_operator),
            "--aiven-api-url",
            url,
            "--projects",
            PROJECT,
            "--main-project",
            PROJECT,
            "--metrics-address",
            f"127.0.0.1:{metrics_port}",
            "--log-format",
            "json",
            "--log-level",
            "info",
            # The periodic work runs during the measurement, each pass over all 10k apps: the
            # orphan sweep (reads every service's users), the janitor and the full resync.
            "--orphan-sweep-interval",
            f"{SWEEP_PERIOD_S:g}s",
            "--janitor-interval",
            f"{SWEEP_PERIOD_S:g}s",
            "--sync-period",
            f"{RESYNC_PERIOD_S:g}s",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, AIVENATOR_AIVEN_TOKEN=token),
        start_new_session=True,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def sweeps(url: str) -> float:
    """Orphan sweeps the operator has run to the end (its own counter)."""
    return metric(url, "aivenator_orphan_sweeps_total", '{outcome="swept"}')


def sample_rss(
    proc: subprocess.Popen[str], metrics_url: str, *, until_sweeps: float, settle: float, timeout: float
) -> list[float]:
    """The operator's VmRSS in MiB, once a second, until `settle` seconds after its orphan sweeps
    counter reaches `until_sweeps` (or `timeout`)."""
    samples: list[float] = []
    started = time.monotonic()
    reached: float | None = None
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"operator exited with {proc.returncode}; see its log under out/")
        samples.append(round(proc_status(proc.pid)["VmRSS"] / 1024, 1))
        if reached is None and sweeps(metrics_url) >= until_sweeps:
            reached = time.monotonic()
        if reached is not None and time.monotonic() - reached >= settle:
            break
        time.sleep(1.0)
    return samples


def resyncs_logged(log_name: str) -> int:
    """Periodic resyncs the operator logged (`periodic_resync`) so far."""
    return sum(1 for line in (OUT / log_name).open(encoding="utf-8") if '"periodic_resync"' in line)


def wait_metric(
    proc: subprocess.Popen[str], url: str, name: str, labels: str, at_least: float, timeout: float
) -> float:
    """Poll one counter of the operator's /metrics (O(1) per poll) until it reaches `at_least`."""
    started = time.monotonic()
    value = 0.0
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"operator exited with {proc.returncode}; see its log under out/")
        try:
            value = metric(url, name, labels)
        except OSError:
            value = 0.0
        if value >= at_least:
            break
        time.sleep(1.0)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--pods-per-app", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the operator")
    parser.add_argument(
        "--operator",
        default=str(Path(sys.executable).with_name("aivenator")),
        help="the aivenator executable to run as the operator; `make bench-scale` gives the one "
        "installed as the image installs it (wheel + requirements.lock, no dev tools)",
    )
    args = parser.parse_args(argv)
    # A SIGTERM ends the run through `finally`, so no apiserver, simulator or operator is left.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    OUT.mkdir(exist_ok=True)
    aivenator = str(Path(sys.executable).with_name("aivenator"))
    figures: dict[str, Any] = {
        "apps": args.apps,
        "pods": args.apps * args.pods_per_app,
        "operator": args.operator,
    }
    procs: list[subprocess.Popen[str]] = []
    try:
        with running_apiserver(find_assets()) as server:
            fake = subprocess.Popen(
                [aivenator, "fake-aiven", "--port", str(_free_port())],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            procs.append(fake)
            assert fake.stdout is not None
            url = token = ""
            for line in fake.stdout:
                if line.startswith("AIVEN_WEB_URL="):
                    url = line.strip().split("=", 1)[1]
                if line.startswith("AIVEN_TOKEN="):
                    token = line.strip().split("=", 1)[1]
                if url and token:
                    break
            admin = httpx.Client(
                base_url=server.host,
                verify=str(server.ca_file),
                headers={"Authorization": f"Bearer {server.admin_token}"},
                timeout=60.0,
            )
            admin.post(
                "/api/v1/namespaces",
                json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            )
            # No controller-manager runs: the namespace's default ServiceAccount is made here.
            admin.post(
                f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
                json={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            )
            apps_path = f"/apis/aiven.nais.io/v1/namespaces/{NAMESPACE}/aivenapplications"

            metrics_port = _free_port()
            metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
            apps = [(apps_path, _app(i)) for i in range(args.apps)]
            pods = [
                (f"/api/v1/namespaces/{NAMESPACE}/pods", _pod(i, i % args.apps))
                for i in range(args.apps * args.pods_per_app)
            ]
            figures["create_apps_s"] = round(create_all(server, apps), 1)
            figures["create_pods_s"] = round(create_all(server, pods), 1)
            print(
                f"scale: {args.apps} applications ({figures['create_apps_s']} s) and {len(pods)} Pods "
                f"({figures['create_pods_s']} s) created"
            )

            # The operator converges every application from cold, writing the N managed Secrets.
            operator = start_operator(
                args.operator, server, url, token, metrics_port, "bench-scale-operator.log"
            )
            procs.append(operator)
            started = time.monotonic()
            done = wait_metric(
                operator,
                metrics_url,
                "aivenator_aiven_applications_processed",
                '{synchronization_state="RolloutComplete"}',
                args.apps,
                args.timeout,
            )
            figures["converged"] = done
            figures["converge_s"] = round(time.monotonic() - started, 1)
            time.sleep(5.0)  # let in-flight work and the caches settle
            figures["operator_cpu_s"] = round(proc_cpu_s(operator.pid), 1)
            figures["cpu_ms_per_app"] = round(figures["operator_cpu_s"] / args.apps * 1000, 2)
            figures["rss_mib_converged"] = round(proc_status(operator.pid)["VmRSS"] / 1024, 1)
            # Then the operator runs on: RSS is sampled every second through two sweeps, janitor
            # passes and a full resync, and the figure is the highest sample, not a quiet moment.
            sweeps_before = sweeps(metrics_url)
            resyncs_before = resyncs_logged("bench-scale-operator.log")
            samples = sample_rss(
                operator,
                metrics_url,
                until_sweeps=sweeps_before + 2,
                settle=SETTLE_S,
                timeout=3 * SWEEP_PERIOD_S + 60,
            )
            figures["sweeps_in_window"] = sweeps(metrics_url) - sweeps_before
            figures["resyncs_in_window"] = resyncs_logged("bench-scale-operator.log") - resyncs_before
            figures["rss_mib_samples"] = samples
            figures["rss_mib"] = max(samples)
            figures["rss_mib_end"] = samples[-1]
            figures["hwm_mib"] = round(proc_status(operator.pid)["VmHWM"] / 1024, 1)
            figures["secret_writes"] = metric(
                metrics_url,
                "aivenator_kubernetes_resources_written",
                f'{{namespace="{NAMESPACE}",resource_type="Secret"}}',
            )
    finally:
        for proc in reversed(procs):
            stop(proc)
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_mib_samples"}, indent=2))
    print("RSS every second after convergence (MiB):", figures.get("rss_mib_samples"))
    bench = OUT / "bench.json"
    result: dict[str, Any] = json.loads(bench.read_text()) if bench.exists() else {}
    result["rss_mib_10k"] = figures.get("rss_mib") if args.apps >= 10_000 else None
    result["scale"] = figures
    bench.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    missed = []
    if figures.get("converged", 0) < args.apps:
        missed.append(f"the operator converged {figures.get('converged')} of {args.apps} applications")
    if figures.get("sweeps_in_window", 0) < 2 or figures.get("resyncs_in_window", 0) < 1:
        missed.append(
            f"the RSS window held {figures.get('sweeps_in_window')} orphan sweeps and "
            f"{figures.get('resyncs_in_window')} resyncs (want 2 and 1)"
        )
    if figures.get("rss_mib", 1e9) > RSS_TARGET_MIB:
        missed.append(f"operator RSS {figures.get('rss_mib')} MiB (target <= {RSS_TARGET_MIB})")
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
