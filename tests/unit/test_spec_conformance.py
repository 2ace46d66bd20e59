"""The product specification (§2-§4, §6-§7), fact by fact, with the spec's literal strings.

Every expected value here is written out as the spec states it (or recomputed from the spec's
formula with the standard library), never taken from the code's own constants, so a renamed
constant or a changed rule fails here even if the code stays self-consistent.
"""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import Endpoint, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.janitor import Deletion, Kept, plan_cleanup, secret_view
from aivenator.domain.names import access_suffix, is_valid_username, shorten
from aivenator.domain.parse import parse_application
from aivenator.domain.secrets import Create, SectionInput, diff, render_secret, to_manifest
from aivenator.domain.services import SERVICES, all_sections, cleanup_actions
from aivenator.domain.services.base import SecretMeta, Section, ServiceConfig
from aivenator.domain.sync import needs_sync
from cryptography.hazmat.primitives.serialization import pkcs12
from returns.result import Failure, Success

from tests.support.secrets import as_existing
from tests.unit.strategies import tls_material

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
MAIN_PROJECT = "main-proj"
CONFIG = ServiceConfig(MAIN_PROJECT)
MAIN_CA = "-----BEGIN CERTIFICATE-----\nmain\n-----END CERTIFICATE-----\n"
STORE_PASSWORD = "a-fresh-random-store-password-1"


def app_of(spec: dict[str, Any], *, labels: dict[str, str] | None = None, **meta: Any) -> AivenApplication:
    raw = {
        "metadata": {
            "name": meta.get("name", "myapp"),
            "namespace": meta.get("namespace", "team-a"),
            "generation": meta.get("generation", 3),
            "labels": labels or {},
            "annotations": meta.get("annotations", {}),
        },
        "spec": spec,
    }
    parsed = parse_application(raw, frozenset({"pool-a"}))
    assert isinstance(parsed, Success), parsed
    app: AivenApplication = parsed.unwrap().app
    return app


def section_of(app: AivenApplication, service_type: ServiceType, index: int = 0) -> Section:
    return [s for _, s in all_sections(app) if s.service_type is service_type][index]


def facts(service_type: ServiceType, name: str, project: str, *purposes: str) -> ServiceFacts:
    endpoints = tuple((p, Endpoint(f"{p}.example.net", 1000 + i)) for i, p in enumerate(purposes))
    return ServiceFacts(project, name, service_type, "RUNNING", endpoints)


def kafka_user() -> ServiceUser:
    _, cert, key = tls_material(0)
    return ServiceUser("kafka-user", "kafka-pw", access_cert=cert, access_key=key)


def rendered(
    app: AivenApplication, section: Section, service: ServiceFacts, user: ServiceUser, ca: str = "ca-pem"
) -> dict[str, Any]:
    """The Secret the operator creates for one section (API shape)."""
    result = render_secret(app, SectionInput(section, service, user, ca), None, NOW, STORE_PASSWORD, MAIN_CA)
    assert isinstance(result, Success), result
    change = diff(result.unwrap(), None)
    assert isinstance(change, Create)
    return change.body


def data_of(body: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in body["data"].items()}


KAFKA_APP = app_of({"kafka": {"pool": "pool-a", "secretName": "kafka-secret"}})
OPENSEARCH_APP = app_of({"openSearch": {"instance": "logs", "access": "write", "secretName": "os-secret"}})
VALKEY_APP = app_of(
    {"valkey": [{"instance": "sessions-eu", "access": "readwrite", "secretName": "vk-secret"}]}
)


def kafka_secret() -> dict[str, Any]:
    service = facts(ServiceType.KAFKA, "pool-a-kafka", "pool-a", "kafka", "schema_registry")
    return rendered(
        KAFKA_APP, section_of(KAFKA_APP, ServiceType.KAFKA), service, kafka_user(), tls_material(0)[0]
    )


