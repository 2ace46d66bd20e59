"""Service handlers: targets, users, access, Secret content and cleanup per product spec §2-§4."""

from __future__ import annotations

from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl, RequiredObject
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import Endpoint, OpenSearchRule, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.services import SERVICES, all_sections, cleanup_actions, handler_for
from aivenator.domain.services.base import ApplyInput, SecretMeta
from aivenator.domain.services.valkey import env_suffix
from returns.result import Failure

from tests.unit.strategies import CONFIG, parse_valid, tls_material


def _app(**spec: Any) -> AivenApplication:
    return parse_valid(
        {
            "metadata": {"name": "myapp", "namespace": "team-a", "generation": 1},
            "spec": spec,
        }
    )


APP = _app(
    kafka={"pool": "nav-prod", "secretName": "k"},
    openSearch={"instance": "logs", "access": "readwrite", "secretName": "o"},
    valkey=[
        {"instance": "cache", "secretName": "v1"},
        {"instance": "sessions-eu", "access": "admin", "secretName": "v2"},
    ],
)


def test_registry_covers_every_service_type_once() -> None:
    assert sorted(h.service_type for h in SERVICES) == sorted(ServiceType)
    assert [s.key for _, s in all_sections(APP)] == [
        "kafka",
        "opensearch",
        "valkey/cache",
        "valkey/sessions-eu",
    ]


def test_targets() -> None:
    (kafka_h, kafka_s), (os_h, os_s), (v_h, v_s), _ = all_sections(APP)
    kafka_t = kafka_h.target(APP, kafka_s, CONFIG)
    assert kafka_t.project == "nav-prod"
    assert [c.service for c in kafka_t.candidates] == ["kafka", "nav-prod-kafka"]
    assert all(c.required_object is None for c in kafka_t.candidates)
    os_t = os_h.target(APP, os_s, CONFIG)
    assert os_t.project == "dev-nais-dev"
    assert [(c.service, c.required_object) for c in os_t.candidates] == [
        (
            "opensearch-team-a-logs",
            RequiredObject("aiven.io/v1alpha1", AivenObjectKind.OPENSEARCH, "team-a", "opensearch-team-a-logs"),
        ),
        ("logs", RequiredObject("aiven.io/v1alpha1", AivenObjectKind.OPENSEARCH, "team-a", "logs")),
    ]
    v_t = v_h.target(APP, v_s, CONFIG)
    assert [(c.service, c.required_object) for c in v_t.candidates] == [
        (
            "valkey-team-a-cache",
            RequiredObject("aiven.io/v1alpha1", AivenObjectKind.VALKEY, "team-a", "valkey-team-a-cache"),
        )
    ]


def test_usernames_and_access() -> None:
    sections = all_sections(APP)
    names = [h.username(APP, s).name for h, s in sections]
    assert names == ["a_myapp_3e3c0eb0_P16", "team-a-rw-P16", "myapp-r-P16", "myapp-P16"]
    alternatives = [h.username(APP, s, 1).name for h, s in sections]
    assert alternatives == ["a_myapp_3e3c0eb0_K0x", "team-a-rw-K0x", "myapp-r-K0x", "myapp-K0x"]
    (_, _), (os_h, os_s), (v_h, v_cache), (_, v_sessions) = sections
    assert os_h.acl_rules(os_s) == (OpenSearchRule("_*", "readwrite"), OpenSearchRule("*", "readwrite"))
    read = v_h.access_control(v_cache)
    assert read is not None
    assert read.categories == ("-@all", "+@connection", "+@scripting", "+@pubsub", "+@transaction", "+@read")
    assert read.commands == ("+info", "+cluster|slots")
    assert read.keys == ("*",) and read.channels == ("*",)
    admin = v_h.access_control(v_sessions)
    assert admin is not None and admin.categories[-3:] == ("+@admin", "+@write", "+@read")
    rw = v_h.access_control(
        all_sections(_app(valkey=[{"instance": "x", "access": "readwrite", "secretName": "s"}]))[0][1]
    )
    assert rw is not None and rw.categories[-2:] == ("+@write", "+@read")
    w = v_h.access_control(
        all_sections(_app(valkey=[{"instance": "x", "access": "write", "secretName": "s"}]))[0][1]
    )
    assert w is not None and w.categories[-1:] == ("+@write",)


