"""Packed informer entries: what goes in comes out, each read is a copy, and it is small."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aivenator.domain.references import WorkloadRefs
from aivenator.entrypoints.runtime.packing import CompactRefs, PackedObjects
from hypothesis import given
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_an_object_comes_back_equal(obj: dict[str, Any]) -> None:
    codec = PackedObjects()
    assert codec.unpack(codec.pack(obj)) == obj


def converged_app(i: int) -> dict[str, Any]:
    time = "2026-12-01T17:19:35Z"
    condition = {"status": "True", "lastUpdateTime": time, "lastTransitionTime": time, "message": ""}
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": f"app-{i:05d}",
            "namespace": "team-a",
            "labels": {"app": f"app-{i:05d}", "team": "team-a"},
            "uid": f"80ebc50b-58ea-4961-8237-{i:012d}",
            "creationTimestamp": time,
            "resourceVersion": str(1000 + i),
            "generation": 1,
        },
        "spec": {"kafka": {"pool": "dev-nais-dev", "secretName": f"app-{i:05d}-kafka"}},
        "status": {
            "synchronizationHash": "4a924aded1827106",
            "synchronizationState": "RolloutComplete",
            "synchronizationTime": time,
            "synchronizedGeneration": 1,
            "observedGeneration": 1,
            "conditions": [
                {"type": t, "reason": r, **condition}
                for t, r in (("Succeeded", "RolloutComplete"), ("Ready", "AllServicesReady"),
                             ("AivenFailure", "NoFailure"), ("KafkaReady", "Ready"))
            ],
        },
    }


def test_each_read_is_a_copy_the_caller_may_change() -> None:
    codec = PackedObjects()
    packed = codec.pack(converged_app(1))
    first = codec.unpack(packed)
    first["metadata"]["labels"]["app"] = "changed"
    first["status"]["conditions"].clear()
    assert codec.unpack(packed) == converged_app(1)


def test_a_converged_application_packs_to_a_fraction_of_its_json() -> None:
    codec = PackedObjects()
    for i in range(3):
        app = converged_app(i)
        packed = codec.pack(app)
        assert isinstance(packed, bytes)
        # about 1.2 KB of compact JSON, 2-3 KiB as Python dicts; stored in well under 400 bytes
        assert len(packed) < len(json.dumps(app, separators=(",", ":"))) / 3, len(packed)


def test_a_value_that_is_not_plain_data_is_refused() -> None:
    with pytest.raises(ValueError):
        PackedObjects().pack({"metadata": {"name": object()}})


def test_a_foreign_value_is_not_unpacked() -> None:
    with pytest.raises(TypeError):
        PackedObjects().unpack({"metadata": {}})


names = st.text(alphabet="abcdefghij-", min_size=1, max_size=12)


@given(names, st.sampled_from(["Pod", "Deployment", "CronJob"]), names, st.frozensets(names, max_size=5))
def test_workload_references_come_back_equal(namespace: str, kind: str, name: str, secrets: frozenset[str]) -> None:
    codec = CompactRefs()
    refs = WorkloadRefs(namespace, kind, name, secrets)
    assert codec.unpack(codec.pack(refs)) == refs


def test_pods_of_one_app_share_one_copy_of_each_secret_name() -> None:
    codec = CompactRefs()
    packed = [
        codec.pack(WorkloadRefs("team-a", "Pod", f"pod-{i}", frozenset({"".join(["app-1", "-kafka"])})))
        for i in range(3)
    ]
    assert all(isinstance(p, tuple) for p in packed)
    names = [p[3] for p in packed if isinstance(p, tuple)]
    assert names[0] is names[1] is names[2]
