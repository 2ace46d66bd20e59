"""diff(desired, existing): Create, a minimal merge patch that preserves everyone else's
metadata and data, or Unchanged."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from aivenator.adapters.kubernetes_common import merge_patch
from aivenator.domain import labels as L
from aivenator.domain.secrets import (
    Create,
    DesiredSecret,
    Unchanged,
    Update,
    diff,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.secrets import as_existing, render_all
from tests.unit.strategies import foreign_keys, parse_valid, raw_applications, section_inputs

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _desired() -> DesiredSecret:
    return DesiredSecret(
        namespace="team-a",
        name="s",
        data={"AIVEN_CA": b"ca", "VALKEY_HOST_C": b"h"},
        labels={"app": "myapp", "type": L.TYPE_VALUE},
        annotations={L.PROTECTED: "false"},
        owned_data_keys=frozenset({"AIVEN_CA", "VALKEY_HOST_C", "VALKEY_REPLICA_HOST_C"}),
        owned_labels=frozenset({"app", "type"}),
        owned_annotations=frozenset({L.PROTECTED, L.EXPIRES_AT}),
    )


def test_missing_secret_is_created_opaque_with_finalizer() -> None:
    change = diff(_desired(), None)
    assert isinstance(change, Create)
    body = change.body
    assert body["type"] == "Opaque" and body["kind"] == "Secret"
    assert body["metadata"]["finalizers"] == [L.FINALIZER]
    assert "ownerReferences" not in body["metadata"]
    assert body["data"] == {"AIVEN_CA": "Y2E=", "VALKEY_HOST_C": "aA=="}


def test_update_touches_only_our_keys_and_keeps_foreign_finalizers() -> None:
    existing = as_existing(_desired(), resource_version="42")
    existing["metadata"]["labels"]["app"] = "renamed"
    existing["metadata"]["labels"]["other"] = "x"
    existing["metadata"]["annotations"][L.EXPIRES_AT] = "stale"
    existing["metadata"]["finalizers"] = ["someone.else/finalizer"]
    existing["data"]["VALKEY_REPLICA_HOST_C"] = "cmVwbGljYQ=="
    existing["data"]["THEIRS"] = "eA=="
    change = diff(_desired(), existing)
    assert isinstance(change, Update)
    assert change.patch == {
        "metadata": {
            "labels": {"app": "myapp"},
            "annotations": {L.EXPIRES_AT: None},
            "finalizers": ["someone.else/finalizer", L.FINALIZER],
            "resourceVersion": "42",
        },
        "data": {"VALKEY_REPLICA_HOST_C": None},
    }
    patched = merge_patch(existing, change.patch)
    assert patched["metadata"]["labels"]["other"] == "x"
    assert patched["data"]["THEIRS"] == "eA=="
    assert isinstance(diff(_desired(), patched), Unchanged)


def test_identical_secret_is_unchanged() -> None:
    assert isinstance(diff(_desired(), as_existing(_desired())), Unchanged)


foreign = st.dictionaries(foreign_keys, st.text(max_size=20), max_size=4)


@settings(max_examples=40, deadline=None)
@given(
    st.data(),
    foreign,
    foreign,
    st.dictionaries(foreign_keys.map(str.upper), st.binary(max_size=10), max_size=3),
)
def test_foreign_metadata_and_data_always_survive_an_update(
    data: st.DataObject,
    foreign_labels: dict[str, str],
    foreign_annotations: dict[str, str],
    foreign_data: dict[str, bytes],
) -> None:
    app = parse_valid(data.draw(raw_applications()))
    inputs = data.draw(section_inputs(app))
    for secret in render_all(app, inputs, {}, NOW, "pw", "MAIN-CA"):
        labels_ = {k: v for k, v in foreign_labels.items() if k not in secret.owned_labels}
        annotations_ = {k: v for k, v in foreign_annotations.items() if k not in secret.owned_annotations}
        data_ = {k: v for k, v in foreign_data.items() if k not in secret.owned_data_keys}
        existing: dict[str, Any] = as_existing(secret, resource_version="7")
        existing["metadata"]["labels"].update(labels_)
        existing["metadata"]["annotations"].update(annotations_)
        existing["metadata"]["finalizers"] = ["other/finalizer"]
        existing["data"].update({k: base64.b64encode(v).decode() for k, v in data_.items()})
        # drift in our own keys: a changed value, a deleted label, a deleted data key
        mutate = data.draw(st.sampled_from(["value", "label", "data", "none"]))
        if mutate == "value":
            key = sorted(secret.data)[0]
            existing["data"][key] = "ZHJpZnQ="
        elif mutate == "label":
            existing["metadata"]["labels"].pop(L.TYPE_LABEL)
        elif mutate == "data":
            existing["data"].pop("AIVEN_CA")
        before = copy.deepcopy(existing)
        change = diff(secret, existing)
        assert existing == before  # diff never mutates its input
        assert isinstance(change, Update)  # at least the finalizer is missing
        assert change.patch["metadata"]["resourceVersion"] == "7"
        patched = merge_patch(existing, change.patch)
        for k, value in labels_.items():
            assert patched["metadata"]["labels"][k] == value
        for k, value in annotations_.items():
            assert patched["metadata"]["annotations"][k] == value
        for k, raw_value in data_.items():
            assert base64.b64decode(patched["data"][k]) == raw_value
        assert patched["metadata"]["finalizers"] == ["other/finalizer", L.FINALIZER]
        assert isinstance(diff(secret, patched), Unchanged)
        # the patch touches nothing that is not ours
        assert set(change.patch.get("data", {})) <= secret.owned_data_keys
        assert set(change.patch["metadata"].get("labels", {})) <= secret.owned_labels
        assert set(change.patch["metadata"].get("annotations", {})) <= secret.owned_annotations


def test_no_finalizer_is_added_to_a_terminating_secret() -> None:
    existing = as_existing(_desired())
    existing["metadata"]["finalizers"] = []
    existing["metadata"]["deletionTimestamp"] = "2026-11-27T12:00:00Z"
    assert isinstance(diff(_desired(), existing), Unchanged)
