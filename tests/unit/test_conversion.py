"""aiven.nais.io v1 <-> v2 conversion and the ConversionReview handler (domain.conversion)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aivenator.domain import conversion as C
from aivenator.domain.parse import parse_application
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.strategies import ALLOWED_PROJECTS, dns_labels, raw_applications

names = dns_labels()
maybe_name = st.one_of(st.none(), st.just(""), names)


def _put(d: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    if value is not None:
        d[key] = value
    return d


@st.composite
def v1_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Any v1 object the schema admits: top-level and section names each present, empty or absent."""
    spec: dict[str, Any] = {}
    _put(spec, "secretName", draw(maybe_name))
    if draw(st.booleans()):
        spec["kafka"] = _put({"pool": draw(names)}, "secretName", draw(maybe_name))
    if draw(st.booleans()):
        spec["openSearch"] = _put(
            _put({}, "instance", draw(st.none() | names)), "secretName", draw(maybe_name)
        )
    if draw(st.booleans()):
        spec["valkey"] = [
            _put({"instance": i}, "secretName", draw(maybe_name)) for i in draw(st.lists(names, max_size=3))
        ]
    _put(spec, "protected", draw(st.none() | st.booleans()))
    obj: dict[str, Any] = {
        "apiVersion": C.V1,
        "kind": C.KIND,
        "metadata": {"name": draw(names), "namespace": draw(names), "uid": str(draw(st.uuids()))},
        "spec": spec,
    }
    if draw(st.booleans()):
        obj["status"] = {"synchronizationHash": draw(st.text("0123456789abcdef", max_size=16))}
    return obj


