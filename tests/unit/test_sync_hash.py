"""`status.synchronizationHash` is the Go operator's value, bit for bit.

Every expected value in `go_sync_hash_reference.json` was computed by the Go code itself
(encoding/json over the upstream v1 spec struct, then mitchellh/hashstructure v1.1.0); the first
four are the reference values of the compatibility issue.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aivenator.domain.parse import parse_application, spec_hash
from aivenator.domain.sync_hash import fnv1_64, go_spec_json, hashstructure_bytes, synchronization_hash
from hypothesis import given
from hypothesis import strategies as st

_TABLE: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "go_sync_hash_reference.json").read_text(encoding="utf-8")
)["cases"]


def test_the_table_holds_the_issue_reference_values_and_more() -> None:
    assert [c["hash"] for c in _TABLE[:4]] == [
        "c10acd527b776e1f",
        "5c36cd0b585d0f84",
        "6daca22a8d95f13a",
        "9265f549ad56469c",
    ]
    assert len(_TABLE) >= 30


@pytest.mark.parametrize("case", _TABLE, ids=[c["case"] for c in _TABLE])
def test_json_bytes_are_what_go_marshals(case: dict[str, Any]) -> None:
    assert go_spec_json(case["spec"]).decode("utf-8") == case["goJson"]


@pytest.mark.parametrize("case", _TABLE, ids=[c["case"] for c in _TABLE])
def test_hash_is_the_go_operators(case: dict[str, Any]) -> None:
    assert synchronization_hash(case["spec"]) == case["hash"]


def test_parsed_application_carries_the_go_hash() -> None:
    raw: dict[str, Any] = {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": "app", "namespace": "team", "generation": 1},
        "spec": {"kafka": {"pool": "nav-dev", "secretName": "s1"}},
    }
    app = parse_application(raw, frozenset({"nav-dev"})).unwrap().app
    assert app.spec_hash == "5c36cd0b585d0f84" == spec_hash(raw["spec"])


def test_fnv1_64_is_fnv1_not_fnv1a() -> None:
    # Published FNV-1 64 test vectors: "" -> offset basis, "a" -> af63bd4c8601b7be (FNV-1a gives af63dc4c8601ec8c).
    assert fnv1_64(b"") == 0xCBF29CE484222325
    assert fnv1_64(b"a") == 0xAF63BD4C8601B7BE


def test_an_empty_byte_slice_hashes_to_zero() -> None:
    assert hashstructure_bytes(b"") == 0


@given(st.binary(max_size=200))
def test_the_inlined_slice_fold_is_hashstructures_definition(data: bytes) -> None:
    # hashstructure folds each element into h as fnv1_64(le64(h) || le64(fnv1_64(element))).
    h = 0
    for byte in data:
        h = fnv1_64(h.to_bytes(8, "little") + fnv1_64(bytes([byte])).to_bytes(8, "little"))
    assert hashstructure_bytes(data) == h


_TEXT = st.text(max_size=8)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "secretName": _TEXT,
            "protected": st.booleans(),
            "kafka": st.fixed_dictionaries({}, optional={"pool": _TEXT, "secretName": _TEXT}),
            "openSearch": st.fixed_dictionaries(
                {}, optional={"instance": _TEXT, "access": _TEXT, "secretName": _TEXT}
            ),
            "valkey": st.lists(
                st.fixed_dictionaries({}, optional={"instance": _TEXT, "access": _TEXT, "secretName": _TEXT}),
                max_size=3,
            ),
        },
    )
)
def test_marshalled_json_is_the_spec_without_empty_values_and_without_raw_html_characters(
    spec: dict[str, Any],
) -> None:
    text = go_spec_json(spec).decode("utf-8")
    assert not {"<", ">", "&"} & set(text)

    def non_empty(section: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in section.items() if v not in ("", False, [])}

    expected = non_empty({k: v for k, v in spec.items() if k not in ("kafka", "openSearch", "valkey")})
    if "kafka" in spec:
        expected["kafka"] = {"pool": "", **non_empty(spec["kafka"])}
    if "openSearch" in spec:
        expected["openSearch"] = non_empty(spec["openSearch"])
    if spec.get("valkey"):
        expected["valkey"] = [non_empty(v) for v in spec["valkey"]]
    assert json.loads(text) == expected
    reordered = {k: spec[k] for k in reversed(list(spec))}
    assert synchronization_hash(reordered) == synchronization_hash(spec)
