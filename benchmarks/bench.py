"""`make bench`: the operator's performance against the issue's fixed targets; writes out/bench.json.

    python -m benchmarks.bench [--profile] [--skip-adaptive] [--skip-5000]

Parts (each writes its fields; a part not run leaves its fields null):

cold      500 Kafka applications created before the operator starts, 4 workers, the Aiven
          simulator in its own process (`aivenator fake-aiven`) over loopback HTTP answering each
          request 50 ms after it arrived (`--response-time-ms 50`: its own processing, which runs
          under one lock, is inside the 50 ms; the client sees about 52 ms with loopback HTTP);
          Aiven requests are counted by the operator's client. The bound is fixed, not derived
          from what was measured: ceil(N / workers) x 1 request x latency. Convergence is polled
          in O(1) (the operator's RolloutComplete counter), then checked once in full.
cpu       process CPU seconds for the operator to converge 500 and 5,000 applications (0 ms
          latency; the simulator as an in-process MockTransport and the in-memory cluster, whose
          CPU is included), stepping the real operator in one thread (`Operator.drain`), so the
          figure is CPU per application with no waiting. Each size runs twice, interleaved,
          and each figure is the lower of its two runs (identical runs differ by up to 60 % on
          a shared 2-core machine). `--profile` (one run each) saves the cProfile top of each
          run under out/.
steady    500 converged applications; the operator's own periodic resync timer (sync period
          10 s) re-examines every application; the Aiven requests and Kubernetes writes of that
          pass must be 0, and the pass must happen (it fails if the timer never fires).
adaptive  the hidden server-side limit of the simulator at 20 requests/s, then at 5 requests/s
          (the `adaptive_low_*` fields: finding a limit far below the ceiling costs the most
          429s); the client starts at a ceiling of 100/s (benchmarks/adaptive.py).

Logging is at info, JSON, into out/bench-operator.log (as in production, not discarded). The
run exits 1 when a target is missed. rss_mib_10k comes from `make bench-scale`
(benchmarks/scale.py) and is null here.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aivenator.adapters.aiven_http import AivenHttp
from aivenator.adapters.fakes.aiven import FakeAiven
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.redaction import SecretRegistry
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.container import build_container
from aivenator.entrypoints.runtime.logging_setup import configure_logging
from aivenator.entrypoints.runtime.operator import Operator
from dependency_injector import providers

from benchmarks import adaptive

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out"
NAMESPACE = "bench"
PROJECT = "dev-nais-dev"
TOKEN = "bench-token-0123456789abcdef"

#: The issue's targets (fixed; never derived from a measurement).
TARGETS: dict[str, tuple[str, float | bool]] = {
    "cold_ratio": ("<=", 1.15),
    "aiven_requests_per_app": ("<=", 1.05),
    "cpu_ratio_5000_to_500": ("<=", 1.2),
    "cpu_5000_complete": ("==", True),
    "steady_aiven_requests": ("<=", 0),
    "steady_kube_writes": ("<=", 0),
    "adaptive_throughput_fraction": (">=", 0.8),
    "adaptive_429_fraction": ("<=", 0.05),
    "adaptive_low_throughput_fraction": (">=", 0.8),
    "adaptive_low_429_fraction": ("<=", 0.05),
    "rss_mib_10k": ("<=", 150.0),
}
COLD_APPS, COLD_LATENCY_S, COLD_WORKERS = 500, 0.050, 4
CPU_RATIO_TARGET = TARGETS["cpu_ratio_5000_to_500"][1]
ADAPTIVE_LIMIT = 20.0
ADAPTIVE_LOW_LIMIT = 5.0


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
    simulator: subprocess.Popen[str] | None
    operator: Operator
    client: AivenHttp

    def stop(self) -> None:
        self.operator.stop()
        self.client.close()
        if self.simulator is not None:
            os.killpg(self.simulator.pid, signal.SIGTERM)
            self.simulator.wait(timeout=20)

    def aiven_requests(self) -> int:
        """Requests the operator's Aiven client sent (retries included)."""
        return sum(self.client.request_counts().values())


