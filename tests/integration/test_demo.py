"""`aivenator demo` as a user runs it (a subprocess), and a smoke run of the benchmark code path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STEPS = (
    "seed",
    "apply",
    "converge",
    "show",
    "redeploy",
    "janitor-keeps-used",
    "janitor-removes-unused",
    "finalizer",
    "no-leaks",
)
#: Keys whose values are credentials; their lines must only ever show the mask.
CREDENTIAL_KEYS = re.compile(r"^\s+(\S*(PASSWORD|PRIVATE_KEY|CERTIFICATE)\S*|client\.\S+):\s(.*)$")


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "aivenator.entrypoints.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_demo_passes_every_step_and_masks_every_value() -> None:
    result = run_cli("demo")
    out = result.stdout

    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for step in STEPS:
        assert re.search(rf"  ok {re.escape(step)}: ", out), f"step {step} not reported as passed"
    assert re.search(r"demo passed: 9 steps in [\d.]+ s", out)
    # Progress shows up as events while it converges, not only at the end.
    assert "event: aiven user created    dev-nais-dev/kafka/" in out
    assert "event: secret created        team-a/aiven-orders-kafka-2611273" in out
    assert "event: application team-a/orders: RolloutComplete" in out
    # The lifecycle: the old user of the redeployed app is deleted together with its Secret.
    assert "event: aiven user deleted    dev-nais-dev/kafka/" in out
    assert "event: secret deleted        team-a/aiven-myapp-kafka-2611271\n" in out
    # Every Secret is shown, with keys and masked values only.
    for name in (
        "aiven-orders-kafka-2611273",
        "aiven-orders-opensearch-2611273",
        "aiven-orders-valkey-sessions-2611273",
        "aiven-orders-valkey-cache-2611273",
        "aiven-myapp-kafka-2611271",
    ):
        assert f"  Secret team-a/{name} (app " in out
    value_lines = [line for line in out.splitlines() if re.match(r"^    [A-Za-z_.0-9]+: ", line)]
    assert len(value_lines) > 50
    assert all(re.match(r"^    [A-Za-z_.0-9]+: \*\*\* \(\d+ bytes\)$", line) for line in value_lines)
    for line in out.splitlines():
        match = CREDENTIAL_KEYS.match(line)
        if match:
            assert match.group(3).startswith("*** ("), line
    both = out + result.stderr
    assert "BEGIN" not in both and "PRIVATE KEY" not in both
    users = re.findall(r"^  Aiven user (\S+)$", out, flags=re.M)
    assert len(users) == 5 and any("/kafka/" in u for u in users)


def test_the_demo_names_the_step_that_failed() -> None:
    result = run_cli("demo", "--examples", str(REPO / "no-such-directory"))

    assert result.returncode == 1
    assert "FAILED step apply: no AivenApplication examples in" in result.stdout
    assert "demo passed" not in result.stdout


def test_the_benchmark_runs_in_smoke_mode(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = run_cli_module("benchmarks.bench", "--smoke", "--output", str(output))

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(output.read_text())
    assert figures["cold_apps"] == 8 and figures["aiven_requests_per_app"] <= 1.25  # 1 per app + CA + service
    assert figures["cold_ratio"] > 0 and figures["cpu_ms_per_app_500"] > 0
    # the operator's own timer re-examined the apps, and that cost nothing
    assert figures["steady_aiven_requests"] == 0 and figures["steady_kube_writes"] == 0
    assert figures["rss_mib_10k"] is None and figures["adaptive_429_fraction"] is None


def run_cli_module(module: str, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
