"""Configuration: flags, AIVENATOR_* variables, defaults, every error at once, token never shown."""

from __future__ import annotations

import argparse

import pytest
from aivenator.entrypoints.config import (
    Address,
    OperatorConfig,
    add_arguments,
    env_name,
    load_config,
    parse_address,
    parse_duration,
)
from returns.pipeline import is_successful
from returns.result import Result

TOKEN = "tok-very-secret-1234567890"


def parse(
    argv: list[str], env: dict[str, str] | None = None, files: dict[str, str] | None = None
) -> Result[OperatorConfig, tuple[str, ...]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)

    def read_file(path: str) -> str:
        if files is None or path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    return load_config(args, env or {}, read_file)


def ok(argv: list[str], env: dict[str, str] | None = None) -> OperatorConfig:
    result = parse(argv, env)
    assert is_successful(result), result
    return result.unwrap()


def errors(argv: list[str], env: dict[str, str] | None = None) -> tuple[str, ...]:
    result = parse(argv, env)
    assert not is_successful(result), result
    return result.failure()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("30m", 1800),
        ("90s", 90),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("0", 0),
        ("1.5h", 5400),
        ("2m3s", 123),
    ],
)
def test_go_durations_are_understood(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "1d", "1h 30m", "abc", "1hm"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults_match_the_compatible_flags() -> None:
    config = ok(["--aiven-token", TOKEN])
    assert config.projects == ("dev-nais-dev",)
    assert config.main_project == "dev-nais-dev"
    assert config.sync_period == 3600
    assert config.metrics_address == Address("127.0.0.1", 8080)
    assert config.log_format == "text"
    assert config.log_level == "info"
    assert config.aiven_api_url == "https://api.aiven.io"
    assert config.workers == 4
    assert config.leader_elect is False


def test_flags_override_environment_and_environment_overrides_defaults() -> None:
    env = {
        env_name("aiven-token"): TOKEN,
        "AIVENATOR_PROJECTS": "nav-dev, nav-prod",
        "AIVENATOR_SYNC_PERIOD": "30m",
        "AIVENATOR_LOG_FORMAT": "json",
        "AIVENATOR_LEADER_ELECT": "true",
    }
    config = ok(["--sync-period", "90s"], env)
    assert config.aiven_token == TOKEN
    assert config.projects == ("nav-dev", "nav-prod")
    assert config.sync_period == 90
    assert config.log_format == "json"
    assert config.leader_elect is True
    assert ok(["--no-leader-elect"], env).leader_elect is False


def test_token_may_come_from_a_file() -> None:
    result = parse(["--aiven-token-file", "/run/token"], files={"/run/token": TOKEN + "\n"})
    assert result.unwrap().aiven_token == TOKEN


def test_all_problems_are_reported_at_once_one_line_each() -> None:
    problems = errors(
        [
            "--sync-period",
            "soon",
            "--log-format",
            "xml",
            "--workers",
            "0",
            "--metrics-address",
            "nope",
            "--projects",
            ",",
        ]
    )
    joined = "\n".join(problems)
    for flag in (
        "--aiven-token",
        "--sync-period",
        "--log-format",
        "--workers",
        "--metrics-address",
        "--projects",
    ):
        assert flag in joined
    assert all("\n" not in p for p in problems)
    assert len(problems) >= 6


def test_the_token_never_appears_in_repr_or_errors() -> None:
    config = ok(["--aiven-token", TOKEN])
    assert TOKEN not in repr(config)
    assert TOKEN not in str(config)
    problems = errors(["--aiven-token", TOKEN, "--aiven-token-file", "/x", "--log-level", "loud"])
    assert all(TOKEN not in p for p in problems)


def test_missing_token_file_is_a_clear_error() -> None:
    problems = errors(["--aiven-token-file", "/does/not/exist"])
    assert any("--aiven-token-file" in p and "/does/not/exist" in p for p in problems)


def test_leader_election_durations_must_be_ordered() -> None:
    problems = errors(
        ["--aiven-token", TOKEN, "--leader-elect", "--lease-duration", "5s", "--renew-deadline", "10s"]
    )
    assert any("--renew-deadline" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8080", Address("127.0.0.1", 8080)),
        (":9090", Address("0.0.0.0", 9090)),
        ("[::1]:0", Address("::1", 0)),
    ],
)
def test_addresses(text: str, address: Address) -> None:
    assert parse_address(text) == address


def test_invalid_boolean_environment_is_reported() -> None:
    problems = errors(["--aiven-token", TOKEN], {"AIVENATOR_LEADER_ELECT": "maybe"})
    assert any("--leader-elect" in p for p in problems)