def opensearch_secret(*purposes: str) -> dict[str, Any]:
    service = facts(ServiceType.OPENSEARCH, "opensearch-team-a-logs", MAIN_PROJECT, *purposes)
    user = ServiceUser("team-a-w-xyz", "os-pw")
    return rendered(OPENSEARCH_APP, section_of(OPENSEARCH_APP, ServiceType.OPENSEARCH), service, user)


def valkey_secret(*purposes: str) -> dict[str, Any]:
    service = facts(ServiceType.VALKEY, "valkey-team-a-sessions-eu", MAIN_PROJECT, *purposes)
    user = ServiceUser("myapp-rw-xyz", "vk-pw")
    return rendered(VALKEY_APP, section_of(VALKEY_APP, ServiceType.VALKEY), service, user)


def every_secret() -> list[dict[str, Any]]:
    return [kafka_secret(), opensearch_secret("opensearch"), valkey_secret("valkey")]


# --- §2 which Aiven service each section maps to --------------------------------------------------


def test_kafka_service_is_looked_up_as_kafka_then_project_kafka_in_the_pool() -> None:
    handler, section = all_sections(KAFKA_APP)[0]
    target = handler.target(KAFKA_APP, section, CONFIG)
    assert target.project == "pool-a"
    assert [c.service for c in target.candidates] == ["kafka", "pool-a-kafka"]


def test_opensearch_service_is_namespaced_then_legacy_in_the_main_project() -> None:
    handler, section = all_sections(OPENSEARCH_APP)[0]
    target = handler.target(OPENSEARCH_APP, section, CONFIG)
    assert target.project == MAIN_PROJECT
    assert [c.service for c in target.candidates] == ["opensearch-team-a-logs", "logs"]
    for candidate in target.candidates:
        required = candidate.required_object
        assert required is not None
        assert (required.api_version, required.kind, required.namespace, required.name) == (
            "aiven.io/v1alpha1",
            "OpenSearch",
            "team-a",
            candidate.service,
        )


def test_valkey_service_is_valkey_namespace_instance_in_the_main_project() -> None:
    handler, section = all_sections(VALKEY_APP)[0]
    target = handler.target(VALKEY_APP, section, CONFIG)
    assert target.project == MAIN_PROJECT
    assert [c.service for c in target.candidates] == ["valkey-team-a-sessions-eu"]
    required = target.candidates[0].required_object
    assert required is not None
    assert (required.api_version, required.kind, required.namespace) == (
        "aiven.io/v1alpha1",
        "Valkey",
        "team-a",
    )


def test_a_kafka_pool_outside_the_allowed_projects_is_invalid() -> None:
    raw = {
        "metadata": {"name": "a", "namespace": "n"},
        "spec": {"kafka": {"pool": "other", "secretName": "s"}},
    }
    result = parse_application(raw, frozenset({"pool-a"}))
    assert isinstance(result, Failure)
    assert [p.field for p in result.failure().problems] == ["spec.kafka.pool"]


# --- §3 service user names ----------------------------------------------------------------------


def spec_suffix(generation: int, name: str) -> str:
    digest = zlib.crc32(f"{generation}{name}".encode()).to_bytes(4, "big")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:3]


@pytest.mark.parametrize(
    ("access", "expected"),
    [("admin", ""), ("write", "-w"), ("readwrite", "-rw"), ("read", "-r"), (None, "-r"), ("other", "-r")],
)
def test_access_suffix_table(access: str | None, expected: str) -> None:
    assert access_suffix(access) == expected


def test_shorten_drops_prefix_leading_dashes_cuts_then_drops_trailing_dashes() -> None:
    assert shorten("teamfoo", "team", 20) == "foo"
    assert shorten("team", "team", 20) == "team"
    assert shorten("team--foo", "team", 20) == "foo"
    assert shorten("a" * 19 + "-b", "team", 20) == "a" * 19
    assert shorten("-ab-", "x", 5) == "ab"
    assert shorten("ab-cd", "x", 3) == "ab"


