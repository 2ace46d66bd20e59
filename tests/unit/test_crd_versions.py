"""The two served versions of the AivenApplication CRD stay one schema (deploy/crds).

v2 must be exactly v1 without `spec.secretName` and with `secretName` required in `kafka`,
`openSearch` and every `valkey` item: any bound or field added to one version (maxLength,
maxItems, a new status field) must be added to the other, or this fails.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "aivenapplications.yaml"


def versions() -> dict[str, dict[str, Any]]:
    crd = yaml.safe_load(CRD.read_text())
    return {v["name"]: v for v in crd["spec"]["versions"]}


def _require(schema: dict[str, Any], field: str) -> None:
    schema["required"] = sorted({*schema.get("required", []), field})


def _normalised(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    out.pop("description", None)
    spec = out["properties"]["spec"]["properties"]
    for section in (spec["kafka"], spec["openSearch"], spec["valkey"]["items"]):
        section["required"] = sorted(section.get("required", []))
    return out


def test_v2_is_v1_without_the_top_level_name_and_with_required_section_names() -> None:
    v = versions()
    want = copy.deepcopy(v["v1"]["schema"]["openAPIV3Schema"])
    spec = want["properties"]["spec"]["properties"]
    del spec["secretName"]
    _require(spec["kafka"], "secretName")
    _require(spec["openSearch"], "secretName")
    _require(spec["valkey"]["items"], "secretName")
    assert _normalised(v["v2"]["schema"]["openAPIV3Schema"]) == _normalised(want)


def test_served_storage_and_deprecation_as_upstream() -> None:
    v = versions()
    assert [(n, x["served"], x["storage"]) for n, x in v.items()] == [("v1", True, True), ("v2", True, False)]
    assert v["v1"]["deprecated"] is True and v["v1"]["deprecationWarning"] == "deprecated, use v2"
    assert "deprecated" not in v["v2"]
    assert v["v1"]["subresources"] == v["v2"]["subresources"] == {"status": {}}
    columns = [
        (c["name"], c["type"], c["jsonPath"], c.get("priority")) for c in v["v2"]["additionalPrinterColumns"]
    ]
    assert columns == [
        ("Protected", "boolean", ".spec.protected", 10),
        ("Expires", "date", ".spec.expiresAt", 10),
        ("State", "string", ".status.synchronizationState", 20),
        ("Synced", "date", ".status.synchronizationTime", 30),
        ("Age", "date", ".metadata.creationTimestamp", 30),
    ]


def test_conversion_goes_to_the_webhook_with_review_v1() -> None:
    crd = yaml.safe_load(CRD.read_text())
    conversion = crd["spec"]["conversion"]
    assert conversion["strategy"] == "Webhook"
    assert conversion["webhook"]["conversionReviewVersions"] == ["v1"]
    assert conversion["webhook"]["clientConfig"]["service"]["path"] == "/convert"
    assert crd["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "aivenator/aivenator-webhook"
