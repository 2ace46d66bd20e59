"""`--log-format json`: every line is JSON while the apiserver cannot be reached.

The operator runs as a subprocess against a kubeconfig whose server refuses connections, so the
kubernetes client's urllib3 logs its retry warnings (plain text before they went through
structlog's formatter). The real-apiserver tier checks the same for a run with Aiven errors
(tests/integration/test_e2e_real_apiserver.py, every operator log).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TOKEN = "json-logs-" + "9" * 16


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def test_every_line_is_json_while_the_apiserver_is_unreachable(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{_closed_port()}"}}],
                "users": [{"name": "u", "user": {"token": "kube-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        ),
        encoding="utf-8",
    )
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    log_path = tmp_path / "operator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIVENATOR_")}
    argv = [
        sys.executable,
        "-m",
        "aivenator.entrypoints.cli.main",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--aiven-token-file",
        str(token_file),
        "--aiven-api-url",
        f"http://127.0.0.1:{_closed_port()}",
        "--log-format",
        "json",
        "--metrics-address",
        "127.0.0.1:0",
        "--health-probe-address",
        "127.0.0.1:0",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and b"urllib3" not in log_path.read_bytes():
                time.sleep(0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    text = log_path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]  # raises on any non-JSON line
    assert all(isinstance(line, dict) and "event" in line and "level" in line for line in lines)
    loggers = {line.get("logger") for line in lines}
    assert any(str(name).startswith("urllib3") for name in loggers), text[-2000:]
    assert any(line["event"] == "aivenator_stopped" for line in lines)
    assert TOKEN not in text
