"""A token on the command line is accepted (the Go operator had the flag) but warned about."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOKEN = "tok-" + "7" * 20
COMMON = [
    "--kubeconfig",
    "/nonexistent/kubeconfig",  # start-up then fails at once: only the first lines matter
    "--log-format",
    "json",
    "--metrics-address",
    "127.0.0.1:0",
    "--health-probe-address",
    "127.0.0.1:0",
]


def _run(*args: str, token_env: str | None = None) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIVENATOR_")}
    if token_env is not None:
        env["AIVENATOR_AIVEN_TOKEN"] = token_env
    done = subprocess.run(
        [sys.executable, "-m", "aivenator.entrypoints.cli.main", "run", *args, *COMMON],
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    text = (done.stdout + done.stderr).decode()
    assert TOKEN not in text
    return [json.loads(line) for line in text.splitlines()]


def test_a_token_on_the_command_line_is_warned_about_without_its_value() -> None:
    lines = _run("--aiven-token", TOKEN)
    warning = next(line for line in lines if line["event"] == "aiven_token_on_command_line")
    assert warning["level"] == "warning"
    assert "--aiven-token-file" in str(warning["hint"]) and "AIVENATOR_AIVEN_TOKEN" in str(warning["hint"])


@pytest.mark.parametrize("how", ["file", "env"])
def test_a_token_from_a_file_or_the_environment_is_not(tmp_path: Path, how: str) -> None:
    if how == "file":
        path = tmp_path / "token"
        path.write_text(TOKEN, encoding="utf-8")
        lines = _run("--aiven-token-file", str(path))
    else:
        lines = _run(token_env=TOKEN)
    events = [line["event"] for line in lines]
    assert "aivenator_starting" in events
    assert "aiven_token_on_command_line" not in events