def test_kafka_user_name_follows_the_compatible_formula() -> None:
    app = app_of({"kafka": {"pool": "pool-a", "secretName": "s"}}, name="teamfoo-bar", namespace="teamfoo")
    handler, section = all_sections(app)[0]
    crc = f"{zlib.crc32(b'teamfooteamfoo-bar'):08x}"
    assert handler.username(app, section).name == f"foo_bar_{crc}_{spec_suffix(3, 'teamfoo-bar')}"


def test_opensearch_and_valkey_user_names_follow_the_compatible_formulas() -> None:
    os_handler, os_section = all_sections(OPENSEARCH_APP)[0]
    assert os_handler.username(OPENSEARCH_APP, os_section).name == f"team-a-w-{spec_suffix(3, 'myapp')}"
    vk_handler, vk_section = all_sections(VALKEY_APP)[0]
    assert vk_handler.username(VALKEY_APP, vk_section).name == f"myapp-rw-{spec_suffix(3, 'myapp')}"


def test_a_new_generation_gives_new_user_names() -> None:
    later = app_of({"kafka": {"pool": "pool-a", "secretName": "s"}}, generation=4)
    earlier = app_of({"kafka": {"pool": "pool-a", "secretName": "s"}}, generation=3)
    (handler, section) = all_sections(later)[0]
    assert handler.username(later, section).name != handler.username(earlier, section).name


def test_over_long_names_fall_back_to_valid_names_and_say_so() -> None:
    app = app_of({"valkey": [{"instance": "c", "secretName": "s"}]}, name="a" * 63)
    handler, section = all_sections(app)[0]
    choice = handler.username(app, section)
    assert len(choice.name) <= 64 and is_valid_username(choice.name)
    assert re.fullmatch(r"[A-Za-z0-9_][-._A-Za-z0-9]*", choice.name)
    assert not choice.compatible and choice.reason


# --- §4 common to every managed Secret ----------------------------------------------------------


def test_every_secret_has_the_common_data_keys() -> None:
    for body in every_secret():
        data = data_of(body)
        assert data["AIVEN_CA"] == MAIN_CA
        assert data["AIVEN_SECRET_UPDATED"] == "2026-06-01T12:00:00Z"


def test_every_secret_has_the_compatible_labels() -> None:
    for body in every_secret():
        assert body["metadata"]["labels"] == {
            "app": "myapp",
            "team": "team-a",
            "type": "aivenator.aiven.nais.io",
            "aiven.nais.io/secret-generation": "0",
            "aivenator.aiven.nais.io/protected": "false",
        }


def test_secret_generation_label_is_copied_from_the_application() -> None:
    app = app_of(
        {"openSearch": {"instance": "logs", "secretName": "s"}},
        labels={"aiven.nais.io/secret-generation": "7"},
    )
    body = rendered(
        app,
        section_of(app, ServiceType.OPENSEARCH),
        facts(ServiceType.OPENSEARCH, "opensearch-team-a-logs", MAIN_PROJECT, "opensearch"),
        ServiceUser("u", "p"),
    )
    assert body["metadata"]["labels"]["aiven.nais.io/secret-generation"] == "7"


def test_correlation_id_is_copied_and_protection_is_annotated() -> None:
    annotations = {"nais.io/deploymentCorrelationID": "deploy-42"}
    app = app_of({"openSearch": {"instance": "logs", "secretName": "s"}}, annotations=annotations)
    body = rendered(
        app,
        section_of(app, ServiceType.OPENSEARCH),
        facts(ServiceType.OPENSEARCH, "logs", MAIN_PROJECT, "opensearch"),
        ServiceUser("u", "p"),
    )
    meta = body["metadata"]["annotations"]
    assert meta["nais.io/deploymentCorrelationID"] == "deploy-42"
    assert meta["aivenator.aiven.nais.io/protected"] == "false"
    assert "aivenator.aiven.nais.io/with-time-limit" not in meta
    assert "aivenator.aiven.nais.io/expires-at" not in meta