def _facts(service_type: ServiceType, name: str, project: str, *purposes: str) -> ServiceFacts:
    return ServiceFacts(
        project,
        name,
        service_type,
        "RUNNING",
        tuple((p, Endpoint(f"{p}.example.com", 1000 + i)) for i, p in enumerate(purposes)),
    )


def test_kafka_content() -> None:
    handler, section = all_sections(APP)[0]
    ca, cert, key = tls_material(0)
    user = ServiceUser("a_myapp_3e3c0eb0_P16", "pw", access_cert=cert, access_key=key)
    facts = _facts(ServiceType.KAFKA, "nav-prod-kafka", "nav-prod", "kafka", "schema_registry")
    content = handler.apply(ApplyInput(APP, section, facts, user, ca, {}, "store-pw")).unwrap()
    d = {k: v for k, v in content.data.items() if not k.startswith("client.")}
    assert d == {
        "KAFKA_CERTIFICATE": cert.encode(),
        "KAFKA_PRIVATE_KEY": key.encode(),
        "KAFKA_CA": ca.encode(),
        "KAFKA_BROKERS": b"kafka.example.com:1000",
        "KAFKA_SCHEMA_REGISTRY": b"https://schema_registry.example.com:1001",
        "KAFKA_SCHEMA_REGISTRY_USER": b"a_myapp_3e3c0eb0_P16",
        "KAFKA_SCHEMA_REGISTRY_PASSWORD": b"pw",
        "KAFKA_CREDSTORE_PASSWORD": b"store-pw",
    }
    assert set(content.data) >= {"client.keystore.p12", "client.truststore.jks"}
    assert content.annotations == {
        "kafka.aiven.nais.io/serviceUser": "a_myapp_3e3c0eb0_P16",
        "kafka.aiven.nais.io/pool": "nav-prod",
        "kafka.aiven.nais.io/serviceName": "nav-prod-kafka",
    }
    assert set(content.data) <= handler.owned_data_keys(section)


def test_kafka_without_certificate_is_a_clear_error() -> None:
    handler, section = all_sections(APP)[0]
    facts = _facts(ServiceType.KAFKA, "kafka", "nav-prod", "kafka")
    result = handler.apply(ApplyInput(APP, section, facts, ServiceUser("u", "pw"), "ca", {}, "x"))
    assert isinstance(result, Failure)
    assert "certificate" in result.failure().message


def test_opensearch_content_with_and_without_dashboard() -> None:
    handler, section = all_sections(APP)[1]
    user = ServiceUser("team-a-rw-P16", "pw")
    with_dash = _facts(
        ServiceType.OPENSEARCH,
        "opensearch-team-a-logs",
        "dev-nais-dev",
        "opensearch",
        "opensearch_dashboards",
    )
    content = handler.apply(ApplyInput(APP, section, with_dash, user, "ca")).unwrap()
    assert {k: v.decode() for k, v in content.data.items()} == {
        "OPEN_SEARCH_USERNAME": "team-a-rw-P16",
        "OPEN_SEARCH_PASSWORD": "pw",
        "OPEN_SEARCH_URI": "https://opensearch.example.com:1000",
        "OPEN_SEARCH_HOST": "opensearch.example.com",
        "OPEN_SEARCH_PORT": "1000",
        "OPEN_SEARCH_DASHBOARD_URI": "https://opensearch_dashboards.example.com:1001",
        "OPEN_SEARCH_DASHBOARD_HOST": "opensearch_dashboards.example.com",
        "OPEN_SEARCH_DASHBOARD_PORT": "1001",
    }
    assert content.annotations == {
        "opensearch.aiven.nais.io/serviceUser": "team-a-rw-P16",
        "opensearch.aiven.nais.io/serviceName": "opensearch-team-a-logs",
        "opensearch.aiven.nais.io/project": "dev-nais-dev",
    }
    plain = _facts(ServiceType.OPENSEARCH, "logs", "dev-nais-dev", "opensearch")
    data = handler.apply(ApplyInput(APP, section, plain, user, "ca")).unwrap().data
    assert (
        data["OPEN_SEARCH_DASHBOARD_URI"],
        data["OPEN_SEARCH_DASHBOARD_HOST"],
        data["OPEN_SEARCH_DASHBOARD_PORT"],
    ) == (
        b"",
        b"",
        b"0",
    )


