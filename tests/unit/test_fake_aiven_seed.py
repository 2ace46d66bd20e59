"""Simulator seeds (default, YAML/JSON files) and the `aivenator fake-aiven` argument handling."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from aivenator.adapters.fakes.aiven import DEFAULT_SEED, FakeAiven, Seed, load_seed
from aivenator.entrypoints.cli import cmd_fake_aiven


def test_default_seed_is_what_the_docs_promise() -> None:
    fake = FakeAiven.with_default_seed()
    assert fake.projects() == {
        "dev-nais-dev": [
            "kafka",
            "opensearch-team-a-logs",
            "legacy-search",
            "valkey-team-a-cache",
            "valkey-team-a-sessions",
        ],
        "nav-prod": ["nav-prod-kafka"],
    }
    for service in ("kafka", "opensearch-team-a-logs", "legacy-search"):
        assert {n: u["type"] for n, u in fake.users("dev-nais-dev", service).items()} == {
            "avnadmin": "primary"
        }
    for service in ("valkey-team-a-cache", "valkey-team-a-sessions"):
        assert {n: u["type"] for n, u in fake.users("dev-nais-dev", service).items()} == {
            "default": "primary"
        }
    admin_acl = {"id": "default", "permission": "admin", "topic": "*", "username": "avnadmin"}
    assert fake.kafka_acl("dev-nais-dev", "kafka") == [admin_acl]
    assert fake.kafka_acl("nav-prod", "nav-prod-kafka") == [admin_acl]
    assert fake.users("dev-nais-dev", "kafka")["avnadmin"]["access_cert"].startswith(
        "-----BEGIN CERTIFICATE-----"
    )


SEED_YAML = """
projects:
  p1:
    services:
      k: {type: kafka, schema_registry: false, users: [existing_user]}
      v: {type: valkey, replica: true, state: REBUILDING}
      o: {type: opensearch, dashboards: false}
  empty: {}
"""


def test_yaml_seed_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(SEED_YAML)
    fake = FakeAiven(seed=load_seed(path))
    assert fake.projects() == {"p1": ["k", "v", "o"], "empty": []}
    assert set(fake.users("p1", "k")) == {"avnadmin", "existing_user"}
    assert fake.schema_registry_acl("p1", "k") == []
    assert fake.project_ca_pem("empty").startswith("-----BEGIN CERTIFICATE-----")


def test_json_seed_file_round_trips_through_to_mapping(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(DEFAULT_SEED.to_mapping()))
    assert load_seed(path) == DEFAULT_SEED
    yaml_seed = tmp_path / "seed.yaml"
    yaml_seed.write_text(SEED_YAML)
    loaded = load_seed(yaml_seed)
    assert Seed.from_mapping(loaded.to_mapping()) == loaded


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"project": {}},
        {"projects": []},
        {"projects": {"p": {"services": {"s": {"type": "postgres"}}}}},
        {"projects": {"p": {"services": {"s": {"type": "kafka", "replica": "yes"}}}}},
        {"projects": {"p": {"services": {"s": {"type": "kafka", "colour": "red"}}}}},
        {"projects": {"p": {"services": {"s": {"type": "kafka", "users": "avnadmin"}}}}},
        {"projects": {"p": {"services": ["s"]}}},
        {"projects": {"p": {"extra": 1}}},
    ],
)
def test_malformed_seeds_are_rejected_with_a_reason(data: Any) -> None:
    with pytest.raises(ValueError, match="seed"):
        Seed.from_mapping(data)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_fake_aiven.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_defaults_build_the_default_seed_without_faults() -> None:
    args = parse()
    assert (args.host, args.port, args.token) == ("127.0.0.1", 8900, "fake-aiven-token")
    fake = cmd_fake_aiven.build(args)
    assert "nav-prod" in fake.projects()
    assert fake.faults.rules == []
    assert fake.redact_by_default is False


def test_cli_fault_flags_become_rules() -> None:
    args = parse(
        "--latency-ms", "20", "--rate-limit", "120/60s", "--error-rate", "0.1", "--throttle-rate", "0.05",
        "--reset-rate", "0.01", "--timeout-rate", "0.01", "--commit-then-fail-rate", "0.02", "--user-lag", "2",
        "--path", "/user", "--redact", "--token", "T", "--cert-days", "3",
    )  # fmt: skip
    fake = cmd_fake_aiven.build(args)
    kinds = [r.kind for r in fake.faults.rules]
    assert kinds == [
        "latency",
        "rate_limit",
        "throttle",
        "error",
        "reset",
        "timeout",
        "commit_then_fail",
        "user_lag",
    ]
    rate_limit = fake.faults.rules[1]
    assert (rate_limit.limit, rate_limit.window_s) == (120, 60.0)
    assert fake.faults.rules[3].status == 503
    assert all(r.path is not None and r.path.pattern == "/user" for r in fake.faults.rules)
    assert fake.redact_by_default is True and fake.token == "T"
    assert fake.cert_validity.days == 3


def test_cli_rejects_bad_values_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:  # range-checked while parsing: a usage error
        parse("--error-rate", "2")
    assert usage.value.code == 2
    assert cmd_fake_aiven.run(parse("--rate-limit", "lots")) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("projects: {p: {services: {s: {type: nope}}}}")
    assert cmd_fake_aiven.run(parse("--seed", str(bad))) == 2
    assert cmd_fake_aiven.run(parse("--seed", str(tmp_path / "missing.yaml"))) == 2
    assert "aivenator fake-aiven:" in capsys.readouterr().err