@pytest.mark.parametrize(
    ("protected", "expires_at", "time_limited"),
    [(True, "2027-01-02T03:04:05Z", True), (True, None, False), (False, "2027-01-02T03:04:05Z", False)],
)
def test_time_limit_annotations_only_when_protected_and_expiring(
    protected: bool, expires_at: str | None, time_limited: bool
) -> None:
    spec: dict[str, Any] = {"protected": protected, "openSearch": {"instance": "logs", "secretName": "s"}}
    if expires_at:
        spec["expiresAt"] = expires_at
    app = app_of(spec)
    body = rendered(
        app,
        section_of(app, ServiceType.OPENSEARCH),
        facts(ServiceType.OPENSEARCH, "logs", MAIN_PROJECT, "opensearch"),
        ServiceUser("u", "p"),
    )
    value = "true" if protected else "false"
    assert body["metadata"]["labels"]["aivenator.aiven.nais.io/protected"] == value
    meta = body["metadata"]["annotations"]
    assert meta["aivenator.aiven.nais.io/protected"] == value
    if time_limited:
        assert meta["aivenator.aiven.nais.io/with-time-limit"] == "true"
        assert meta["aivenator.aiven.nais.io/expires-at"] == "2027-01-02T03:04:05Z"
    else:
        assert "aivenator.aiven.nais.io/with-time-limit" not in meta
        assert "aivenator.aiven.nais.io/expires-at" not in meta


def test_every_secret_is_opaque_with_the_finalizer_and_no_owner() -> None:
    for body in every_secret():
        assert body["type"] == "Opaque"
        assert body["metadata"]["finalizers"] == ["aivenator.aiven.nais.io/finalizer"]
        assert "ownerReferences" not in body["metadata"]


def test_updates_never_add_an_owner_reference() -> None:
    app = OPENSEARCH_APP
    section = section_of(app, ServiceType.OPENSEARCH)
    service = facts(ServiceType.OPENSEARCH, "logs", MAIN_PROJECT, "opensearch")
    first = render_secret(
        app, SectionInput(section, service, ServiceUser("u", "p"), "ca"), None, NOW, "", MAIN_CA
    )
    existing = as_existing(first.unwrap())
    second = render_secret(
        app, SectionInput(section, service, ServiceUser("u", "new"), "ca"), existing, NOW, "", MAIN_CA
    )
    change = diff(second.unwrap(), existing)
    assert "ownerReferences" not in str(change)


# --- §4.1 Kafka ----------------------------------------------------------------------------------


def test_kafka_secret_has_exactly_the_compatible_keys() -> None:
    assert set(kafka_secret()["data"]) == {
        "AIVEN_SECRET_UPDATED",
        "AIVEN_CA",
        "KAFKA_CERTIFICATE",
        "KAFKA_PRIVATE_KEY",
        "KAFKA_CA",
        "KAFKA_BROKERS",
        "KAFKA_SCHEMA_REGISTRY",
        "KAFKA_SCHEMA_REGISTRY_USER",
        "KAFKA_SCHEMA_REGISTRY_PASSWORD",
        "KAFKA_CREDSTORE_PASSWORD",
        "KAFKA_SECRET_UPDATED",
        "client.keystore.p12",
        "client.truststore.jks",
    }


def test_kafka_values() -> None:
    ca, cert, key = tls_material(0)
    data = data_of(kafka_secret())
    assert data["KAFKA_BROKERS"] == "kafka.example.net:1000"  # host:port, no scheme
    assert data["KAFKA_SCHEMA_REGISTRY"] == "https://schema_registry.example.net:1001"
    assert data["KAFKA_SCHEMA_REGISTRY_USER"] == "kafka-user"
    assert data["KAFKA_SCHEMA_REGISTRY_PASSWORD"] == "kafka-pw"
    assert data["KAFKA_CERTIFICATE"] == cert and data["KAFKA_PRIVATE_KEY"] == key
    assert data["KAFKA_CA"] == ca  # the pool's CA, not the main project's
    assert data["AIVEN_CA"] == MAIN_CA
    assert data["KAFKA_SECRET_UPDATED"] == "2026-06-01T12:00:00Z"
    assert data["KAFKA_CREDSTORE_PASSWORD"] == STORE_PASSWORD  # the fresh random one