def test_valkey_content_with_replica() -> None:
    handler, section = all_sections(APP)[3]
    assert env_suffix("sessions-eu") == "SESSIONS_EU"
    facts = _facts(
        ServiceType.VALKEY, "valkey-team-a-sessions-eu", "dev-nais-dev", "valkey", "valkey_replica"
    )
    content = handler.apply(ApplyInput(APP, section, facts, ServiceUser("myapp-P16", "pw"), "ca")).unwrap()
    assert {k: v.decode() for k, v in content.data.items()} == {
        "VALKEY_USERNAME_SESSIONS_EU": "myapp-P16",
        "VALKEY_PASSWORD_SESSIONS_EU": "pw",
        "VALKEY_URI_SESSIONS_EU": "valkeys://valkey.example.com:1000",
        "VALKEY_HOST_SESSIONS_EU": "valkey.example.com",
        "VALKEY_PORT_SESSIONS_EU": "1000",
        "REDIS_USERNAME_SESSIONS_EU": "myapp-P16",
        "REDIS_PASSWORD_SESSIONS_EU": "pw",
        "REDIS_URI_SESSIONS_EU": "rediss://valkey.example.com:1000",
        "REDIS_HOST_SESSIONS_EU": "valkey.example.com",
        "REDIS_PORT_SESSIONS_EU": "1000",
        "VALKEY_REPLICA_URI_SESSIONS_EU": "valkeys://valkey_replica.example.com:1001",
        "VALKEY_REPLICA_HOST_SESSIONS_EU": "valkey_replica.example.com",
        "VALKEY_REPLICA_PORT_SESSIONS_EU": "1001",
    }
    assert content.annotations == {
        "sessions-eu.valkey.aiven.nais.io/serviceUser": "myapp-P16",
        "sessions-eu.valkey.aiven.nais.io/serviceName": "valkey-team-a-sessions-eu",
        "valkey.aiven.nais.io/project": "dev-nais-dev",
    }
    assert set(content.data) <= handler.owned_data_keys(section)


def test_valkey_without_replica_writes_no_replica_keys() -> None:
    handler, section = all_sections(APP)[2]
    facts = _facts(ServiceType.VALKEY, "valkey-team-a-cache", "dev-nais-dev", "valkey")
    data = handler.apply(ApplyInput(APP, section, facts, ServiceUser("u", "pw"), "ca")).unwrap().data
    assert not any("REPLICA" in k for k in data)
    assert len(data) == 10


def _meta(annotations: dict[str, str], namespace: str = "team-a") -> SecretMeta:
    return SecretMeta.from_raw(
        {
            "metadata": {
                "name": "s",
                "namespace": namespace,
                "labels": {"app": "myapp"},
                "annotations": annotations,
            }
        }
    )