def start_simulator(response_time_ms: float) -> tuple[subprocess.Popen[str], str]:
    """`aivenator fake-aiven` in its own process (its CPU is not the operator's); returns its URL."""
    aivenator = str(Path(sys.executable).with_name("aivenator"))
    proc = subprocess.Popen(
        [aivenator, "fake-aiven", "--port", "0", "--token", TOKEN, "--response-time-ms", str(response_time_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("AIVEN_WEB_URL="):
            return proc, line.strip().split("=", 1)[1]
    raise RuntimeError("aivenator fake-aiven did not print its URL")


def build_rig(workers: int, *, latency_ms: float | None = None, sync_period: float = 3600.0) -> Rig:
    """The real operator on the in-memory cluster; Aiven is the simulator in its own process
    over HTTP when `latency_ms` is given, else an in-process MockTransport."""
    aiven = FakeAiven.with_default_seed(token=TOKEN)
    kube = FakeKubernetes(namespaces=(NAMESPACE,))
    simulator, url = start_simulator(latency_ms) if latency_ms is not None else (None, "https://api.aiven.io")
    config = OperatorConfig(
        aiven_token=TOKEN,
        aiven_api_url=url,
        projects=(PROJECT,),
        main_project=PROJECT,
        workers=workers,
        janitor_grace_period=0.0,
        sync_period=sync_period,
        janitor_interval=3600.0,
        orphan_sweep_interval=0.0,
    )
    container = build_container(config)
    container.kubernetes.override(providers.Object(kube))
    if simulator is None:
        container.aiven_transport.override(providers.Object(aiven.mock_transport()))
    container.serve_http.override(providers.Object(False))
    container.watch_timeout.override(providers.Object(30.0))
    return Rig(kube, aiven, simulator, container.operator(), container.aiven())


def rollout_complete(operator: Operator) -> float:
    return operator.metrics.value(
        "aivenator_aiven_applications_processed", {"synchronization_state": "RolloutComplete"}
    )


def processed(operator: Operator) -> float:
    """Applications processed so far (every label value of the processing-time histogram)."""
    name = "aivenator_aiven_application_processing_time_seconds_count"
    return sum(
        sample.value
        for family in operator.metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def all_converged(kube: FakeKubernetes) -> int:
    """Full check, once at the end (not per poll)."""
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


# --- parts ----------------------------------------------------------------------------------------


def part_cold(result: dict[str, Any], apps: int = COLD_APPS) -> None:
    rig = build_rig(COLD_WORKERS, latency_ms=COLD_LATENCY_S * 1000)
    try:
        for i in range(apps):
            rig.kube.apply(kafka_app(f"app-{i:05d}"))
        before = rig.aiven_requests()
        cpu0, started = time.process_time(), time.monotonic()
        rig.operator.start(sync_timeout=60.0)
        ok = wait(lambda: rollout_complete(rig.operator) >= apps, 600.0, poll=0.02)
        wall = time.monotonic() - started
        cpu = time.process_time() - cpu0
        rig.operator.wait_until_idle(timeout=60.0, settle=0.3)
        converged = all_converged(rig.kube)
        requests = rig.aiven_requests() - before
    finally:
        rig.stop()
    rounds = math.ceil(apps / COLD_WORKERS)
    bound = rounds * 1 * COLD_LATENCY_S
    # What each worker adds to each of its rounds beyond the simulator's response time: the
    # figure that stays roughly the same at another latency (the ratio is 1 + this / latency).
    overhead_ms = (wall - bound) / rounds * 1000
    if not ok or converged != apps:
        print(f"cold: FAILED, {converged} of {apps} applications converged")
        result["cold_converged"] = converged
    result.update(
        cold_apps=apps,
        cold_wall_s=round(wall, 3),
        cold_bound_s=round(bound, 3),
        cold_ratio=round(wall / bound, 3),
        cold_overhead_ms_per_round=round(overhead_ms, 2),
        cold_cpu_s=round(cpu, 2),
        aiven_requests_per_app=round(requests / apps, 3),
    )
    print(
        f"cold: {apps} apps, {COLD_WORKERS} workers, {COLD_LATENCY_S * 1000:g} ms/request: wall "
        f"{wall:.2f} s, bound ceil(N/W) x 1 x latency = {bound:.2f} s, ratio {wall / bound:.3f} "
        f"({overhead_ms:.1f} ms above the latency per round of a worker); "
        f"{requests} Aiven requests ({requests / apps:.3f}/app); process CPU {cpu:.1f} s "
        f"(operator + in-memory cluster; the simulator runs in its own process)"
    )


def part_cpu(apps: int, profile: bool, cpu_budget_s: float | None = None) -> tuple[float, bool]:
    """CPU ms per application converging `apps` in one thread; (figure, complete). With a CPU
    budget the run stops once it is spent (the figure is then CPU per application converged so
    far, a lower bound when per-app cost grows with N) and `complete` is False."""
    rig = build_rig(1)
    try:
        for i in range(apps):
            rig.kube.apply(kafka_app(f"app-{i:05d}"))
        profiler = cProfile.Profile() if profile else None
        cpu0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        complete = True
        steps = 0
        while True:
            if rig.operator.step() is None:
                rig.operator.sync_caches()
                if len(rig.operator.queue) == 0:
                    break
                continue
            steps += 1
            if cpu_budget_s is not None and steps % 50 == 0 and time.process_time() - cpu0 > cpu_budget_s:
                complete = False
                break
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu0
        converged = all_converged(rig.kube)
    finally:
        rig.stop()
    if complete and converged != apps:
        raise RuntimeError(f"cpu: only {converged} of {apps} applications converged")
    per_app_ms = cpu / max(1, converged) * 1000
    note = (
        ""
        if complete
        else f" (CPU budget {cpu_budget_s:.0f} s spent after {converged} of {apps} apps: stopped)"
    )
    print(f"cpu: {apps} apps: {cpu:.2f} CPU s = {per_app_ms:.2f} ms/app (one thread, Operator.step){note}")
    if profiler is not None:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
        path = OUT / f"profile-{apps}.txt"
        path.write_text(text.getvalue(), encoding="utf-8")
        print(f"     profile (cProfile; CPU figure above includes its overhead): {path}")
    return per_app_ms, complete


def part_steady(result: dict[str, Any], apps: int = 500, sync_period: float = 10.0) -> None:
    rig = build_rig(COLD_WORKERS, sync_period=sync_period)
    ok = True
    try:
        for i in range(apps):
            rig.kube.apply(kafka_app(f"app-{i:05d}"))
        rig.operator.start(sync_timeout=60.0)
        if not wait(lambda: rollout_complete(rig.operator) >= apps, 300.0, poll=0.05):
            raise RuntimeError("steady: the applications did not converge")
        rig.operator.wait_until_idle(timeout=60.0, settle=0.5)
        aiven_before = len(rig.aiven.request_log)
        writes_before = rig.kube.write_count()
        seen_before = processed(rig.operator)
        # The operator's own timer must re-examine every application within two periods.
        fired = wait(lambda: processed(rig.operator) >= seen_before + apps, 2 * sync_period + 30.0, poll=0.1)
        rig.operator.wait_until_idle(timeout=60.0, settle=0.5)
        aiven_requests = len(rig.aiven.request_log) - aiven_before
        kube_writes = rig.kube.write_count() - writes_before
        examined = processed(rig.operator) - seen_before
    finally:
        rig.stop()
    if not fired:
        print(f"steady: FAILED, the periodic resync re-examined {examined:.0f} of {apps} applications")
        ok = False
    result.update(
        steady_aiven_requests=aiven_requests if ok else None,
        steady_kube_writes=kube_writes if ok else None,
        steady_resync_fired=fired,
    )
    print(
        f"steady: periodic resync (timer, {sync_period:g} s) re-examined {examined:.0f} applications: "
        f"{aiven_requests} Aiven requests, {kube_writes} Kubernetes writes"
    )


def part_adaptive(result: dict[str, Any]) -> None:
    for prefix, limit in (("adaptive", ADAPTIVE_LIMIT), ("adaptive_low", ADAPTIVE_LOW_LIMIT)):
        got = adaptive.measure(limit=limit, ceiling=100.0, duration=40.0, warmup=10.0, workers=4)
        result[f"{prefix}_limit_rps"] = got.limit_rps
        result[f"{prefix}_throughput_rps"] = round(got.throughput_rps, 2)
        result[f"{prefix}_429_fraction"] = round(got.fraction_429, 4)
        result[f"{prefix}_requests"] = got.requests
        print(
            f"adaptive: server limit {got.limit_rps:g}/s, ceiling {got.ceiling_rps:g}/s: "
            f"{got.throughput_rps:.1f} answered/s after warm-up, {got.throttled} of {got.requests} "
            f"requests answered 429 ({got.fraction_429:.1%}); client rate at the end "
            f"{got.final_rate_rps or 0:.1f}/s"
        )


# --- verdict --------------------------------------------------------------------------------------


def verdict(result: dict[str, Any]) -> list[str]:
    derived: dict[str, Any] = dict(result)
    a, b = result.get("cpu_ms_per_app_500"), result.get("cpu_ms_per_app_5000")
    derived["cpu_ratio_5000_to_500"] = round(b / a, 3) if a and b else None
    result["cpu_ratio_5000_to_500"] = derived["cpu_ratio_5000_to_500"]
    for prefix in ("adaptive", "adaptive_low"):
        limit, rps = result.get(f"{prefix}_limit_rps"), result.get(f"{prefix}_throughput_rps")
        derived[f"{prefix}_throughput_fraction"] = round(rps / limit, 3) if limit and rps is not None else None
    missed = []
    for field, (op, target) in TARGETS.items():
        value = derived.get(field)
        if value is None:
            continue
        good = value <= target if op == "<=" else value >= target if op == ">=" else value == target
        if not good:
            missed.append(f"{field} = {value} (target {op} {target})")
    return missed


FIELDS = (
    "cold_apps",
    "cold_wall_s",
    "cold_bound_s",
    "cold_ratio",
    "aiven_requests_per_app",
    "cpu_ms_per_app_500",
    "cpu_ms_per_app_5000",
    "steady_aiven_requests",
    "steady_kube_writes",
    "rss_mib_10k",
    "adaptive_limit_rps",
    "adaptive_throughput_rps",
    "adaptive_429_fraction",
    "adaptive_low_limit_rps",
    "adaptive_low_throughput_rps",
    "adaptive_low_429_fraction",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the cpu runs into out/")
    parser.add_argument("--skip-adaptive", action="store_true")
    parser.add_argument("--skip-5000", action="store_true", help="cpu at 500 apps only")
    parser.add_argument("--output", default=str(OUT / "bench.json"))
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes to check the bench itself runs (targets not checked)"
    )
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    log = (OUT / "bench-operator.log").open("w", encoding="utf-8")
    configure_logging("info", "json", stream=log, registry=SecretRegistry(), secrets=(TOKEN,))
    result: dict[str, Any] = dict.fromkeys(FIELDS)
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    started = time.monotonic()
    if args.smoke:
        part_cold(result, apps=8)
        result["cpu_ms_per_app_500"] = round(part_cpu(10, args.profile)[0], 3)
        part_steady(result, apps=10, sync_period=2.0)
    else:
        part_cold(result)
        # Per-app CPU of identical runs moves by up to 60 % on a shared 2-core machine, while the
        # figure is meant to show how the cost grows with N: both sizes run twice, interleaved
        # (500, 5000, 500, 5000), and each figure is the lower of its two runs (interference only
        # adds CPU). Every run is recorded.
        runs_500: list[float] = []
        runs_5000: list[float] = []
        complete = True
        for _ in range(1 if args.skip_5000 or args.profile else 2):
            runs_500.append(part_cpu(500, args.profile)[0])
            if not args.skip_5000:
                # Twice what the target allows, so a flat profile always finishes and an N^2 one
                # cannot hold the bench for minutes.
                budget = 2 * CPU_RATIO_TARGET * min(runs_500) / 1000 * 5000
                per_app_5000, finished = part_cpu(5000, args.profile, cpu_budget_s=budget)
                runs_5000.append(per_app_5000)
                complete = complete and finished
        result["cpu_ms_per_app_500"] = round(min(runs_500), 3)
        result["cpu_ms_per_app_500_runs"] = [round(r, 3) for r in runs_500]
        if runs_5000:
            # An unfinished run's figure is a lower bound: with one, the bench fails anyway.
            result["cpu_ms_per_app_5000"] = round(min(runs_5000), 3)
            result["cpu_ms_per_app_5000_runs"] = [round(r, 3) for r in runs_5000]
            result["cpu_5000_complete"] = complete
        part_steady(result)
        if not args.skip_adaptive:
            part_adaptive(result)
    missed = verdict(result)
    if args.smoke:
        result["smoke"] = True
        missed = [m for m in missed if m.startswith("steady_")]  # sizes differ: only 0 == 0 holds
    result["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    result["missed"] = missed
    result["bench_wall_s"] = round(time.monotonic() - started, 1)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    for line in missed:
        print(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