def test_kafka_stores_open_with_the_credstore_password() -> None:
    body = kafka_secret()
    password = base64.b64decode(body["data"]["KAFKA_CREDSTORE_PASSWORD"])
    keystore = pkcs12.load_pkcs12(base64.b64decode(body["data"]["client.keystore.p12"]), password)
    assert keystore.key is not None and keystore.cert is not None
    truststore = pkcs12.load_pkcs12(base64.b64decode(body["data"]["client.truststore.jks"]), password)
    assert truststore.key is None and len(truststore.additional_certs) == 1


def test_kafka_annotations() -> None:
    meta = kafka_secret()["metadata"]["annotations"]
    assert meta["kafka.aiven.nais.io/serviceUser"] == "kafka-user"
    assert meta["kafka.aiven.nais.io/pool"] == "pool-a"


# --- §4.2 OpenSearch -----------------------------------------------------------------------------


def test_opensearch_secret_keys_and_values_with_dashboard() -> None:
    data = data_of(opensearch_secret("opensearch", "opensearch_dashboards"))
    assert {k: v for k, v in data.items() if not k.startswith("AIVEN_")} == {
        "OPEN_SEARCH_USERNAME": "team-a-w-xyz",
        "OPEN_SEARCH_PASSWORD": "os-pw",
        "OPEN_SEARCH_URI": "https://opensearch.example.net:1000",
        "OPEN_SEARCH_HOST": "opensearch.example.net",
        "OPEN_SEARCH_PORT": "1000",
        "OPEN_SEARCH_DASHBOARD_URI": "https://opensearch_dashboards.example.net:1001",
        "OPEN_SEARCH_DASHBOARD_HOST": "opensearch_dashboards.example.net",
        "OPEN_SEARCH_DASHBOARD_PORT": "1001",
    }


def test_opensearch_without_dashboard_has_empty_dashboard_values_and_port_zero() -> None:
    data = data_of(opensearch_secret("opensearch"))
    assert data["OPEN_SEARCH_DASHBOARD_URI"] == ""
    assert data["OPEN_SEARCH_DASHBOARD_HOST"] == ""
    assert data["OPEN_SEARCH_DASHBOARD_PORT"] == "0"


def test_opensearch_annotations() -> None:
    meta = opensearch_secret("opensearch")["metadata"]["annotations"]
    assert meta["opensearch.aiven.nais.io/serviceUser"] == "team-a-w-xyz"
    assert meta["opensearch.aiven.nais.io/serviceName"] == "opensearch-team-a-logs"
    assert meta["opensearch.aiven.nais.io/project"] == MAIN_PROJECT


@pytest.mark.parametrize("access", ["read", "write", "readwrite", "admin", None])
def test_opensearch_rules_are_underscore_star_and_star_with_the_access(access: str | None) -> None:
    section: dict[str, Any] = {"instance": "logs", "secretName": "s"}
    if access:
        section["access"] = access
    app = app_of({"openSearch": section})
    handler, sec = all_sections(app)[0]
    assert [(r.index, r.permission) for r in handler.acl_rules(sec)] == [
        ("_*", access or "read"),
        ("*", access or "read"),
    ]


# --- §4.3 Valkey ---------------------------------------------------------------------------------