def test_cleanup_from_annotations() -> None:
    kafka = cleanup_actions(
        _meta({L.KAFKA_SERVICE_USER: "u1", L.KAFKA_POOL: "nav-prod", L.KAFKA_SERVICE_NAME: "kafka"})
    )
    assert kafka == (DeleteServiceUser(ServiceType.KAFKA, "nav-prod", "kafka", "u1"),)
    guard = RequiredObject("aiven.io/v1alpha1", AivenObjectKind.OPENSEARCH, "team-a", "opensearch-team-a-logs")
    opensearch = cleanup_actions(
        _meta(
            {
                L.OPENSEARCH_SERVICE_USER: "team-a-r-abc",
                L.OPENSEARCH_SERVICE_NAME: "opensearch-team-a-logs",
                L.OPENSEARCH_PROJECT: "dev-nais-dev",
            }
        )
    )
    assert opensearch == (
        RemoveOpenSearchAcl("dev-nais-dev", "opensearch-team-a-logs", "team-a-r-abc", guard),
        DeleteServiceUser(
            ServiceType.OPENSEARCH, "dev-nais-dev", "opensearch-team-a-logs", "team-a-r-abc", guard
        ),
    )
    valkey = cleanup_actions(
        _meta(
            {
                "cache.valkey.aiven.nais.io/serviceUser": "myapp-r-abc",
                "cache.valkey.aiven.nais.io/serviceName": "valkey-team-a-cache",
                L.VALKEY_PROJECT: "dev-nais-dev",
            },
            namespace="team-a",
        )
    )
    assert valkey == (
        DeleteServiceUser(
            ServiceType.VALKEY,
            "dev-nais-dev",
            "valkey-team-a-cache",
            "myapp-r-abc",
            RequiredObject("aiven.io/v1alpha1", AivenObjectKind.VALKEY, "team-a", "valkey-team-a-cache"),
        ),
    )


def test_cleanup_of_go_operator_kafka_secret_tries_both_service_names() -> None:
    actions = cleanup_actions(_meta({L.KAFKA_SERVICE_USER: "u1", L.KAFKA_POOL: "nav-prod"}))
    assert [a.service for a in actions] == ["kafka", "nav-prod-kafka"]


def test_cleanup_guards_use_the_secrets_own_namespace() -> None:
    forged = _meta(
        {
            L.OPENSEARCH_SERVICE_USER: "team-b-r-abc",
            L.OPENSEARCH_SERVICE_NAME: "opensearch-team-b-logs",
            L.OPENSEARCH_PROJECT: "dev-nais-dev",
        },
        namespace="attacker",
    )
    actions = cleanup_actions(forged)
    assert actions and all(a.requires is not None and a.requires.namespace == "attacker" for a in actions)


def test_cleanup_ignores_secrets_without_our_annotations() -> None:
    assert cleanup_actions(_meta({"unrelated": "x", L.KAFKA_POOL: "nav-prod"})) == ()


def test_applied_annotations_are_enough_for_cleanup() -> None:
    """Whatever apply writes, cleanup can act on: one user deletion per section."""
    ca, cert, key = tls_material(0)
    for handler, section in all_sections(APP):
        target = handler.target(APP, section, CONFIG)
        facts = _facts(
            section.service_type,
            target.candidates[0].service,
            target.project,
            *{
                ServiceType.KAFKA: ("kafka",),
                ServiceType.OPENSEARCH: ("opensearch",),
                ServiceType.VALKEY: ("valkey",),
            }[section.service_type],
        )
        username = handler.username(APP, section).name
        user = ServiceUser(username, "pw", access_cert=cert, access_key=key)
        content = handler.apply(ApplyInput(APP, section, facts, user, ca, {}, "store-pw")).unwrap()
        actions = handler_for(section.service_type).cleanup(_meta(dict(content.annotations)))
        deletes = [a for a in actions if isinstance(a, DeleteServiceUser)]
        assert [(a.project, a.service, a.username) for a in deletes] == [
            (target.project, facts.name, username)
        ]
        assert set(content.annotations) <= handler.owned_annotation_keys(section)
