"""Runtime pieces of the operator: probes and metrics over HTTP, watches that relist after 410,
periodic resync, and the `aivenator run` command's exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from aivenator.entrypoints.runtime.health import HealthServer
from aivenator.entrypoints.shells.metrics import Metrics

from tests.support.harness import (
    NAMESPACE,
    TOKEN,
    Harness,
    application,
    build,
    harness,
    make_config,
)

__all__ = ["harness"]

KAFKA = {"pool": "dev-nais-dev", "secretName": "app-kafka-1"}
REPO = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_probe_server_serves_metrics_health_and_readiness() -> None:
    metrics = Metrics()
    metrics.applications_processed.labels(synchronization_state="RolloutComplete").inc()
    ready = {"ok": False}
    server = HealthServer(
        "127.0.0.1", 0, metrics, ready=lambda: (ready["ok"], "caches" if not ready["ok"] else "ok")
    )
    server.start()
    try:
        status, body = get(server.url + "/metrics")
        assert status == 200
        assert 'aivenator_aiven_applications_processed{synchronization_state="RolloutComplete"} 1.0' in body
        assert get(server.url + "/healthz")[0] == 200
        assert get(server.url + "/readyz") == (503, "caches\n")
        ready["ok"] = True
        assert get(server.url + "/readyz")[0] == 200
        assert get(server.url + "/nope")[0] == 404
    finally:
        server.stop()


def test_operator_readiness_follows_cache_sync(harness: Harness) -> None:
    ok, reason = harness.operator.readiness()
    assert not ok and "caches not synced" in reason
    harness.operator.sync_caches()
    assert harness.operator.readiness() == (True, "ok")


def test_informer_relists_after_410_and_reports_missed_changes(harness: Harness) -> None:
    harness.kube.apply(application("one", kafka=KAFKA))
    harness.operator.drain()
    assert harness.operator.apps.get((NAMESPACE, "one")) is not None
    harness.kube.expire_watches()
    harness.kube.apply(application("two", kafka={"pool": "dev-nais-dev", "secretName": "two-kafka-1"}))
    harness.kube.delete("AivenApplication", NAMESPACE, "one")
    harness.operator.drain()
    assert harness.operator.apps.get((NAMESPACE, "one")) is None
    assert harness.secret("two-kafka-1") is not None
    assert (
        harness.operator.metrics.value(
            "aivenator_watch_restarts_total", {"resource": "AivenApplication", "reason": "expired"}
        )
        >= 1
    )


def test_periodic_resync_really_reaches_the_reconciler_and_costs_nothing() -> None:
    h = build(make_config(sync_period=0.3, janitor_interval=3600), real_monotonic=True)
    try:
        h.kube.apply(application(kafka=KAFKA))
        h.operator.start(sync_timeout=10)
        assert h.operator.wait_until_idle(20)
        aiven, writes = h.aiven_requests(), h.kube_writes()
        count = h.operator.metrics.total("aivenator_aiven_application_processing_time_seconds_count")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (
                h.operator.metrics.total("aivenator_aiven_application_processing_time_seconds_count")
                >= count + 2
            ):
                break
            time.sleep(0.05)
        assert (
            h.operator.metrics.total("aivenator_aiven_application_processing_time_seconds_count") >= count + 2
        )
        assert h.operator.wait_until_idle(20)
        assert h.aiven_requests() == aiven
        assert h.kube_writes() == writes
        assert h.operator.metrics.value("aivenator_secrets_managed", {"namespace": NAMESPACE}) == 1
    finally:
        h.close()


def _aivenator(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AIVENATOR_")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "aivenator.entrypoints.cli.main", "run", *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_reports_every_configuration_problem_and_exits_2() -> None:
    proc = _aivenator("--sync-period", "often", "--log-format", "xml")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert any("--aiven-token" in line for line in lines)
    assert any("--sync-period" in line for line in lines)
    assert any("--log-format" in line for line in lines)


def test_run_exits_1_when_it_cannot_start_and_never_prints_the_token(tmp_path: Path) -> None:
    proc = _aivenator(
        "--kubeconfig",
        str(tmp_path / "missing-kubeconfig"),
        "--metrics-address",
        "127.0.0.1:0",
        env={"AIVENATOR_AIVEN_TOKEN": TOKEN},
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "operator_start_failed" in err
    assert TOKEN not in out + err


def test_run_shuts_down_gracefully_on_sigterm(tmp_path: Path) -> None:
    """With a kubeconfig pointing at a closed port the caches never sync, but the process is up:
    SIGTERM must still end it cleanly with exit code 0."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n"
        "users:\n- name: u\n  user: {token: abc}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
        "current-context: x\n"
    )
    proc = _aivenator(
        "--kubeconfig",
        str(kubeconfig),
        "--metrics-address",
        "127.0.0.1:0",
        "--log-format",
        "json",
        env={"AIVENATOR_AIVEN_TOKEN": TOKEN},
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        seen = ""
        while time.monotonic() < deadline and "aivenator_starting" not in seen:
            seen += proc.stderr.readline()
        assert "aivenator_starting" in seen
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "shutdown_requested" in seen + err
    assert TOKEN not in seen + out + err


def test_running_operator_serves_metrics_and_probes_on_their_addresses() -> None:
    from aivenator.entrypoints.config import Address
    from dependency_injector import providers

    h = build(
        make_config(metrics_address=Address("127.0.0.1", 0), health_probe_address=Address("127.0.0.2", 0))
    )
    try:
        h.container.serve_http.override(providers.Object(True))
        h.container.servers.reset()
        h.container.operator.reset()
        operator = h.container.operator()
        h.operator = operator
        h.kube.apply(application(kafka=KAFKA))
        operator.start(sync_timeout=10)
        assert operator.wait_until_idle(20)
        metrics_server, probe_server = operator.servers
        status, body = get(metrics_server.url + "/metrics")
        assert status == 200 and "aivenator_aiven_applications_processed" in body
        assert get(metrics_server.url + "/readyz") == (200, "ok\n")
        assert get(probe_server.url + "/readyz") == (200, "ok\n")
        assert get(probe_server.url + "/healthz")[0] == 200
        assert get(probe_server.url + "/metrics")[0] == 404
    finally:
        h.close()