def test_valkey_secret_keys_and_values_without_replica() -> None:
    data = data_of(valkey_secret("valkey"))
    assert {k: v for k, v in data.items() if not k.startswith("AIVEN_")} == {
        "VALKEY_USERNAME_SESSIONS_EU": "myapp-rw-xyz",
        "VALKEY_PASSWORD_SESSIONS_EU": "vk-pw",
        "VALKEY_URI_SESSIONS_EU": "valkeys://valkey.example.net:1000",
        "VALKEY_HOST_SESSIONS_EU": "valkey.example.net",
        "VALKEY_PORT_SESSIONS_EU": "1000",
        "REDIS_USERNAME_SESSIONS_EU": "myapp-rw-xyz",
        "REDIS_PASSWORD_SESSIONS_EU": "vk-pw",
        "REDIS_URI_SESSIONS_EU": "rediss://valkey.example.net:1000",
        "REDIS_HOST_SESSIONS_EU": "valkey.example.net",
        "REDIS_PORT_SESSIONS_EU": "1000",
    }


def test_valkey_replica_keys_only_with_a_replica() -> None:
    data = data_of(valkey_secret("valkey", "valkey_replica"))
    replica = {k: v for k, v in data.items() if "REPLICA" in k}
    assert replica == {
        "VALKEY_REPLICA_URI_SESSIONS_EU": "valkeys://valkey_replica.example.net:1001",
        "VALKEY_REPLICA_HOST_SESSIONS_EU": "valkey_replica.example.net",
        "VALKEY_REPLICA_PORT_SESSIONS_EU": "1001",
    }


def test_valkey_annotations() -> None:
    meta = valkey_secret("valkey")["metadata"]["annotations"]
    assert meta["sessions-eu.valkey.aiven.nais.io/serviceUser"] == "myapp-rw-xyz"
    assert meta["sessions-eu.valkey.aiven.nais.io/serviceName"] == "valkey-team-a-sessions-eu"
    assert meta["valkey.aiven.nais.io/project"] == MAIN_PROJECT


@pytest.mark.parametrize(
    ("instance", "key_suffix", "annotation_prefix"),
    [
        ("cache", "CACHE", "cache"),
        ("sessions-eu", "SESSIONS_EU", "sessions-eu"),
        ("a1-b2", "A1_B2", "a1-b2"),
        # Outside what the parser accepts today, but the spec's rules are total:
        ("My_Cache.1", "_Y__ACHE_1", "-y--ache-1"),
        ("ü", "_", "-"),
    ],
)
def test_instance_sanitisation_for_keys_and_annotations(
    instance: str, key_suffix: str, annotation_prefix: str
) -> None:
    """`<I>`: outside [a-z0-9] → `_`, upper-cased; `<inst>`: outside [a-z0-9] → `-`."""
    handler = next(h for h in SERVICES if h.service_type is ServiceType.VALKEY)
    section = Section(ServiceType.VALKEY, "s", instance=instance)
    service = facts(ServiceType.VALKEY, "svc", MAIN_PROJECT, "valkey")
    body = rendered(VALKEY_APP, section, service, ServiceUser("u", "p"))
    assert f"VALKEY_USERNAME_{key_suffix}" in body["data"]
    assert f"REDIS_URI_{key_suffix}" in body["data"]
    assert f"{annotation_prefix}.valkey.aiven.nais.io/serviceUser" in body["metadata"]["annotations"]
    assert f"{annotation_prefix}.valkey.aiven.nais.io/serviceName" in body["metadata"]["annotations"]
    assert handler.owned_annotation_keys(section) >= {
        f"{annotation_prefix}.valkey.aiven.nais.io/serviceUser",
        f"{annotation_prefix}.valkey.aiven.nais.io/serviceName",
    }


@pytest.mark.parametrize(
    ("access", "extra"),
    [
        ("read", ["+@read"]),
        ("write", ["+@write"]),
        ("readwrite", ["+@write", "+@read"]),
        ("admin", ["+@admin", "+@write", "+@read"]),
        (None, ["+@read"]),
    ],
)
def test_valkey_access_control_per_access_level(access: str | None, extra: list[str]) -> None:
    entry: dict[str, Any] = {"instance": "c", "secretName": "s"}
    if access:
        entry["access"] = access
    app = app_of({"valkey": [entry]})
    handler, section = all_sections(app)[0]
    acl = handler.access_control(section)
    assert acl is not None
    assert list(acl.categories) == [
        "-@all",
        "+@connection",
        "+@scripting",
        "+@pubsub",
        "+@transaction",
        *extra,
    ]
    assert list(acl.commands) == ["+info", "+cluster|slots"]
    assert list(acl.keys) == ["*"] and list(acl.channels) == ["*"]


