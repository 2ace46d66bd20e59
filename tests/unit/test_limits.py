"""Input limits: the CRD bounds every list and string, and the parser applies the same bounds.

The CRD is static YAML and `aivenator.domain.limits` holds the constants: these tests keep them
equal, so changing one without the other fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aivenator.domain import limits
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceType
from aivenator.domain.parse import InvalidSpec, parse_application
from aivenator.domain.sync import (
    MAX_OWN_CONDITIONS,
    VALKEY_READY,
    VALKEY_READY_PREFIX,
    Condition,
    ServiceResult,
    ServiceState,
    compute_status,
    status_events,
    transitions,
)
from returns.result import Failure, Success

from tests.unit.strategies import ALLOWED_PROJECTS

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "deploy" / "crds" / "aivenapplications.yaml"
CHART_CRD = REPO / "deploy" / "chart" / "aivenator" / "files" / "aivenapplications.crd.yaml"
#: Checked by the apiserver itself against the resource's group, version and kind.
SERVER_CHECKED = {"apiVersion", "kind"}


def _versions() -> list[dict[str, Any]]:
    crd = yaml.safe_load(CRD.read_text(encoding="utf-8"))
    versions: list[dict[str, Any]] = crd["spec"]["versions"]
    return versions


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


def _schema_at(version: dict[str, Any], path: str) -> dict[str, Any]:
    node: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def test_the_chart_ships_the_same_crd() -> None:
    assert CHART_CRD.read_bytes() == CRD.read_bytes()


@pytest.mark.parametrize("version", _versions(), ids=lambda v: str(v["name"]))
def test_every_string_and_list_in_the_crd_is_bounded(version: dict[str, Any]) -> None:
    unbounded = [
        path
        for path, node in _walk(version["schema"]["openAPIV3Schema"], "")
        if path.rsplit(".", 1)[-1] not in SERVER_CHECKED
        and (
            (node.get("type") == "string" and "maxLength" not in node and "enum" not in node)
            or (node.get("type") == "array" and "maxItems" not in node)
        )
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("path", "key", "limit"),
    [
        ("spec.valkey", "maxItems", limits.MAX_VALKEY),
        ("spec.valkey.[].secretName", "maxLength", limits.MAX_SECRET_NAME),
        ("spec.valkey.[].instance", "maxLength", limits.MAX_NAME),
        ("spec.kafka.pool", "maxLength", limits.MAX_NAME),
        ("spec.kafka.secretName", "maxLength", limits.MAX_SECRET_NAME),
        ("spec.openSearch.instance", "maxLength", limits.MAX_NAME),
        ("spec.openSearch.secretName", "maxLength", limits.MAX_SECRET_NAME),
        ("spec.secretName", "maxLength", limits.MAX_SECRET_NAME),
        ("spec.expiresAt", "maxLength", limits.MAX_TIMESTAMP),
        ("status.conditions", "maxItems", limits.MAX_CONDITIONS),
    ],
)
def test_crd_limits_equal_the_domain_constants(path: str, key: str, limit: int) -> None:
    """In every version (`spec.secretName` exists in v1 only)."""
    versions = [v for v in _versions() if v["name"] == "v1" or path != "spec.secretName"]
    assert versions
    for version in versions:
        assert _schema_at(version, path)[key] == limit, version["name"]


@pytest.mark.parametrize("version", _versions(), ids=lambda v: str(v["name"]))
def test_what_the_operator_writes_fits_the_status_schema(version: dict[str, Any]) -> None:
    condition = _schema_at(version, "status.conditions.[]")
    assert MAX_OWN_CONDITIONS <= limits.MAX_CONDITIONS
    assert condition["properties"]["message"]["maxLength"] >= limits.MAX_CONDITION_MESSAGE


def _raw(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "app", "namespace": "team", "generation": 1}, "spec": spec}


def _problems(spec: dict[str, Any]) -> dict[str, str]:
    result = parse_application(_raw(spec), ALLOWED_PROJECTS)
    assert isinstance(result, Failure), result
    invalid = result.failure()
    assert isinstance(invalid, InvalidSpec)
    return {p.field: p.message for p in invalid.problems}


def _valkey(count: int) -> list[dict[str, str]]:
    return [{"instance": f"v{i}", "secretName": f"s{i}"} for i in range(count)]


def test_the_largest_valkey_list_parses_and_one_more_is_refused_by_count() -> None:
    assert isinstance(
        parse_application(_raw({"valkey": _valkey(limits.MAX_VALKEY)}), ALLOWED_PROJECTS), Success
    )
    problems = _problems({"valkey": _valkey(limits.MAX_VALKEY + 1)})
    assert problems == {
        "spec.valkey": f"has {limits.MAX_VALKEY + 1} entries; at most {limits.MAX_VALKEY} are allowed"
    }


def test_a_huge_valkey_list_is_refused_with_one_problem() -> None:
    assert len(_problems({"valkey": _valkey(20_000)})) == 1


@pytest.mark.parametrize(
    ("spec", "field", "limit"),
    [
        ({"secretName": "s" * 254}, "spec.secretName", limits.MAX_SECRET_NAME),
        ({"kafka": {"pool": "p" * 254, "secretName": "k"}}, "spec.kafka.pool", limits.MAX_NAME),
        ({"kafka": {"pool": "dev-nais-dev", "secretName": "k" * 300}}, "spec.kafka.secretName", 253),
        ({"openSearch": {"instance": "i" * 10_000, "secretName": "o"}}, "spec.openSearch.instance", 253),
        ({"valkey": [{"instance": "v", "secretName": "s" * 254}]}, "spec.valkey[0].secretName", 253),
        ({"valkey": [{"instance": "v" * 254, "secretName": "s"}]}, "spec.valkey[0].instance", 253),
        ({"expiresAt": "2030-01-01T00:00:00" + "0" * 60 + "Z"}, "spec.expiresAt", limits.MAX_TIMESTAMP),
    ],
)
def test_an_over_long_string_is_refused_naming_the_field_and_the_limit(
    spec: dict[str, Any], field: str, limit: int
) -> None:
    message = _problems(spec)[field]
    assert message.endswith(f"characters long; at most {limit} are allowed")


def test_truncate_marks_what_it_cut() -> None:
    assert limits.truncate("abc", 3) == "abc"
    cut = limits.truncate("x" * 100, 40)
    assert len(cut) == 40 and cut.endswith("(truncated)")


# --- bounded output -------------------------------------------------------------------------------

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LONG_ERROR = "Aiven said no: " + "x" * 5000


def _largest_app() -> AivenApplication:
    spec = {
        "secretName": "d" * limits.MAX_SECRET_NAME,
        "kafka": {"pool": "dev-nais-dev", "secretName": "k"},
        "openSearch": {"instance": "logs", "secretName": "o"},
        "valkey": [
            {"instance": f"v{i}-" + "i" * 50, "secretName": f"s{i}-" + "s" * 240}
            for i in range(limits.MAX_VALKEY)
        ],
    }
    parsed = parse_application(_raw(spec), ALLOWED_PROJECTS)
    assert isinstance(parsed, Success), parsed
    app: AivenApplication = parsed.unwrap().app
    return app


def _results(app: AivenApplication, state: ServiceState) -> list[ServiceResult]:
    out = [ServiceResult(ServiceType.KAFKA, state, "", LONG_ERROR, name_note=LONG_ERROR)]
    out.append(ServiceResult(ServiceType.OPENSEARCH, state, "logs", LONG_ERROR, name_note=LONG_ERROR))
    out += [
        ServiceResult(ServiceType.VALKEY, state, v.instance, LONG_ERROR, name_note=LONG_ERROR)
        for v in app.valkey
    ]
    return out


#: An upper bound derived from the limits alone: every own condition at its longest message and
#: a generous allowance for its other fields.
STATUS_BOUND = MAX_OWN_CONDITIONS * (limits.MAX_CONDITION_MESSAGE + 600) + 1000


def test_the_status_of_the_largest_spec_failing_everywhere_is_bounded() -> None:
    app = _largest_app()
    status = compute_status(app, _results(app, ServiceState.AIVEN_FAILURE), NOW, None)
    size = len(json.dumps(status.to_dict()).encode())
    print(
        f"status of {limits.MAX_VALKEY} failing Valkey entries: {size} bytes, {len(status.conditions)} conditions"
    )
    assert size <= STATUS_BOUND
    assert len(status.conditions) <= MAX_OWN_CONDITIONS
    assert all(len(c.message) <= limits.MAX_CONDITION_MESSAGE for c in status.conditions)
    valkey = status.condition(VALKEY_READY)
    assert valkey is not None and valkey.status == "False"
    assert valkey.message.startswith(f"0 of {limits.MAX_VALKEY} Valkey instances ready: valkey/v0-")
    assert not any(c.type.startswith(VALKEY_READY_PREFIX) for c in status.conditions)
    # Stable: computing again from its own output changes nothing.
    later = compute_status(app, _results(app, ServiceState.AIVEN_FAILURE), NOW + timedelta(hours=1), status)
    assert later == status


def test_up_to_the_bound_each_valkey_instance_keeps_its_own_condition() -> None:
    app = _largest_app()
    few = replace(app, valkey=app.valkey[: limits.MAX_INSTANCE_CONDITIONS])
    status = compute_status(few, _results(few, ServiceState.READY), NOW, None)
    assert status.condition(VALKEY_READY) is None
    per_instance = [c for c in status.conditions if c.type.startswith(VALKEY_READY_PREFIX)]
    assert len(per_instance) == limits.MAX_INSTANCE_CONDITIONS


def test_growing_past_the_bound_swaps_per_instance_conditions_for_one() -> None:
    app = _largest_app()
    few = replace(app, valkey=app.valkey[: limits.MAX_INSTANCE_CONDITIONS])
    before = compute_status(few, _results(few, ServiceState.READY), NOW, None)
    after = compute_status(app, _results(app, ServiceState.READY), NOW, before)
    assert [c.type for c in after.conditions if c.type.startswith(VALKEY_READY)] == [VALKEY_READY]
    aggregate = after.condition(VALKEY_READY)
    assert aggregate is not None and aggregate.status == "True"
    assert aggregate.message == f"{limits.MAX_VALKEY} of {limits.MAX_VALKEY} Valkey instances ready"


def test_events_of_one_pass_are_bounded_and_the_rest_summarised() -> None:
    app = _largest_app()
    few = replace(app, valkey=app.valkey[: limits.MAX_INSTANCE_CONDITIONS])
    ok = compute_status(few, _results(few, ServiceState.READY), NOW, None)
    broken = compute_status(few, _results(few, ServiceState.LOCAL_FAILURE), NOW, ok)
    every = [t for t in transitions(ok, broken) if t.new_status is not None]
    assert len(every) > limits.MAX_EVENTS_PER_PASS  # the bound matters for this pass
    events = status_events(ok, broken)
    assert len(events) == limits.MAX_EVENTS_PER_PASS
    assert events[-1].reason == "MoreConditionChanges" and events[-1].type == "Warning"
    assert events[-1].message.startswith(
        f"{len(every) - limits.MAX_EVENTS_PER_PASS + 1} more condition changes"
    )
    assert all(len(e.message) <= limits.MAX_EVENT_MESSAGE for e in events)
    # A first status of the largest spec, all failing: still at most the bound.
    assert len(
        status_events(None, compute_status(app, _results(app, ServiceState.AIVEN_FAILURE), NOW, None))
    ) <= (limits.MAX_EVENTS_PER_PASS)


def test_other_writers_conditions_are_kept_up_to_the_crd_bound() -> None:
    app = _largest_app()
    own = compute_status(app, _results(app, ServiceState.READY), NOW, None)
    foreign = tuple(Condition(f"Other{i}", "True", "R", "m", "t", "t") for i in range(200))
    previous = replace(own, conditions=own.conditions + foreign)
    merged = compute_status(app, _results(app, ServiceState.READY), NOW, previous)
    assert len(merged.conditions) == limits.MAX_CONDITIONS
    assert merged.conditions[: len(own.conditions)] == own.conditions
