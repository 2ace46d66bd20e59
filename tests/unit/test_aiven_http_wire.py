"""Aiven JSON → domain values: endpoint choice, user parsing, access-control comparison."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aivenator.adapters.aiven_wire import (
    WireError,
    credentials_complete,
    parse_service,
    parse_user,
    pick_endpoints,
    same_access_control,
    user_secrets,
)
from aivenator.domain.facts import Endpoint, ServiceType, ServiceUser, ValkeyAccessControl
from hypothesis import given, settings
from hypothesis import strategies as st

component = st.fixed_dictionaries(
    {
        "component": st.sampled_from(["kafka", "schema_registry", "opensearch", "valkey", "kafka_connect"]),
        "host": st.from_regex(r"[a-z]{1,8}\.example", fullmatch=True),
        "port": st.integers(1, 65535),
        "usage": st.sampled_from(["primary", "replica"]),
    },
    optional={
        "route": st.sampled_from(["dynamic", "private", "public"]),
        "kafka_authentication_method": st.sampled_from(["certificate", "sasl"]),
    },
)


@settings(max_examples=80, deadline=None)
@given(st.lists(component, max_size=8))
def test_each_purpose_gets_the_dynamic_match_or_else_the_first(components: list[dict[str, Any]]) -> None:
    picked = dict(pick_endpoints(components))
    rules: dict[str, Callable[[dict[str, Any]], bool]] = {
        "kafka": lambda c: (
            c["component"] == "kafka"
            and c["usage"] == "primary"
            and c.get("kafka_authentication_method", "certificate") == "certificate"
        ),
        "schema_registry": lambda c: c["component"] == "schema_registry" and c["usage"] == "primary",
        "opensearch": lambda c: c["component"] == "opensearch" and c["usage"] == "primary",
        "valkey": lambda c: c["component"] == "valkey" and c["usage"] == "primary",
        "valkey_replica": lambda c: c["component"] == "valkey" and c["usage"] == "replica",
    }
    for purpose, matches in rules.items():
        candidates = [c for c in components if matches(c)]
        if not candidates:
            assert purpose not in picked
            continue
        dynamic = [c for c in candidates if c.get("route") == "dynamic"]
        want = (dynamic or candidates)[0]
        assert picked[purpose] == Endpoint(want["host"], want["port"])


def test_service_needs_its_core_fields() -> None:
    with pytest.raises(WireError):
        parse_service("p", {"service": {"service_name": "s", "state": "RUNNING"}})
    with pytest.raises(WireError):
        parse_service("p", {"not_service": {}})
    facts = parse_service(
        "p", {"service": {"service_name": "s", "service_type": "valkey", "state": "POWEROFF", "users": None}}
    )
    assert facts.service_type is ServiceType.VALKEY and not facts.usable and facts.usernames == ()


def test_user_parsing_handles_null_password_times_and_access_control() -> None:
    user = parse_user(
        {
            "user": {
                "username": "u",
                "password": None,
                "type": "regular",
                "access_cert_not_valid_after_time": "2028-08-21T10:00:00Z",
                "access_control": {"valkey_acl_categories": ["+@read"], "valkey_acl_keys": ["*"]},
            }
        }
    )
    assert user.password == ""
    assert user.cert_not_valid_after == datetime(2028, 8, 21, 10, tzinfo=UTC)
    assert user.access_control == ValkeyAccessControl(("+@read",), (), ("*",), ())
    with pytest.raises(WireError):
        parse_user({"user": {"username": "u", "access_cert_not_valid_after_time": "soon"}})


def test_access_control_order_matters_for_rules_not_for_keys_and_channels() -> None:
    want = ValkeyAccessControl(("-@all", "+@read"), ("+info",), ("a*", "b*"), ("x", "y"))
    assert same_access_control(
        ValkeyAccessControl(("-@all", "+@read"), ("+info",), ("b*", "a*"), ("y", "x")), want
    )
    assert not same_access_control(
        ValkeyAccessControl(("+@read", "-@all"), ("+info",), ("a*", "b*"), ("x", "y")), want
    )
    assert not same_access_control(None, want)


def test_complete_credentials_per_service_type() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    kafka = ServiceUser("u", "pw", access_cert="c", access_key="k", cert_not_valid_after=when)
    assert credentials_complete(kafka, ServiceType.KAFKA)
    assert not credentials_complete(ServiceUser("u", "pw"), ServiceType.KAFKA)
    assert credentials_complete(ServiceUser("u", "pw"), ServiceType.OPENSEARCH)
    assert not credentials_complete(ServiceUser("u", ""), ServiceType.VALKEY)
    assert not credentials_complete(ServiceUser("u", "<redacted>"), ServiceType.VALKEY)


def test_secrets_are_collected_from_users_and_connection_info() -> None:
    body = {
        "service": {
            "users": [{"username": "avnadmin", "password": "admin-pass-1", "access_key": "KEYDATA"}],
            "connection_info": {
                "opensearch_password": "os-pass-2",
                "schema_registry_uri": "https://avnadmin:uri-pass-3@h:1",
            },
            "service_uri": "rediss://default:uri-pass-4@h:2",
        }
    }
    assert set(user_secrets(body)) == {"admin-pass-1", "KEYDATA", "os-pass-2", "uri-pass-3", "uri-pass-4"}