def test_only_valkey_has_access_control_and_only_opensearch_has_rules() -> None:
    app = app_of(
        {
            "kafka": {"pool": "pool-a", "secretName": "k"},
            "openSearch": {"instance": "logs", "secretName": "o"},
            "valkey": [{"instance": "c", "secretName": "v"}],
        }
    )
    by_type = {s.service_type: (h, s) for h, s in all_sections(app)}
    assert {t for t, (h, s) in by_type.items() if h.access_control(s) is not None} == {ServiceType.VALKEY}
    assert {t for t, (h, s) in by_type.items() if h.acl_rules(s)} == {ServiceType.OPENSEARCH}


# --- required keys agree with what is rendered (drift detection is exact) -----------------------


@pytest.mark.parametrize(
    ("service_type", "purposes"),
    [
        (ServiceType.KAFKA, ("kafka",)),
        (ServiceType.KAFKA, ("kafka", "schema_registry")),
        (ServiceType.OPENSEARCH, ("opensearch",)),
        (ServiceType.OPENSEARCH, ("opensearch", "opensearch_dashboards")),
        (ServiceType.VALKEY, ("valkey",)),
        (ServiceType.VALKEY, ("valkey", "valkey_replica")),
    ],
)
def test_required_data_keys_are_exactly_the_rendered_service_keys(
    service_type: ServiceType, purposes: tuple[str, ...]
) -> None:
    app = {
        ServiceType.KAFKA: KAFKA_APP,
        ServiceType.OPENSEARCH: OPENSEARCH_APP,
        ServiceType.VALKEY: VALKEY_APP,
    }[service_type]
    handler, section = next((h, s) for h, s in all_sections(app) if s.service_type is service_type)
    project = "pool-a" if service_type is ServiceType.KAFKA else MAIN_PROJECT
    service = facts(service_type, "svc", project, *purposes)
    user = kafka_user() if service_type is ServiceType.KAFKA else ServiceUser("u", "p")
    body = rendered(app, section, service, user, tls_material(0)[0])
    service_keys = set(body["data"]) - {"AIVEN_CA", "AIVEN_SECRET_UPDATED"}
    assert handler.required_data_keys(section, service) == service_keys
    # Without facts the Secret's own keys decide; a complete Secret never looks drifted.
    assert handler.required_data_keys(section, None, frozenset(body["data"])) == service_keys
    assert handler.required_data_keys(section, service) <= handler.owned_data_keys(section)


# --- §5 when to synchronize -----------------------------------------------------------------------


def test_a_rendered_secret_is_steady_state_and_a_missing_one_is_not() -> None:
    body = opensearch_secret("opensearch")
    app = OPENSEARCH_APP
    synced = replace(app, status_hash=app.spec_hash)
    assert needs_sync(synced, {"os-secret": secret_view(body)}, NOW) is None
    reason = needs_sync(synced, {}, NOW)
    assert reason is not None and reason.detail == "os-secret"


# --- §6 finalizer cleanup from annotations ---------------------------------------------------------


