"""Logging: text and JSON output, levels, and no credential ever reaching a line."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
import structlog
from aivenator.adapters.redaction import SecretRegistry
from aivenator.entrypoints.runtime.logging_setup import configure_logging, get_logger

TOKEN = "tok_abcdefghijklmnopqrstuvwxyz0123"
PASSWORD = "AVNS_s3cretPassw0rdValue"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_aivenator", False):
            root.removeHandler(handler)


def test_json_lines_carry_bound_keys() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out, registry=SecretRegistry())
    get_logger().bind(namespace="team-a", aiven_application="app").info("secret_written", secret_name="s")
    line = json.loads(out.getvalue().strip())
    assert line["event"] == "secret_written"
    assert line["namespace"] == "team-a"
    assert line["secret_name"] == "s"
    assert line["level"] == "info"


def test_level_filters_lower_events() -> None:
    out = io.StringIO()
    configure_logging("warning", "text", stream=out, registry=SecretRegistry())
    log = get_logger()
    log.info("quiet_fact")
    log.warning("loud_fact")
    text = out.getvalue()
    assert "quiet_fact" not in text
    assert "loud_fact" in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_credential_reaches_a_log_line(fmt: str) -> None:
    out = io.StringIO()
    registry = SecretRegistry()
    configure_logging("debug", fmt, stream=out, registry=registry, secrets=(TOKEN,))
    registry.add("plain-shaped-secret-xyz")
    log = get_logger()
    log.info("token_used", header=f"aivenv1 {TOKEN}", raw=TOKEN)
    log.warning("aiven_error", body='{"password": "' + PASSWORD + '"}', key=PEM)
    log.info("nested", data={"x": ["plain-shaped-secret-xyz"]})
    try:
        raise RuntimeError(f"boom with {TOKEN}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("urllib3").warning("request failed: Authorization: aivenv1 %s", TOKEN)
    text = out.getvalue()
    assert "token_used" in text and "aiven_error" in text and "failed" in text
    for secret in (TOKEN, PASSWORD, "MIIBVgIBADANBgkqhkiG9w0BAQEFAASC", "plain-shaped-secret-xyz"):
        assert secret not in text
    assert "[REDACTED]" in text


def test_under_json_every_line_is_json_whoever_logs_it() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out, registry=SecretRegistry(), secrets=(TOKEN,))
    get_logger().info("ours", n=1)
    logging.getLogger("urllib3.connectionpool").warning(
        "Retrying (%r) after connection broken by '%s': /api/v1/secrets", "Retry(total=2)", "NewConnectionError"
    )
    logging.getLogger("kubernetes.client.rest").error("watch of %s ended", "/api/v1/pods")
    try:
        raise ValueError(f"multi\nline with {TOKEN}")
    except ValueError:
        logging.getLogger("httpx").exception("request failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"].split("\n")[0] for line in lines] == [
        "ours",
        "Retrying ('Retry(total=2)') after connection broken by 'NewConnectionError': /api/v1/secrets",
        "watch of /api/v1/pods ended",
        "request failed",
    ]
    assert [line.get("logger") for line in lines[1:]] == ["urllib3.connectionpool", "kubernetes.client.rest", "httpx"]
    assert [line["level"] for line in lines] == ["info", "warning", "error", "error"]
    assert all("timestamp" in line for line in lines)
    assert "ValueError" in lines[3]["event"] and TOKEN not in out.getvalue()


class _YieldingStream(io.StringIO):
    """A stream that lets other threads run inside every write, as a pipe or a file whose buffer
    fills does (the write blocks in a system call without the GIL)."""

    def write(self, text: str) -> int:
        written = super().write(text)
        time.sleep(0)
        return written


def test_threads_logging_through_structlog_and_stdlib_never_share_a_line() -> None:
    """A stdlib record (a library's warning) and a structlog event written at the same moment by
    two threads each get their own line: one lock serialises both (the JSON log test once found
    two objects on one line)."""
    out = _YieldingStream()
    configure_logging("info", "json", stream=out, registry=SecretRegistry())
    start = threading.Barrier(4)

    def ours(i: int) -> None:
        start.wait()
        for n in range(200):
            get_logger().info("ours", thread=i, n=n)

    def theirs(i: int) -> None:
        start.wait()
        for n in range(200):
            logging.getLogger("urllib3.connectionpool").warning("theirs %d %d", i, n)

    threads = [threading.Thread(target=ours if i % 2 else theirs, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = out.getvalue().splitlines()
    events = [json.loads(line)["event"] for line in lines]  # raises on two objects in one line
    assert len(lines) == 4 * 200
    assert events.count("ours") == 2 * 200
