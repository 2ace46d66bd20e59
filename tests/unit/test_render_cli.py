"""`aivenator render` on the shipped examples."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aivenator.domain import keystores
from aivenator.entrypoints.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples"
FACTS = str(EXAMPLES / "facts.yaml")
NOW = "2026-11-27T12:00:00Z"


def _render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _secrets(out: str) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(out) if doc and doc["kind"] == "Secret"
    }


@pytest.mark.parametrize(
    ("example", "names"),
    [
        ("kafka-only.yaml", {"aiven-myapp-kafka-2611271"}),
        (
            "all-services.yaml",
            {
                "aiven-orders-kafka-2611273",
                "aiven-orders-opensearch-2611273",
                "aiven-orders-valkey-sessions-2611273",
                "aiven-orders-valkey-cache-2611273",
            },
        ),
        ("protected-expiring.yaml", {"aiven-alice-debug-kafka", "aiven-alice-debug-valkey-cache"}),
    ],
)
def test_examples_render_masked(capsys: pytest.CaptureFixture[str], example: str, names: set[str]) -> None:
    code, out, err = _render(capsys, "-f", str(EXAMPLES / example), "--facts", FACTS, "--now", NOW)
    assert code == 0, err
    secrets = _secrets(out)
    assert set(secrets) == names
    for secret in secrets.values():
        assert secret["metadata"]["namespace"] == "team-a"
        assert secret["metadata"]["labels"]["type"] == "aivenator.aiven.nais.io"
        assert secret["metadata"]["finalizers"] == ["aivenator.aiven.nais.io/finalizer"]
        assert all(v.startswith("<masked") for v in secret["data"].values())
    assert "PRIVATE KEY" not in out and "fake-kafka-password" not in out


def test_show_secrets_prints_real_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _render(
        capsys, "-f", str(EXAMPLES / "all-services.yaml"), "--facts", FACTS, "--now", NOW, "--show-secrets"
    )
    assert code == 0, err
    secrets = _secrets(out)
    kafka = {k: base64.b64decode(v) for k, v in secrets["aiven-orders-kafka-2611273"]["data"].items()}
    assert kafka["KAFKA_BROKERS"] == b"dev-nais-dev-kafka.example.aivencloud.com:26484"
    assert kafka["KAFKA_SCHEMA_REGISTRY_USER"] == b"a_orders_f54c23b8_UAo"
    assert kafka["AIVEN_SECRET_UPDATED"] == b"2026-11-27T12:00:00Z"
    password = kafka["KAFKA_CREDSTORE_PASSWORD"].decode()
    assert len(password) >= 24
    assert keystores.truststore_holds(kafka["client.truststore.jks"], password, kafka["KAFKA_CA"].decode())
    annotations = secrets["aiven-orders-kafka-2611273"]["metadata"]["annotations"]
    assert annotations["kafka.aiven.nais.io/serviceName"] == "dev-nais-dev-kafka"
    sessions = secrets["aiven-orders-valkey-sessions-2611273"]
    assert base64.b64decode(sessions["data"]["VALKEY_USERNAME_SESSIONS"]) == b"orders-rw-UAo"
    assert "VALKEY_REPLICA_URI_SESSIONS" in sessions["data"]
    assert "VALKEY_REPLICA_URI_CACHE" not in secrets["aiven-orders-valkey-cache-2611273"]["data"]
    opensearch = secrets["aiven-orders-opensearch-2611273"]
    assert base64.b64decode(opensearch["data"]["OPEN_SEARCH_USERNAME"]) == b"team-a-rw-UAo"


def test_protected_example_carries_time_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _render(
        capsys, "-f", str(EXAMPLES / "protected-expiring.yaml"), "--facts", FACTS, "--now", NOW
    )
    assert code == 0
    for secret in _secrets(out).values():
        annotations = secret["metadata"]["annotations"]
        assert annotations["aivenator.aiven.nais.io/with-time-limit"] == "true"
        assert annotations["aivenator.aiven.nais.io/expires-at"] == "2026-12-31T12:00:00Z"
        assert secret["metadata"]["labels"]["aivenator.aiven.nais.io/protected"] == "true"


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _render(capsys, "-f", str(EXAMPLES / "kafka-only.yaml"), "--facts", FACTS, "-o", "json")
    assert code == 0
    listing = json.loads(out)
    assert listing["kind"] == "List" and [i["kind"] for i in listing["items"]] == ["Secret", "AivenApplication"]


def test_invalid_input_prints_every_problem(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = tmp_path / "bad.yaml"
    app.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "aiven.nais.io/v1",
                "kind": "AivenApplication",
                "metadata": {"name": "bad", "namespace": "team-a"},
                "spec": {
                    "kafka": {"pool": "elsewhere"},
                    "openSearch": {"instance": "logs", "access": "root"},
                },
            }
        )
    )
    code, out, err = _render(capsys, "-f", str(app), "--facts", FACTS)
    assert code == 1
    assert out == ""
    for field in (
        "spec.kafka.pool",
        "spec.kafka.secretName",
        "spec.openSearch.access",
        "spec.openSearch.secretName",
    ):
        assert field in err


def test_kafka_user_without_certificate_fails_clearly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = yaml.safe_load((EXAMPLES / "facts.yaml").read_text())
    for user in facts["users"]:
        user.pop("access_cert", None)
        user.pop("access_key", None)
    path = tmp_path / "facts.yaml"
    path.write_text(yaml.safe_dump(facts))
    code, _, err = _render(capsys, "-f", str(EXAMPLES / "kafka-only.yaml"), "--facts", str(path))
    assert code == 1
    assert "no client certificate and key" in err
    assert "fake-kafka-password" not in err


def test_missing_service_and_bad_now(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    facts = yaml.safe_load((EXAMPLES / "facts.yaml").read_text())
    facts["services"] = [s for s in facts["services"] if s["type"] != "opensearch"]
    path = tmp_path / "facts.yaml"
    path.write_text(yaml.safe_dump(facts))
    code, _, err = _render(capsys, "-f", str(EXAMPLES / "all-services.yaml"), "--facts", str(path))
    assert code == 1
    assert "opensearch-team-a-logs or logs" in err
    code, _, err = _render(capsys, "-f", str(EXAMPLES / "kafka-only.yaml"), "--facts", FACTS, "--now", "soon")
    assert code == 1 and "--now" in err


def test_the_last_item_is_the_application_with_the_status_the_operator_would_write(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Tooling compares `synchronizationHash` with what the Go operator wrote (issue 15 value)."""
    code, out, err = _render(
        capsys, "-f", str(EXAMPLES / "all-services.yaml"), "--facts", FACTS, "--now", NOW, "-o", "json"
    )
    assert code == 0, err
    items = json.loads(out)["items"]
    assert [i["kind"] for i in items] == ["Secret"] * 4 + ["AivenApplication"]
    app = items[-1]
    assert (app["metadata"]["namespace"], app["metadata"]["name"]) == ("team-a", "orders")
    status = app["status"]
    assert status["synchronizationHash"] == "c10acd527b776e1f"
    assert status["synchronizationState"] == "RolloutComplete"
    assert status["synchronizedGeneration"] == status["observedGeneration"] == 3
    assert status["synchronizationTime"] == NOW
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == ready["KafkaReady"] == ready["ValkeyReady-cache"] == "True"
