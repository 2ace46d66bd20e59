"""`make test-aiven`: refuses clearly without its variables, and with them runs the contract suite
in real-target mode (proved here against the simulator on loopback HTTP, the same code path as
real Aiven: target from the environment, unique user prefix, cleanup)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.adapters.fakes.aiven.server import FakeAivenServer

from tests.integration.aiven_target import REQUIRED, missing_variables, target_from_env

REPO = Path(__file__).resolve().parents[2]
TOKEN = "target-test-token-7f3a"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIVEN_", "AIVENATOR_"))}


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.aiven_target"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_missing_variables_are_named_and_fail() -> None:
    result = _run(_clean_env())
    assert result.returncode == 2
    assert result.stderr.startswith("make test-aiven: missing ")
    for name in REQUIRED:
        assert name in result.stderr
    partial = _run({**_clean_env(), "AIVEN_TOKEN": "x", "AIVEN_TEST_PROJECT": "p"})
    assert partial.returncode == 2
    assert "AIVEN_TOKEN" not in partial.stderr and "AIVEN_TEST_KAFKA" in partial.stderr


def test_the_makefile_target_is_that_runner() -> None:
    result = subprocess.run(
        ["make", "-s", "test-aiven"], cwd=REPO, env=_clean_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "missing AIVEN_TOKEN" in result.stderr


def test_target_from_env_reads_every_variable_and_makes_a_unique_prefix() -> None:
    env = {name: f"v-{name.lower()}" for name in REQUIRED}
    assert missing_variables(env) == ()
    one, two = target_from_env(env), target_from_env(env)
    assert (one.project, one.kafka, one.opensearch, one.valkey) == (
        "v-aiven_test_project",
        "v-aiven_test_kafka",
        "v-aiven_test_opensearch",
        "v-aiven_test_valkey",
    )
    assert one.base_url == "https://api.aiven.io" and one.real
    assert one.user_prefix != two.user_prefix
    assert "v-aiven_token" not in repr(one), "the token never appears in a repr"


@pytest.fixture
def loopback() -> Iterator[tuple[FakeAiven, FakeAivenServer]]:
    fake = FakeAiven(token=TOKEN)
    fake.add_service("real-mode", "k", "kafka")
    fake.add_service("real-mode", "o", "opensearch")
    fake.add_service("real-mode", "v", "valkey")
    with fake.serve() as server:
        yield fake, server


def test_real_mode_runs_the_suite_and_leaves_nothing_behind(
    loopback: tuple[FakeAiven, FakeAivenServer],
) -> None:
    fake, server = loopback
    env = {
        **_clean_env(),
        "AIVEN_TOKEN": TOKEN,
        "AIVEN_API_URL": server.base_url,
        "AIVEN_TEST_PROJECT": "real-mode",
        "AIVEN_TEST_KAFKA": "k",
        "AIVEN_TEST_OPENSEARCH": "o",
        "AIVEN_TEST_VALKEY": "v",
    }
    result = _run(env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "9 passed" in result.stdout
    created = fake.requests_matching("POST", r"/user$")
    assert len(created) == 3, "the suite ran against this server"
    assert all(
        not users for users in (set(fake.users("real-mode", s)) - {"avnadmin", "default"} for s in "kov")
    )
    assert all(
        not a["username"].startswith("aivenator-ct-") for a in fake.opensearch_acl("real-mode", "o")["acls"]
    )
    assert TOKEN not in result.stdout + result.stderr
