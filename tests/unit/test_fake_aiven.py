"""The Aiven simulator speaks the wire contract of aiven-api.md (checked through MockTransport)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aivenator.adapters.fakes.aiven import REDACTED, FakeAiven
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOKEN = "test-token"
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
P = "dev-nais-dev"
BASE = f"/v1/project/{P}"
USERNAME_RE = re.compile(r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,63}$")


def make_fake(**kw: Any) -> FakeAiven:
    kw.setdefault("clock", lambda: NOW)
    return FakeAiven.with_default_seed(token=TOKEN, **kw)


def client_for(fake: FakeAiven, auth: str | None = f"aivenv1 {TOKEN}") -> httpx.Client:
    headers = {"Authorization": auth} if auth is not None else {}
    return httpx.Client(transport=fake.mock_transport(), base_url="https://api.aiven.io", headers=headers)


@pytest.fixture
def fake() -> FakeAiven:
    return make_fake()


@pytest.fixture
def api(fake: FakeAiven) -> Iterator[httpx.Client]:
    with client_for(fake) as client:
        yield client


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert body["errors"] == [{"message": body["message"], "status": response.status_code}]
    message: str = body["message"]
    return message


# ---- auth, query, routing ------------------------------------------------------------------------


def test_requests_without_a_token_get_401_with_aivens_error_shape(fake: FakeAiven) -> None:
    with client_for(fake, auth=None) as anonymous:
        response = anonymous.get(f"{BASE}/kms/ca")
    assert response.status_code == 401
    assert response.json() == {
        "message": "Missing (expired) db token",
        "errors": [{"message": "Missing (expired) db token", "status": 401}],
    }


@pytest.mark.parametrize("auth", ["aivenv1 wrong", "Basic dGVzdA==", f"aivenv1{TOKEN}", "Bearer", ""])
def test_wrong_tokens_and_schemes_are_rejected(fake: FakeAiven, auth: str) -> None:
    with client_for(fake, auth=auth) as client:
        assert client.get(f"{BASE}/kms/ca").status_code == 401


@pytest.mark.parametrize("scheme", ["aivenv1", "Bearer", "bearer"])
def test_both_aiven_and_bearer_schemes_are_accepted(fake: FakeAiven, scheme: str) -> None:
    with client_for(fake, auth=f"{scheme} {TOKEN}") as client:
        assert client.get(f"{BASE}/kms/ca").status_code == 200


def test_unknown_query_parameters_are_ignored(api: httpx.Client) -> None:
    response = api.get(
        f"{BASE}/service/kafka", params={"limit": "999", "whatever": "x", "include_secrets": "true"}
    )
    assert response.status_code == 200
    assert response.json()["service"]["service_name"] == "kafka"


def test_unknown_project_is_404_project_does_not_exist(api: httpx.Client) -> None:
    for path in (
        "/v1/project/nope/kms/ca",
        "/v1/project/nope/service/kafka",
        "/v1/project/nope/service/kafka/user/x",
    ):
        response = api.get(path)
        assert response.status_code == 404
        assert error_of(response) == "Project does not exist"


def test_unknown_service_is_404_naming_the_service(api: httpx.Client) -> None:
    response = api.post(f"{BASE}/service/kafka-gone/user", json={"username": "u1"})
    assert response.status_code == 404
    assert error_of(response) == "Service kafka-gone does not exist"
    assert re.search(r"Service \S+ does not exist", response.text)


def test_unknown_routes_and_wrong_methods_are_rejected(api: httpx.Client) -> None:
    assert api.get("/v1/nothing").status_code == 404
    assert api.get(f"{BASE}/service/kafka/topic").status_code == 404
    assert api.delete(f"{BASE}/service/kafka").status_code == 405


def test_routing_uses_decoded_path_segments(fake: FakeAiven) -> None:
    fake.add_project("my project")
    fake.add_service("my project", "odd/name", "opensearch")
    with client_for(fake) as api:
        assert api.get("/v1/project/my%20project/kms/ca").status_code == 200
        response = api.get("/v1/project/my%20project/service/odd%2Fname")
    assert response.status_code == 200
    assert response.json()["service"]["service_name"] == "odd/name"
    assert fake.request_log[-1].path == "/v1/project/my project/service/odd/name"


# ---- project CA ----------------------------------------------------------------------------------


def test_project_ca_is_a_stable_self_signed_ca_under_the_certificate_key(
    api: httpx.Client, fake: FakeAiven
) -> None:
    first = api.get(f"{BASE}/kms/ca")
    assert first.status_code == 200
    assert set(first.json()) == {"certificate"}
    pem = first.json()["certificate"]
    assert api.get(f"{BASE}/kms/ca").json()["certificate"] == pem == fake.project_ca_pem(P)
    ca = x509.load_pem_x509_certificate(pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    ca.verify_directly_issued_by(ca)
    other = api.get("/v1/project/nav-prod/kms/ca").json()["certificate"]
    assert other != pem


# ---- service objects -----------------------------------------------------------------------------


def test_kafka_service_has_cert_and_sasl_listeners_and_schema_registry(api: httpx.Client) -> None:
    body = api.get(f"{BASE}/service/kafka", params={"include_secrets": "true"}).json()
    assert set(body) == {"service"}
    svc = body["service"]
    assert (svc["service_type"], svc["state"]) == ("kafka", "RUNNING")
    kafka = [c for c in svc["components"] if c["component"] == "kafka"]
    by_method = {c["kafka_authentication_method"]: c for c in kafka}
    assert set(by_method) == {"certificate", "sasl"}
    assert by_method["certificate"]["port"] != by_method["sasl"]["port"]
    assert all(isinstance(c["port"], int) and c["usage"] == "primary" for c in svc["components"])
    assert [c["component"] for c in svc["components"]].count("schema_registry") == 1
    assert svc["service_uri_params"]["port"] == str(by_method["certificate"]["port"])
    assert svc["service_uri"] == f"{by_method['certificate']['host']}:{by_method['certificate']['port']}"
    info = svc["connection_info"]
    assert isinstance(info["kafka"], list) and all(isinstance(x, str) for x in info["kafka"])
    for key in ("kafka_access_cert", "kafka_access_key", "schema_registry_uri"):
        assert isinstance(info[key], str) and info[key]
    assert svc["user_config"]["schema_registry"] is True
    assert svc["user_config"]["kafka_authentication_methods"] == {"certificate": True, "sasl": True}
    assert svc["acl"] == [{"id": "default", "permission": "admin", "topic": "*", "username": "avnadmin"}]
    assert [u["username"] for u in svc["users"]] == ["avnadmin"]
    assert svc["users"][0]["type"] == "primary"


@pytest.mark.parametrize("service", ["kafka", "opensearch-team-a-logs", "valkey-team-a-cache"])
def test_service_objects_respect_the_type_traps(api: httpx.Client, service: str) -> None:
    svc = api.get(f"{BASE}/service/{service}").json()["service"]
    assert all(isinstance(v, str) for v in svc["service_uri_params"].values())
    for key in ("create_time", "update_time"):
        assert datetime.fromisoformat(svc[key].replace("Z", "+00:00")) == NOW
    assert "errors" not in svc
    for value in svc["connection_info"].values():
        assert isinstance(value, (str, list))
    list_keys = {"kafka", "opensearch", "valkey", "valkey_slave"}
    for key, value in svc["connection_info"].items():
        assert isinstance(value, list) == (key in list_keys), key
    assert svc["service_integrations"] == [] and isinstance(svc["termination_protection"], bool)


def test_opensearch_service_has_opensearch_and_dashboards(api: httpx.Client) -> None:
    svc = api.get(f"{BASE}/service/opensearch-team-a-logs").json()["service"]
    assert {c["component"] for c in svc["components"]} == {"opensearch", "opensearch_dashboards"}
    assert {"host", "port", "user", "password"} <= set(svc["service_uri_params"])
    assert svc["users"][0]["username"] == "avnadmin"
    legacy = api.get(f"{BASE}/service/legacy-search").json()["service"]
    assert {c["component"] for c in legacy["components"]} == {"opensearch"}


def test_valkey_replica_component_exists_only_when_seeded(api: httpx.Client) -> None:
    cache = api.get(f"{BASE}/service/valkey-team-a-cache").json()["service"]
    usages = sorted(c["usage"] for c in cache["components"] if c["component"] == "valkey")
    assert usages == ["primary", "replica"]
    assert cache["service_uri_params"]["ssl"] == "required"
    assert cache["users"][0]["username"] == "default"
    sessions = api.get(f"{BASE}/service/valkey-team-a-sessions").json()["service"]
    assert [c["usage"] for c in sessions["components"]] == ["primary"]
    assert sessions["connection_info"]["valkey_slave"] == []
    assert "valkey_replica_uri" not in sessions["connection_info"]


def test_service_list_returns_every_service_of_the_project(api: httpx.Client) -> None:
    names = [s["service_name"] for s in api.get(f"{BASE}/service").json()["services"]]
    assert names == [
        "kafka",
        "opensearch-team-a-logs",
        "legacy-search",
        "valkey-team-a-cache",
        "valkey-team-a-sessions",
    ]


# ---- service users -------------------------------------------------------------------------------


def test_kafka_user_gets_a_client_cert_signed_by_the_project_ca(api: httpx.Client, fake: FakeAiven) -> None:
    response = api.post(f"{BASE}/service/kafka/user", json={"username": "team_app_1a2b3c4d_xyz"})
    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["username"], user["type"]) == ("team_app_1a2b3c4d_xyz", "regular")
    assert user["password"] and user["password"] != REDACTED
    cert = x509.load_pem_x509_certificate(user["access_cert"].encode())
    ca = x509.load_pem_x509_certificate(fake.project_ca_pem(P).encode())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "team_app_1a2b3c4d_xyz"
    key = serialization.load_pem_private_key(user["access_key"].encode(), password=None)
    public = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey)
    assert key.public_key().public_numbers() == public.public_numbers()
    expected_end = NOW + timedelta(days=365)
    assert cert.not_valid_after_utc == expected_end
    assert user["access_cert_not_valid_after_time"] == expected_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert user["access_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_cert_validity_is_configurable() -> None:
    fake = make_fake(cert_validity=timedelta(days=2))
    with client_for(fake) as api:
        user = api.post(f"{BASE}/service/kafka/user", json={"username": "short"}).json()["user"]
    assert user["access_cert_not_valid_after_time"] == "2026-06-03T12:00:00Z"


def test_created_user_shows_up_in_get_and_in_the_service_users(api: httpx.Client, fake: FakeAiven) -> None:
    created = api.post(f"{BASE}/service/kafka/user", json={"username": "app1"}).json()["user"]
    got = api.get(f"{BASE}/service/kafka/user/app1", params={"include_secrets": "true"}).json()
    assert set(got) == {"user"}
    assert got["user"] == created
    listed = api.get(f"{BASE}/service/kafka").json()["service"]["users"]
    assert [u["username"] for u in listed] == ["avnadmin", "app1"]
    assert set(fake.users(P, "kafka")) == {"avnadmin", "app1"}


def test_duplicate_user_is_409_already_exists(api: httpx.Client) -> None:
    assert (
        api.post(f"{BASE}/service/opensearch-team-a-logs/user", json={"username": "dup"}).status_code == 200
    )
    again = api.post(f"{BASE}/service/opensearch-team-a-logs/user", json={"username": "dup"})
    assert again.status_code == 409
    assert "already exists" in error_of(again)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"username": "a" * 65}, "too long"),
        ({"username": "-leading-dash"}, "does not match"),
        ({"username": ".leading-dot"}, "does not match"),
        ({"username": "has space"}, "does not match"),
        ({"username": "star*"}, "does not match"),
        ({"username": ""}, "too short"),
        ({"username": 12}, "must be a string"),
        ({}, "required property"),
        ({"username": "ok", "access_control": "all"}, "access_control"),
        ({"username": "ok", "access_control": {"valkey_acl_keys": "*"}}, "valkey_acl_keys"),
    ],
)
def test_invalid_create_bodies_are_400_invalid_input(
    api: httpx.Client, body: dict[str, Any], reason: str
) -> None:
    response = api.post(f"{BASE}/service/valkey-team-a-cache/user", json=body)
    assert response.status_code == 400
    message = error_of(response)
    assert message.startswith("Invalid input: ") and reason in message


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"username"'])
def test_non_object_bodies_are_400(api: httpx.Client, raw: bytes) -> None:
    response = api.post(
        f"{BASE}/service/kafka/user", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response).startswith("Invalid input: ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.from_regex(USERNAME_RE, fullmatch=True),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=70),
    )
)
def test_usernames_are_accepted_exactly_when_they_match_the_pattern(username: str) -> None:
    fake = make_fake()
    with client_for(fake) as api:
        response = api.post(f"{BASE}/service/opensearch-team-a-logs/user", json={"username": username})
    valid = USERNAME_RE.fullmatch(username) is not None and username != "avnadmin"
    assert response.status_code == (200 if valid else 409 if username == "avnadmin" else 400)


def test_sixty_four_character_username_is_the_longest_accepted(api: httpx.Client) -> None:
    assert api.post(f"{BASE}/service/kafka/user", json={"username": "a" * 64}).status_code == 200


def test_missing_user_is_404(api: httpx.Client) -> None:
    for response in (
        api.get(f"{BASE}/service/kafka/user/ghost"),
        api.delete(f"{BASE}/service/kafka/user/ghost"),
        api.put(f"{BASE}/service/kafka/user/ghost", json={"operation": "reset-credentials"}),
        api.put(f"{BASE}/service/kafka/user/ghost/credentials/reset"),
    ):
        assert response.status_code == 404
        assert error_of(response) == "Service user does not exist"


def test_delete_removes_the_user_everywhere(api: httpx.Client, fake: FakeAiven) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "bye"})
    response = api.delete(f"{BASE}/service/kafka/user/bye", params={"limit": "999"})
    assert response.status_code == 200
    assert response.json() == {"message": "deleted"}
    assert "bye" not in fake.users(P, "kafka")
    service_users = api.get(f"{BASE}/service/kafka").json()["service"]["users"]
    assert "bye" not in [u["username"] for u in service_users]
    assert api.delete(f"{BASE}/service/kafka/user/bye").status_code == 404


def test_the_built_in_admin_cannot_be_deleted(api: httpx.Client, fake: FakeAiven) -> None:
    response = api.delete(f"{BASE}/service/kafka/user/avnadmin")
    assert response.status_code == 400
    assert "avnadmin" in fake.users(P, "kafka")


def test_out_of_band_deletion_is_visible_to_clients(api: httpx.Client, fake: FakeAiven) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "oob"})
    fake.delete_user_out_of_band(P, "kafka", "oob")
    assert api.get(f"{BASE}/service/kafka/user/oob").status_code == 404


# ---- redaction -----------------------------------------------------------------------------------


def test_without_redaction_mode_gets_show_plaintext(api: httpx.Client) -> None:
    created = api.post(f"{BASE}/service/kafka/user", json={"username": "plain"}).json()["user"]
    got = api.get(f"{BASE}/service/kafka/user/plain").json()["user"]
    assert got["password"] == created["password"] != REDACTED


def test_redaction_mode_hides_secrets_unless_include_secrets_is_true() -> None:
    fake = make_fake(redact_by_default=True)
    with client_for(fake) as api:
        created = api.post(f"{BASE}/service/kafka/user", json={"username": "r1"}).json()["user"]
        assert created["password"] != REDACTED and created["access_key"].startswith("-----BEGIN")
        hidden = api.get(f"{BASE}/service/kafka/user/r1").json()["user"]
        assert hidden["password"] == REDACTED and hidden["access_key"] == REDACTED
        assert hidden["access_cert"] == created["access_cert"]
        for flag in ("false", "no"):
            got = api.get(f"{BASE}/service/kafka/user/r1", params={"include_secrets": flag}).json()["user"]
            assert got["password"] == REDACTED
        shown = api.get(f"{BASE}/service/kafka/user/r1", params={"include_secrets": "true"}).json()["user"]
        assert shown == created
        svc = api.get(f"{BASE}/service/kafka").json()["service"]
        assert {u["password"] for u in svc["users"]} == {REDACTED}
        assert svc["connection_info"]["kafka_access_key"] == REDACTED
        svc = api.get(f"{BASE}/service/kafka", params={"include_secrets": "true"}).json()["service"]
        assert REDACTED not in {u["password"] for u in svc["users"]}
        os_svc = api.get(f"{BASE}/service/opensearch-team-a-logs").json()["service"]
        assert os_svc["service_uri_params"]["password"] == REDACTED
        assert REDACTED in os_svc["service_uri"]


def test_put_answers_always_redact(api: httpx.Client) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "p1"})
    for response in (
        api.put(f"{BASE}/service/kafka/user/p1", json={"operation": "reset-credentials"}),
        api.put(f"{BASE}/service/kafka/user/p1/credentials/reset"),
    ):
        assert response.status_code == 200
        users = response.json()["service"]["users"]
        assert {u["password"] for u in users} == {REDACTED}


# ---- credential and access-control changes -------------------------------------------------------


def test_reset_credentials_with_a_chosen_password(api: httpx.Client, fake: FakeAiven) -> None:
    before = api.post(f"{BASE}/service/kafka/user", json={"username": "rot"}).json()["user"]
    response = api.put(
        f"{BASE}/service/kafka/user/rot",
        json={"operation": "reset-credentials", "new_password": "s3cret-pass"},
    )
    assert response.status_code == 200
    assert response.json()["service"]["service_name"] == "kafka"
    after = fake.users(P, "kafka")["rot"]
    assert after["password"] == "s3cret-pass"
    assert after["access_cert"] == before["access_cert"]


def test_reset_credentials_without_a_password_generates_one(api: httpx.Client, fake: FakeAiven) -> None:
    before = api.post(f"{BASE}/service/valkey-team-a-cache/user", json={"username": "rot"}).json()["user"]
    api.put(f"{BASE}/service/valkey-team-a-cache/user/rot", json={"operation": "reset-credentials"})
    middle = fake.users(P, "valkey-team-a-cache")["rot"]["password"]
    assert middle != before["password"]
    assert api.put(f"{BASE}/service/valkey-team-a-cache/user/rot/credentials/reset").status_code == 200
    assert fake.users(P, "valkey-team-a-cache")["rot"]["password"] not in (middle, before["password"])


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"operation": "rotate"},
        {"operation": "reset-credentials", "new_password": "short"},
        {"operation": "reset-credentials", "new_password": "x" * 257},
        {"operation": "set-access-control"},
    ],
)
def test_bad_modify_bodies_are_400(api: httpx.Client, body: dict[str, Any]) -> None:
    api.post(f"{BASE}/service/valkey-team-a-cache/user", json={"username": "m1"})
    response = api.put(f"{BASE}/service/valkey-team-a-cache/user/m1", json=body)
    assert response.status_code == 400
    assert error_of(response).startswith("Invalid input: ")


def test_valkey_access_control_is_stored_on_create_and_replaced_by_set_access_control(
    api: httpx.Client, fake: FakeAiven
) -> None:
    acl = {
        "valkey_acl_categories": ["-@all", "+@read"],
        "valkey_acl_commands": ["+info"],
        "valkey_acl_keys": ["*"],
        "valkey_acl_channels": ["*"],
    }
    created = api.post(
        f"{BASE}/service/valkey-team-a-cache/user", json={"username": "v1", "access_control": acl}
    )
    assert created.json()["user"]["access_control"] == acl
    new_acl = {
        "valkey_acl_categories": ["-@all", "+@write"],
        "valkey_acl_commands": None,
        "valkey_acl_keys": ["app:*"],
    }
    response = api.put(
        f"{BASE}/service/valkey-team-a-cache/user/v1",
        json={"operation": "set-access-control", "access_control": new_acl},
    )
    assert response.status_code == 200
    assert fake.users(P, "valkey-team-a-cache")["v1"]["access_control"] == {
        "valkey_acl_categories": ["-@all", "+@write"],
        "valkey_acl_commands": [],
        "valkey_acl_keys": ["app:*"],
    }


def test_valkey_user_without_access_control_gets_the_default(api: httpx.Client) -> None:
    user = api.post(f"{BASE}/service/valkey-team-a-sessions/user", json={"username": "v2"}).json()["user"]
    assert user["access_control"]["valkey_acl_keys"] == ["*"]
    assert "access_cert" not in user


def test_set_access_control_on_non_valkey_is_400(api: httpx.Client) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "k1"})
    response = api.put(
        f"{BASE}/service/kafka/user/k1",
        json={"operation": "set-access-control", "access_control": {"valkey_acl_keys": ["*"]}},
    )
    assert response.status_code == 400


def test_acknowledge_renewal_is_accepted(api: httpx.Client) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "k2"})
    response = api.put(f"{BASE}/service/kafka/user/k2", json={"operation": "acknowledge-renewal"})
    assert response.status_code == 200 and "service" in response.json()


def test_user_writes_on_a_service_that_is_not_running_are_503(api: httpx.Client, fake: FakeAiven) -> None:
    fake.set_service_state(P, "kafka", "REBUILDING")
    assert api.get(f"{BASE}/service/kafka").json()["service"]["state"] == "REBUILDING"
    response = api.post(f"{BASE}/service/kafka/user", json={"username": "early"})
    assert response.status_code == 503
    assert "not running" in error_of(response)
    assert "early" not in fake.users(P, "kafka")
    fake.set_service_state(P, "kafka", "REBALANCING")
    assert api.post(f"{BASE}/service/kafka/user", json={"username": "early"}).status_code == 200


# ---- OpenSearch ACL ------------------------------------------------------------------------------

OS = f"{BASE}/service/opensearch-team-a-logs/opensearch/acl"


def test_opensearch_acl_starts_disabled_and_empty(api: httpx.Client) -> None:
    response = api.get(OS)
    assert response.status_code == 200
    assert response.json() == {"opensearch_acl_config": {"acls": [], "enabled": False, "extendedAcl": False}}


def test_opensearch_acl_post_replaces_the_whole_document(api: httpx.Client, fake: FakeAiven) -> None:
    acl = {"username": "team-a-rw-abc", "rules": [{"index": "_*", "permission": "readwrite"}]}
    first = api.post(OS, json={"opensearch_acl_config": {"acls": [acl], "enabled": True}})
    assert first.status_code == 200
    assert first.json()["opensearch_acl_config"]["acls"] == [acl]
    second = api.post(OS, json={"opensearch_acl_config": {"acls": None, "enabled": False}})
    assert second.json()["opensearch_acl_config"] == {"acls": [], "enabled": False, "extendedAcl": False}
    assert fake.opensearch_acl(P, "opensearch-team-a-logs")["acls"] == []


def test_opensearch_acl_put_changes_only_given_fields(api: httpx.Client) -> None:
    acl = {"username": "u", "rules": [{"index": "logs-*", "permission": "read"}]}
    api.post(OS, json={"opensearch_acl_config": {"acls": [acl], "enabled": False}})
    enabled = api.put(OS, json={"opensearch_acl_config": {"enabled": True}}).json()["opensearch_acl_config"]
    assert enabled["acls"] == [acl] and enabled["enabled"] is True
    replaced = api.put(OS, json={"opensearch_acl_config": {"acls": [], "extendedAcl": True}})
    assert replaced.json()["opensearch_acl_config"] == {"acls": [], "enabled": True, "extendedAcl": True}


def test_opensearch_acl_is_one_document_per_service(api: httpx.Client) -> None:
    api.post(OS, json={"opensearch_acl_config": {"acls": [], "enabled": True}})
    other = api.get(f"{BASE}/service/legacy-search/opensearch/acl").json()["opensearch_acl_config"]
    assert other["enabled"] is False


def test_opensearch_acl_is_also_served_under_the_legacy_elasticsearch_path(api: httpx.Client) -> None:
    api.post(OS, json={"opensearch_acl_config": {"acls": [], "enabled": True}})
    legacy = api.get(f"{BASE}/service/opensearch-team-a-logs/elasticsearch/acl").json()
    assert legacy == {"elasticsearch_acl_config": {"acls": [], "enabled": True, "extendedAcl": False}}


@pytest.mark.parametrize(
    "config",
    [
        {"acls": "all", "enabled": True},
        {"acls": [{"username": "u", "rules": [{"index": "*", "permission": "superuser"}]}], "enabled": True},
        {"acls": [{"rules": []}], "enabled": True},
        {"acls": [], "enabled": "yes"},
    ],
)
def test_bad_opensearch_acl_documents_are_400(api: httpx.Client, config: dict[str, Any]) -> None:
    response = api.post(OS, json={"opensearch_acl_config": config})
    assert response.status_code == 400
    assert api.post(OS, json={"acls": []}).status_code == 400


def test_opensearch_acl_on_a_non_opensearch_service_is_400(api: httpx.Client) -> None:
    assert api.get(f"{BASE}/service/kafka/opensearch/acl").status_code == 400


# ---- Kafka and Schema Registry ACLs --------------------------------------------------------------

ACL = f"{BASE}/service/kafka/acl"
SR_ACL = f"{BASE}/service/kafka/kafka/schema-registry/acl"


def test_kafka_acl_add_returns_the_full_list_and_stays_in_sync_with_the_service(api: httpx.Client) -> None:
    entry = {"permission": "readwrite", "topic": "team-a.orders", "username": "team-a_app_*"}
    response = api.post(ACL, json=entry)
    assert response.status_code == 200
    acl = response.json()["acl"]
    assert acl[0]["id"] == "default"
    added = acl[-1]
    assert re.fullmatch(r"acl[0-9a-f]+", added["id"])
    assert {k: added[k] for k in entry} == entry
    assert api.get(ACL).json()["acl"] == acl
    assert api.get(f"{BASE}/service/kafka").json()["service"]["acl"] == acl
    remaining = api.delete(f"{ACL}/{added['id']}")
    assert remaining.status_code == 200
    assert remaining.json()["acl"] == acl[:-1]
    assert api.get(f"{BASE}/service/kafka").json()["service"]["acl"] == acl[:-1]


def test_duplicate_kafka_acls_are_accepted_with_distinct_ids(api: httpx.Client) -> None:
    entry = {"permission": "read", "topic": "t", "username": "u"}
    api.post(ACL, json=entry)
    acl = api.post(ACL, json=entry).json()["acl"]
    assert len(acl) == 3 and acl[1]["id"] != acl[2]["id"]


def test_deleting_an_unknown_acl_is_404(api: httpx.Client) -> None:
    response = api.delete(f"{ACL}/acl0000000")
    assert response.status_code == 404
    assert error_of(response) == "ACL entry does not exist"
    assert api.delete(f"{SR_ACL}/acl0000000").status_code == 404


@pytest.mark.parametrize(
    "entry",
    [
        {"permission": "owner", "topic": "t", "username": "u"},
        {"permission": "read", "topic": "", "username": "u"},
        {"permission": "read", "topic": "t" * 250, "username": "u"},
        {"permission": "read", "topic": "t", "username": "bad name"},
        {"permission": "read", "username": "u"},
    ],
)
def test_bad_kafka_acl_entries_are_400(api: httpx.Client, entry: dict[str, str]) -> None:
    assert api.post(ACL, json=entry).status_code == 400


def test_kafka_acls_on_non_kafka_services_are_400(api: httpx.Client) -> None:
    assert api.get(f"{BASE}/service/valkey-team-a-cache/acl").status_code == 400


def test_schema_registry_acls_add_list_delete(api: httpx.Client) -> None:
    seeded = api.get(SR_ACL).json()["acl"]
    assert {a["resource"] for a in seeded} == {"Config:", "Subject:*"}
    entry = {"permission": "schema_registry_read", "resource": "Subject:team-a.*", "username": "app"}
    acl = api.post(SR_ACL, json=entry).json()["acl"]
    added = acl[-1]
    assert re.fullmatch(r"acl[0-9a-f]+", added["id"]) and added["resource"] == "Subject:team-a.*"
    assert api.get(f"{BASE}/service/kafka").json()["service"]["schema_registry_acl"] == acl
    assert api.delete(f"{SR_ACL}/{added['id']}").json()["acl"] == seeded
    assert api.post(SR_ACL, json={**entry, "permission": "read"}).status_code == 400


def test_schema_registry_acls_need_schema_registry() -> None:
    fake = FakeAiven(token=TOKEN)
    fake.add_service("p", "p-kafka", "kafka", schema_registry=False)
    with client_for(fake) as api:
        assert api.get("/v1/project/p/service/p-kafka/kafka/schema-registry/acl").status_code == 400
        svc = api.get("/v1/project/p/service/p-kafka").json()["service"]
    assert "schema_registry" not in {c["component"] for c in svc["components"]}
    assert "schema_registry_uri" not in svc["connection_info"]


# ---- request log and concurrency -----------------------------------------------------------------


def test_request_log_records_method_decoded_path_status_and_time(api: httpx.Client, fake: FakeAiven) -> None:
    api.post(f"{BASE}/service/kafka/user", json={"username": "logme"})
    api.get(f"{BASE}/service/kafka/user/logme", params={"include_secrets": "true"})
    api.get(f"{BASE}/service/kafka/user/missing")
    log = fake.request_log
    assert [(r.method, r.path, r.status) for r in log] == [
        ("POST", f"{BASE}/service/kafka/user", 200),
        ("GET", f"{BASE}/service/kafka/user/logme", 200),
        ("GET", f"{BASE}/service/kafka/user/missing", 404),
    ]
    assert log[1].query == "include_secrets=true"
    assert log[0].at <= log[1].at <= log[2].at
    assert len(fake.requests_matching("GET", r"/user/")) == 2


def test_concurrent_creates_of_one_name_yield_one_success(fake: FakeAiven) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def create(name: str) -> None:
        with client_for(fake) as api:
            status = api.post(
                f"{BASE}/service/opensearch-team-a-logs/user", json={"username": name}
            ).status_code
        with lock:
            results.append(status)

    threads = [
        threading.Thread(target=create, args=(name,)) for name in ["same"] * 6 + [f"u{i}" for i in range(6)]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] * 7 + [409] * 5
    assert len(fake.users(P, "opensearch-team-a-logs")) == 1 + 7


def test_inspection_helpers_return_copies(fake: FakeAiven) -> None:
    fake.users(P, "kafka")["avnadmin"]["password"] = "changed"
    fake.opensearch_acl(P, "legacy-search")["enabled"] = True
    assert fake.users(P, "kafka")["avnadmin"]["password"] != "changed"
    assert fake.opensearch_acl(P, "legacy-search")["enabled"] is False
    with pytest.raises(KeyError):
        fake.users(P, "nope")


def test_a_forbidden_project_answers_403_not_a_project_member(api: httpx.Client, fake: FakeAiven) -> None:
    fake.forbid_project("nav-prod")
    response = api.get("/v1/project/nav-prod/service/nav-prod-kafka")
    assert response.status_code == 403
    assert error_of(response) == "Not a project member"
    fake.forbid_project("nav-prod", forbidden=False)
    assert api.get("/v1/project/nav-prod/service/nav-prod-kafka").status_code == 200


def test_cert_renewal_is_visible_until_acknowledged(fake: FakeAiven) -> None:
    later = [NOW]
    fake = make_fake(clock=lambda: later[0])
    with client_for(fake) as api:
        old = api.post(f"{BASE}/service/kafka/user", json={"username": "renew"}).json()["user"]
        later[0] = NOW + timedelta(days=300)
        renewed = fake.renew_user_cert(P, "kafka", "renew")
        got = api.get(f"{BASE}/service/kafka/user/renew").json()["user"]
        assert got["access_cert"] == renewed["access_cert"] != old["access_cert"]
        assert got["expiring_cert_not_valid_after_time"] == old["access_cert_not_valid_after_time"]
        assert got["access_cert_not_valid_after_time"] == "2028-03-27T12:00:00Z"
        api.put(f"{BASE}/service/kafka/user/renew", json={"operation": "acknowledge-renewal"})
        assert (
            "expiring_cert_not_valid_after_time"
            not in api.get(f"{BASE}/service/kafka/user/renew").json()["user"]
        )
