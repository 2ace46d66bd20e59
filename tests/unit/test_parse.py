"""Parsing AivenApplications: every problem reported at once, warnings for deprecated fields."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

from aivenator.domain.application import Access
from aivenator.domain.parse import InvalidSpec, ParsedApplication, parse_application, spec_hash
from hypothesis import given, settings
from returns.result import Failure, Success

from tests.unit.strategies import ALLOWED_PROJECTS, invalid_applications, raw_applications


def _raw(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": "myapp", "namespace": "team-a", "generation": 3, "uid": "u-1"},
        "spec": spec,
    }


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    result = parse_application(raw, ALLOWED_PROJECTS)
    assert isinstance(result, Failure), result
    invalid = result.failure()
    assert isinstance(invalid, InvalidSpec)
    return {p.field: p.message for p in invalid.problems}


def _parsed(raw: dict[str, Any]) -> ParsedApplication:
    result = parse_application(raw, ALLOWED_PROJECTS)
    assert isinstance(result, Success), result
    parsed: ParsedApplication = result.unwrap()
    return parsed


def test_full_spec_parses_into_values() -> None:
    raw = _raw(
        kafka={"pool": "dev-nais-dev", "secretName": "k"},
        openSearch={"instance": "logs", "access": "admin", "secretName": "o"},
        valkey=[
            {"instance": "cache", "secretName": "v1"},
            {"instance": "s", "access": "write", "secretName": "v2"},
        ],
        protected=True,
        expiresAt="2026-12-31T12:00:00+01:00",
    )
    raw["status"] = {"synchronizationHash": "abc"}
    raw["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    app = _parsed(raw).app
    assert app.kafka is not None and app.kafka.pool == "dev-nais-dev"
    assert app.opensearch is not None and app.opensearch.access is Access.ADMIN
    assert [v.access for v in app.valkey] == [Access.READ, Access.WRITE]
    assert app.expires_at == dt.datetime(2026, 12, 31, 11, 0, tzinfo=dt.UTC)
    assert app.protected and app.deletion_requested
    assert app.status_hash == "abc"
    assert app.spec_hash == spec_hash(raw["spec"])
    assert app.secret_names == ("k", "o", "v1", "v2")


def test_every_problem_is_reported_at_once() -> None:
    raw = _raw(
        kafka={"pool": "not-allowed"},
        openSearch={"instance": "", "access": "root", "secretName": "Bad_Name"},
        valkey=[{"instance": "c", "secretName": "dup"}, {"instance": "c", "secretName": "dup"}],
        expiresAt="tomorrow",
        protected="yes",
    )
    problems = _problems(raw)
    assert set(problems) == {
        "spec.kafka.pool",
        "spec.kafka.secretName",
        "spec.openSearch.instance",
        "spec.openSearch.access",
        "spec.openSearch.secretName",
        "spec.valkey[1].instance",
        "spec.valkey[1].secretName",
        "spec.expiresAt",
        "spec.protected",
    }
    assert "allowed" in problems["spec.kafka.pool"]
    assert "already used" in problems["spec.valkey[1].secretName"]


def test_duplicate_secret_names_across_sections() -> None:
    problems = _problems(
        _raw(
            kafka={"pool": "dev-nais-dev", "secretName": "same"},
            openSearch={"instance": "logs", "secretName": "same"},
        )
    )
    assert set(problems) == {"spec.openSearch.secretName"}


def test_secret_name_length_limit() -> None:
    ok = _raw(kafka={"pool": "dev-nais-dev", "secretName": "a" * 253})
    assert _parsed(ok).app.kafka is not None
    assert "spec.kafka.secretName" in _problems(_raw(kafka={"pool": "dev-nais-dev", "secretName": "a" * 254}))


def test_deprecated_secret_name_is_a_warning_not_an_error() -> None:
    parsed = _parsed(_raw(secretName="old-style"))
    assert parsed.app.deprecated_secret_name == "old-style"
    assert [w.field for w in parsed.warnings] == ["spec.secretName"]


def test_expires_at_without_time_zone_is_invalid() -> None:
    assert "spec.expiresAt" in _problems(_raw(expiresAt="2026-12-31T12:00:00"))


def test_bad_types_and_missing_metadata() -> None:
    problems = _problems({"metadata": {"generation": "one"}, "spec": {"kafka": "yes", "valkey": [None]}})
    assert {
        "metadata.name",
        "metadata.namespace",
        "metadata.generation",
        "spec.kafka",
        "spec.valkey[0]",
    } <= set(problems)
    assert "spec" in _problems({"metadata": {"name": "a", "namespace": "b"}})


def test_cleared_status_hash_is_none() -> None:
    raw = _raw()
    raw["status"] = {"synchronizationHash": ""}
    assert _parsed(raw).app.status_hash is None


def test_spec_hash_is_the_go_operators_hex_value() -> None:
    one = {"kafka": {"pool": "a", "secretName": "s"}, "protected": True}
    assert spec_hash(one) == spec_hash({"protected": True, "kafka": {"secretName": "s", "pool": "a"}})
    assert spec_hash(one) != spec_hash({**one, "kafka": {"pool": "b", "secretName": "s"}})
    assert re.fullmatch(r"[0-9a-f]{1,16}", spec_hash(one))


@settings(max_examples=150)
@given(raw_applications())
def test_valid_applications_parse_and_keep_all_secret_names(raw: dict[str, Any]) -> None:
    before = copy.deepcopy(raw)
    parsed = _parsed(raw)
    assert raw == before  # input untouched
    app = parsed.app
    expected = [raw["spec"][k]["secretName"] for k in ("kafka", "openSearch") if k in raw["spec"]]
    expected += [v["secretName"] for v in raw["spec"].get("valkey", [])]
    assert list(app.secret_names) == expected
    assert app.generation == raw["metadata"]["generation"]


@settings(max_examples=150)
@given(invalid_applications())
def test_parse_reports_every_injected_problem(case: tuple[dict[str, Any], frozenset[str]]) -> None:
    raw, expected_fields = case
    problems = _problems(raw)
    assert expected_fields <= set(problems)
    for message in problems.values():
        assert len(message) < 200
