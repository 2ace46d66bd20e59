"""Acceptance: the official `aiven-client` (unchanged) works against the simulator over HTTP.

If the simulator drifts from what Aiven's own Python client sends and expects (paths, wrapper
keys, bodies, status codes), these tests fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiven.client.client import AivenClient, Error
from aivenator.adapters.fakes.aiven import REDACTED, FakeAiven, FakeAivenServer
from cryptography import x509
from cryptography.x509.oid import NameOID

TOKEN = "conformance-token"
P = "dev-nais-dev"


@pytest.fixture
def fake() -> FakeAiven:
    return FakeAiven.with_default_seed(token=TOKEN)


@pytest.fixture
def server(fake: FakeAiven) -> Iterator[FakeAivenServer]:
    with fake.serve() as running:
        yield running


@pytest.fixture
def client(server: FakeAivenServer) -> AivenClient:
    avn = AivenClient(base_url=server.base_url)
    avn.set_auth_token(TOKEN)
    return avn


def test_project_ca(client: AivenClient, fake: FakeAiven) -> None:
    result: Any = client.get_project_ca(P)
    assert result["certificate"] == fake.project_ca_pem(P)
    x509.load_pem_x509_certificate(result["certificate"].encode())


def test_get_service(client: AivenClient) -> None:
    service = client.get_service(P, "kafka")
    assert service["service_name"] == "kafka" and service["state"] == "RUNNING"
    assert {c["kafka_authentication_method"] for c in service["components"] if c["component"] == "kafka"} == {
        "certificate",
        "sasl",
    }
    assert client.get_service("nav-prod", "nav-prod-kafka")["service_type"] == "kafka"


def test_missing_things_raise_client_errors_with_the_right_status(client: AivenClient) -> None:
    with pytest.raises(Error) as missing_service:
        client.get_service(P, "nope")
    assert missing_service.value.status == 404
    assert "Service nope does not exist" in str(missing_service.value)
    with pytest.raises(Error) as missing_project:
        client.get_project_ca("no-such-project")
    assert missing_project.value.status == 404
    with pytest.raises(Error) as missing_user:
        client.get_service_user(P, "kafka", "ghost")
    assert missing_user.value.status == 404


def test_bad_token_is_401(server: FakeAivenServer) -> None:
    avn = AivenClient(base_url=server.base_url)
    avn.set_auth_token("wrong")
    with pytest.raises(Error) as denied:
        avn.get_project_ca(P)
    assert denied.value.status == 401


def test_create_get_delete_kafka_service_user(client: AivenClient, fake: FakeAiven) -> None:
    created = client.create_service_user(P, "kafka", "team_app_0a1b2c3d_abc")
    assert created["username"] == "team_app_0a1b2c3d_abc" and created["type"] == "regular"
    cert = x509.load_pem_x509_certificate(created["access_cert"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(fake.project_ca_pem(P).encode()))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "team_app_0a1b2c3d_abc"
    got = client.get_service_user(P, "kafka", "team_app_0a1b2c3d_abc")
    assert got == created
    with pytest.raises(Error) as duplicate:
        client.create_service_user(P, "kafka", "team_app_0a1b2c3d_abc")
    assert duplicate.value.status == 409 and "already exists" in str(duplicate.value)
    client.delete_service_user(P, "kafka", "team_app_0a1b2c3d_abc")
    assert "team_app_0a1b2c3d_abc" not in fake.users(P, "kafka")
    with pytest.raises(Error) as gone:
        client.delete_service_user(P, "kafka", "team_app_0a1b2c3d_abc")
    assert gone.value.status == 404


def test_invalid_username_is_400(client: AivenClient) -> None:
    with pytest.raises(Error) as invalid:
        client.create_service_user(P, "kafka", "-bad")
    assert invalid.value.status == 400
    assert "Invalid input" in str(invalid.value)


def test_reset_service_user_password(client: AivenClient, fake: FakeAiven) -> None:
    client.create_service_user(P, "opensearch-team-a-logs", "team-a-rw-abc")
    result: Any = client.reset_service_user_password(
        P, "opensearch-team-a-logs", "team-a-rw-abc", "brand-new-pass"
    )
    assert result["service"]["service_name"] == "opensearch-team-a-logs"
    assert {u["password"] for u in result["service"]["users"]} == {REDACTED}
    assert (
        client.get_service_user(P, "opensearch-team-a-logs", "team-a-rw-abc")["password"] == "brand-new-pass"
    )
    assert fake.users(P, "opensearch-team-a-logs")["team-a-rw-abc"]["password"] == "brand-new-pass"


def test_service_level_credentials_reset_path_is_not_confused_with_users(client: AivenClient) -> None:
    # aiven-client's reset_service_credentials hits /service/{s}/credentials/reset, which the
    # simulator does not implement; it must fail cleanly rather than touch a user.
    with pytest.raises(Error) as missing:
        client.reset_service_credentials(P, "kafka")
    assert missing.value.status == 404


def test_set_access_control_and_acknowledge_renewal(client: AivenClient, fake: FakeAiven) -> None:
    client.create_service_user(P, "valkey-team-a-cache", "app-r-x1")
    access = {
        "valkey_acl_categories": ["-@all", "+@connection", "+@read"],
        "valkey_acl_commands": ["+info", "+cluster|slots"],
        "valkey_acl_keys": ["*"],
        "valkey_acl_channels": ["*"],
    }
    result: Any = client.set_service_user_access_control(P, "valkey-team-a-cache", "app-r-x1", access)
    assert result["service"]["service_name"] == "valkey-team-a-cache"
    assert client.get_service_user(P, "valkey-team-a-cache", "app-r-x1")["access_control"] == access
    with pytest.raises(Error) as not_valkey:
        client.set_service_user_access_control(P, "kafka", "avnadmin", access)
    assert not_valkey.value.status == 400
    client.create_service_user(P, "kafka", "renewer")
    client.acknowledge_service_user_certificate(P, "kafka", "renewer")


def test_opensearch_acl_get_and_update(client: AivenClient, fake: FakeAiven) -> None:
    initial: Any = client.list_service_elasticsearch_acl_config(P, "opensearch-team-a-logs")
    assert initial["elasticsearch_acl_config"]["acls"] == []
    assert initial["elasticsearch_acl_config"]["enabled"] is False
    updated: Any = client.update_service_elasticsearch_acl_config(
        P,
        "opensearch-team-a-logs",
        enabled=True,
        extended_acl=False,
        username="team-a-rw-abc",
        add_rules=["_*/readwrite", "*/readwrite"],
    )
    config = updated["elasticsearch_acl_config"]
    assert config["enabled"] is True
    assert config["acls"] == [
        {
            "username": "team-a-rw-abc",
            "rules": [{"index": "_*", "permission": "readwrite"}, {"index": "*", "permission": "readwrite"}],
        }
    ]
    assert fake.opensearch_acl(P, "opensearch-team-a-logs")["acls"] == config["acls"]
    client.update_service_elasticsearch_acl_config(
        P, "opensearch-team-a-logs", username="team-a-rw-abc", del_rules=[]
    )
    assert fake.opensearch_acl(P, "opensearch-team-a-logs")["acls"] == []
    assert fake.opensearch_acl(P, "opensearch-team-a-logs")["enabled"] is True


def test_kafka_acl_add_list_delete(client: AivenClient, fake: FakeAiven) -> None:
    added: Any = client.add_service_kafka_acl(P, "kafka", "readwrite", "team-a.orders", "team-a_app_*")
    assert isinstance(added["message"], str)  # the avn CLI prints it
    entry = added["acl"][-1]
    assert (entry["permission"], entry["topic"], entry["username"]) == (
        "readwrite",
        "team-a.orders",
        "team-a_app_*",
    )
    listed = client.get_service(P, "kafka")["acl"]  # what `avn service acl-list` reads
    assert listed == added["acl"] == fake.kafka_acl(P, "kafka")
    remaining: Any = client.delete_service_kafka_acl(P, "kafka", entry["id"])
    assert [a["id"] for a in remaining["acl"]] == ["default"]
    assert client.get_service(P, "kafka")["acl"] == remaining["acl"]
    with pytest.raises(Error) as missing:
        client.delete_service_kafka_acl(P, "kafka", entry["id"])
    assert missing.value.status == 404


def test_schema_registry_acl_add_list_delete(client: AivenClient) -> None:
    added: Any = client.add_service_kafka_schema_registry_acl(
        P, "kafka", "schema_registry_read", "Subject:team-a.*", "team-a_app_x"
    )
    entry = added["acl"][-1]
    assert entry["resource"] == "Subject:team-a.*"
    assert client.get_service(P, "kafka")["schema_registry_acl"] == added["acl"]
    remaining: Any = client.delete_service_kafka_schema_registry_acl(P, "kafka", entry["id"])
    assert entry["id"] not in [a["id"] for a in remaining["acl"]]


# --- fidelity findings (docs/aiven-fidelity.md) ---------------------------------------------------


def test_project_list_is_what_the_clients_call_to_verify_a_token(
    client: AivenClient, fake: FakeAiven
) -> None:
    projects = client.get_projects()
    assert {p["project_name"] for p in projects} == set(fake.projects())
    fake.forbid_project("nav-prod")
    assert "nav-prod" not in {p["project_name"] for p in client.get_projects()}


def test_project_list_fits_the_generated_go_client_types(server: FakeAivenServer) -> None:
    """avngen decodes `ProjectListOut`: these fields must have these JSON types."""
    body = httpx.get(
        f"{server.base_url}/v1/project?limit=999", headers={"Authorization": f"aivenv1 {TOKEN}"}
    ).json()
    assert isinstance(body["project_membership"], dict) and isinstance(body["project_memberships"], dict)
    for project in body["projects"]:
        for key in (
            "project_name",
            "account_id",
            "billing_address",
            "billing_group_id",
            "billing_group_name",
            "country",
            "country_code",
            "default_cloud",
            "estimated_balance",
            "organization_id",
            "payment_method",
            "vat_id",
        ):
            assert isinstance(project[key], str), key
        assert isinstance(project["billing_emails"], list)
        assert body["project_memberships"][project["project_name"]] == ["admin"]


def test_unknown_project_is_404_and_forbidden_project_is_403_with_aivens_bodies(
    server: FakeAivenServer, fake: FakeAiven
) -> None:
    headers = {"Authorization": f"aivenv1 {TOKEN}"}
    missing = httpx.get(f"{server.base_url}/v1/project/no-such-project/kms/ca", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Project does not exist",
        "errors": [{"message": "Project does not exist", "status": 404}],
    }
    fake.forbid_project(P)
    forbidden = httpx.get(f"{server.base_url}/v1/project/{P}/service/kafka", headers=headers)
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "message": "Not a project member",
        "errors": [{"message": "Not a project member", "status": 403}],
    }


def test_existing_user_on_create_is_409_with_already_exists_in_the_message(server: FakeAivenServer) -> None:
    """avngen's IsAlreadyExists needs status 409 and the substring `already exists`."""
    headers = {"Authorization": f"aivenv1 {TOKEN}"}
    url = f"{server.base_url}/v1/project/{P}/service/kafka/user?limit=999"
    assert httpx.post(url, headers=headers, json={"username": "dup_user"}).status_code == 200
    again = httpx.post(url, headers=headers, json={"username": "dup_user"})
    assert again.status_code == 409
    body = again.json()
    assert "already exists" in body["message"]
    assert body["errors"] == [{"message": body["message"], "status": 409}]


def test_limit_is_accepted_on_every_method_and_does_not_page(
    client: AivenClient, server: FakeAivenServer
) -> None:
    """avngen adds `limit=999` to every request; the simulator accepts it and never truncates."""
    headers = {"Authorization": f"aivenv1 {TOKEN}"}
    everything = httpx.get(f"{server.base_url}/v1/project/{P}/service", headers=headers).json()["services"]
    one = httpx.get(f"{server.base_url}/v1/project/{P}/service?limit=1", headers=headers).json()["services"]
    assert len(one) == len(everything) > 1
    created = httpx.post(
        f"{server.base_url}/v1/project/{P}/service/kafka/user?limit=999",
        headers=headers,
        json={"username": "lim"},
    )
    deleted = httpx.delete(
        f"{server.base_url}/v1/project/{P}/service/kafka/user/lim?limit=999", headers=headers
    )
    assert (created.status_code, deleted.status_code) == (200, 200)