@st.composite
def v2_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Any v2 object the schema admits: no top-level secretName, every section names its Secret."""
    obj = draw(v1_objects())
    spec = obj["spec"]
    spec.pop("secretName", None)
    for section in ("kafka", "openSearch"):
        if section in spec:
            spec[section]["secretName"] = draw(names)
    for item in spec.get("valkey", []):
        item["secretName"] = draw(names)
    obj["apiVersion"] = C.V2
    return obj


@given(v1_objects())
def test_v1_to_v2_to_v1_keeps_every_sections_effective_secret_name(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    v2 = C.convert(obj, C.V2)
    back = C.convert(v2, C.V1)
    assert C.effective_secret_names(back) == C.effective_secret_names(obj)
    assert C.effective_secret_names(v2) == C.effective_secret_names(obj)
    assert obj == before  # the input is never mutated
    assert "secretName" not in v2["spec"]
    assert set(v2["spec"]) == set(obj["spec"]) - {"secretName"}  # no section created or lost
    assert v2["spec"].get("valkey") == obj["spec"].get("valkey")  # valkey untouched
    assert {k: v for k, v in v2.items() if k not in ("apiVersion", "spec")} == {
        k: v for k, v in obj.items() if k not in ("apiVersion", "spec")
    }


@given(v2_objects())
def test_v2_to_v1_to_v2_is_the_identity(obj: dict[str, Any]) -> None:
    v1 = C.convert(obj, C.V1)
    assert {**v1, "apiVersion": C.V2} == obj  # v2 -> v1 changes only apiVersion
    assert C.convert(v1, C.V2) == obj


@given(raw_applications())
def test_what_v2_produces_parses_exactly_like_its_v1_twin(raw: dict[str, Any]) -> None:
    """A valid app written as v2 and read as v1 gives the operator the same application."""
    twin = C.convert(C.convert(raw, C.V2), C.V1)
    a = parse_application(raw, ALLOWED_PROJECTS)
    b = parse_application(twin, ALLOWED_PROJECTS)
    assert a.unwrap().app == b.unwrap().app


def test_top_level_name_fills_kafka_and_opensearch_only_where_missing() -> None:
    obj = {
        "apiVersion": C.V1,
        "kind": C.KIND,
        "metadata": {"name": "a", "namespace": "t"},
        "spec": {
            "secretName": "legacy",
            "kafka": {"pool": "p"},
            "openSearch": {"instance": "logs", "secretName": "own"},
            "valkey": [{"instance": "cache"}],
        },
    }
    v2 = C.convert(obj, C.V2)
    assert v2["spec"] == {
        "kafka": {"pool": "p", "secretName": "legacy"},
        "openSearch": {"instance": "logs", "secretName": "own"},
        "valkey": [{"instance": "cache"}],
    }
    assert v2["apiVersion"] == "aiven.nais.io/v2"


def test_no_section_is_created_from_the_top_level_name() -> None:
    obj = {"apiVersion": C.V1, "kind": C.KIND, "metadata": {"name": "a"}, "spec": {"secretName": "x"}}
    assert C.convert(obj, C.V2)["spec"] == {}


def test_same_version_is_returned_unchanged() -> None:
    obj = {"apiVersion": C.V1, "kind": C.KIND, "metadata": {"name": "a"}, "spec": {"secretName": "x"}}
    assert C.convert(obj, C.V1) == obj


@pytest.mark.parametrize(
    ("obj", "desired", "message"),
    [
        ({"apiVersion": C.V1, "kind": C.KIND}, "aiven.nais.io/v3", "cannot convert to 'aiven.nais.io/v3'"),
        (
            {"apiVersion": "aiven.nais.io/v9", "kind": C.KIND, "metadata": {"name": "a"}},
            C.V2,
            "a: apiVersion",
        ),
        (
            {"apiVersion": C.V1, "kind": "Secret", "metadata": {"name": "a", "namespace": "t"}},
            C.V2,
            "t/a: kind",
        ),
        ({"apiVersion": C.V1, "kind": C.KIND, "spec": []}, C.V2, "object: spec is a list"),
        ("nope", C.V2, "object is a str"),
    ],
)
def test_bad_objects_are_refused_with_a_specific_message(obj: Any, desired: str, message: str) -> None:
    with pytest.raises(C.ConversionError, match="^" + message.replace("(", r"\(")):
        C.convert(obj, desired)


def _review(objects: list[Any], desired: str = C.V2, uid: str = "705ab4f5-1") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    }


def _app(name: str, version: str = C.V1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": version, "kind": C.KIND, "metadata": {"name": name, "namespace": "t"}, "spec": spec}


def test_review_converts_every_object_in_order_and_echoes_the_uid() -> None:
    objects = [_app("a", secretName="s", kafka={"pool": "p"}), _app("b", openSearch={"secretName": "o"})]
    answer = C.review(_review(objects, uid="uid-42"))
    assert answer["apiVersion"] == "apiextensions.k8s.io/v1"
    assert answer["kind"] == "ConversionReview"
    response = answer["response"]
    assert response["uid"] == "uid-42"
    assert response["result"] == {"status": "Success"}
    assert [o["metadata"]["name"] for o in response["convertedObjects"]] == ["a", "b"]
    assert all(o["apiVersion"] == C.V2 for o in response["convertedObjects"])
    assert response["convertedObjects"][0]["spec"] == {"kafka": {"pool": "p", "secretName": "s"}}


def test_review_honours_the_desired_version() -> None:
    answer = C.review(_review([_app("a", C.V2, kafka={"pool": "p", "secretName": "k"})], desired=C.V1))
    [obj] = answer["response"]["convertedObjects"]
    assert obj == _app("a", C.V1, kafka={"pool": "p", "secretName": "k"})


def test_review_fails_as_a_whole_naming_the_bad_object() -> None:
    objects = [
        _app("good"),
        {"apiVersion": "aiven.nais.io/v7", "kind": C.KIND, "metadata": {"name": "bad", "namespace": "t"}},
    ]
    response = C.review(_review(objects))["response"]
    assert response["uid"] == "705ab4f5-1"
    assert response["result"]["status"] == "Failure"
    assert response["result"]["message"].startswith("t/bad: apiVersion 'aiven.nais.io/v7'")
    assert response["convertedObjects"] == []


def test_review_without_desired_version_or_objects_is_a_failure_response() -> None:
    body = _review([])
    del body["request"]["desiredAPIVersion"]
    assert C.review(body)["response"]["result"] == {
        "status": "Failure",
        "message": "request has no desiredAPIVersion",
    }
    body = _review([])
    body["request"]["objects"] = None
    assert C.review(body)["response"]["result"]["message"] == "request has no objects list"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "ConversionReview", "request": {"uid": "x"}},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": {"objects": []}},
    ],
)
def test_review_refuses_what_is_not_a_conversion_review_request(body: Any) -> None:
    with pytest.raises(C.ConversionError):
        C.review(body)