def test_cleanup_targets_the_users_named_in_the_annotations_and_the_opensearch_acl_first() -> None:
    secret = SecretMeta(
        "team-a",
        "s",
        {},
        {
            "opensearch.aiven.nais.io/serviceUser": "team-a-w-xyz",
            "opensearch.aiven.nais.io/serviceName": "opensearch-team-a-logs",
            "opensearch.aiven.nais.io/project": MAIN_PROJECT,
            "cache.valkey.aiven.nais.io/serviceUser": "myapp-r-xyz",
            "cache.valkey.aiven.nais.io/serviceName": "valkey-team-a-cache",
            "valkey.aiven.nais.io/project": MAIN_PROJECT,
            "kafka.aiven.nais.io/serviceUser": "a_myapp_00000000_xyz",
            "kafka.aiven.nais.io/pool": "pool-a",
        },
    )
    actions = cleanup_actions(secret)
    kafka = [a for a in actions if isinstance(a, DeleteServiceUser) and a.service_type is ServiceType.KAFKA]
    # A Go-written Secret does not record the Kafka service: both compatible names are tried.
    assert [(a.project, a.service, a.username) for a in kafka] == [
        ("pool-a", "kafka", "a_myapp_00000000_xyz"),
        ("pool-a", "pool-a-kafka", "a_myapp_00000000_xyz"),
    ]
    opensearch = [a for a in actions if getattr(a, "service", "") == "opensearch-team-a-logs"]
    assert [type(a) for a in opensearch] == [RemoveOpenSearchAcl, DeleteServiceUser]
    valkey = [a for a in actions if getattr(a, "service", "") == "valkey-team-a-cache"]
    assert [(type(a), a.username) for a in valkey] == [(DeleteServiceUser, "myapp-r-xyz")]


# --- §7 janitor protection -----------------------------------------------------------------------


def managed_secret(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "team-a",
            "name": "old",
            "uid": "u1",
            "resourceVersion": "5",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"type": "aivenator.aiven.nais.io"},
            "annotations": annotations,
            "finalizers": ["aivenator.aiven.nais.io/finalizer"],
        }
    }


@pytest.mark.parametrize(
    ("annotations", "deleted"),
    [
        ({}, True),
        ({"aivenator.aiven.nais.io/protected": "false"}, True),
        ({"aivenator.aiven.nais.io/protected": "true"}, False),
        (
            {
                "aivenator.aiven.nais.io/protected": "true",
                "aivenator.aiven.nais.io/with-time-limit": "true",
                "aivenator.aiven.nais.io/expires-at": "2026-05-01T00:00:00Z",
            },
            True,
        ),
        (
            {
                "aivenator.aiven.nais.io/protected": "true",
                "aivenator.aiven.nais.io/with-time-limit": "true",
                "aivenator.aiven.nais.io/expires-at": "2026-07-01T00:00:00Z",
            },
            False,
        ),
        (
            {
                "aivenator.aiven.nais.io/protected": "true",
                "aivenator.aiven.nais.io/with-time-limit": "true",
                "aivenator.aiven.nais.io/expires-at": "next tuesday",
            },
            False,
        ),
        (
            {"aivenator.aiven.nais.io/protected": "true", "aivenator.aiven.nais.io/with-time-limit": "true"},
            False,
        ),
    ],
)
def test_unused_secrets_are_deleted_unless_protected(annotations: dict[str, str], deleted: bool) -> None:
    view = secret_view(managed_secret(annotations))
    plan = plan_cleanup([view], [], [], NOW, timedelta(minutes=5))
    decision: Deletion | Kept = (plan.deletions or plan.kept)[0]
    assert isinstance(decision, Deletion) is deleted


def test_the_janitor_selector_is_the_type_label() -> None:
    body = to_manifest(
        render_secret(
            OPENSEARCH_APP,
            SectionInput(
                section_of(OPENSEARCH_APP, ServiceType.OPENSEARCH),
                facts(ServiceType.OPENSEARCH, "logs", MAIN_PROJECT, "opensearch"),
                ServiceUser("u", "p"),
                "ca",
            ),
            None,
            NOW,
            "",
            MAIN_CA,
        ).unwrap()
    )
    assert secret_view(body).managed
    unmanaged = managed_secret({})
    unmanaged["metadata"]["labels"] = {"app": "myapp"}
    plan = plan_cleanup([secret_view(unmanaged)], [], [], NOW, timedelta(minutes=5))
    assert not plan.deletions
