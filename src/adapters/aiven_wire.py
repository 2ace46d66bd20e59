"""Aiven JSON ⇄ domain values (aiven-api.md §5). Plain functions, no I/O.

Parsing is lenient about extra or missing optional fields and strict about the fields the
operator relies on; a shape it cannot use raises `WireError`, which the adapter turns into an
error value once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from aivenator.domain.facts import (
    Endpoint,
    OpenSearchAcl,
    OpenSearchAclConfig,
    OpenSearchRule,
    ServiceFacts,
    ServiceType,
    ServiceUser,
    ValkeyAccessControl,
)


class WireError(ValueError):
    """A 2xx body that does not have the shape the contract promises. Never carries the body."""


def _obj(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise WireError(f"{what} is not an object")
    return value


def _list(value: object, what: str) -> Sequence[object]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WireError(f"{what} is not a list")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise WireError(f"{what} is not a string")
    return value


def _opt_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    return _str(value, what)


def _time(value: object, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    text = _str(value, what)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WireError(f"{what} is not an RFC 3339 time") from exc


def unwrap(body: object, key: str) -> object:
    obj = _obj(body, "response body")
    if key not in obj:
        raise WireError(f"response body has no {key!r}")
    return obj[key]


# --- Services -------------------------------------------------------------------------------

#: purpose → (component, usage, extra predicate on the component)
_PURPOSES: tuple[tuple[str, str, str], ...] = (
    ("kafka", "kafka", "primary"),
    ("schema_registry", "schema_registry", "primary"),
    ("opensearch", "opensearch", "primary"),
    ("opensearch_dashboards", "opensearch_dashboards", "primary"),
    ("valkey", "valkey", "primary"),
    ("valkey_replica", "valkey", "replica"),
)


def _matches(component: Mapping[str, object], name: str, usage: str) -> bool:
    if component.get("component") != name:
        return False
    # A component without `usage` is the primary one (older shapes omit it).
    if component.get("usage", "primary") != usage:
        return False
    # Kafka has one listener per authentication method; only the certificate one is ours
    # (absent means the service has a single, certificate listener).
    return not (name == "kafka" and component.get("kafka_authentication_method") not in (None, "certificate"))


def pick_endpoints(components: Sequence[object]) -> tuple[tuple[str, Endpoint], ...]:
    """One endpoint per purpose: among matching components prefer route `dynamic`, else the first."""
    comps = [_obj(c, "component") for c in components]
    picked: list[tuple[str, Endpoint]] = []
    for purpose, name, usage in _PURPOSES:
        matching = [c for c in comps if _matches(c, name, usage)]
        if not matching:
            continue
        chosen = next((c for c in matching if c.get("route") == "dynamic"), matching[0])
        host = _str(chosen.get("host"), f"{name} component host")
        port = chosen.get("port")
        if isinstance(port, bool) or not isinstance(port, int | str):
            raise WireError(f"{name} component port is not a number")
        try:
            port_number = int(port)
        except ValueError as exc:
            raise WireError(f"{name} component port is not a number") from exc
        picked.append((purpose, Endpoint(host=host, port=port_number)))
    return tuple(picked)


class UnsupportedServiceType(WireError):
    pass


def parse_service(project: str, body: object) -> ServiceFacts:
    svc = _obj(unwrap(body, "service"), "service")
    name = _str(svc.get("service_name"), "service_name")
    raw_type = _str(svc.get("service_type"), "service_type")
    try:
        service_type = ServiceType(raw_type)
    except ValueError as exc:
        raise UnsupportedServiceType(f"service {name} has unsupported type {raw_type!r}") from exc
    state = _str(svc.get("state"), "state")
    raw_users = [_obj(u, "user") for u in _list(svc.get("users"), "users")]
    users = tuple(_str(u.get("username"), "username") for u in raw_users)
    builtin = tuple(
        name for name, u in zip(users, raw_users, strict=True) if _opt_str(u.get("type"), "type") == "primary"
    )
    return ServiceFacts(
        project=project,
        name=name,
        service_type=service_type,
        state=state,
        endpoints=pick_endpoints(_list(svc.get("components"), "components")),
        usernames=users,
        builtin_usernames=builtin,
    )


def user_secrets(body: object) -> tuple[str, ...]:
    """Every secret string in a service object or user object, for the redaction registry.

    Best effort and never raising: it runs on bodies that may not parse.
    """
    found: list[str] = []

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif (
            isinstance(value, str)
            and value
            and ("password" in key or key in ("access_key", "kafka_access_key") or "PRIVATE KEY" in value)
        ):
            found.append(value)
        elif isinstance(value, str) and "://" in value and "@" in value:
            m = re.search(r"://[^/\s:@]*:([^@\s/]+)@", value)
            if m:
                found.append(m.group(1))

    walk(body)
    return tuple(found)


# --- Users -----------------------------------------------------------------------------------


def _access_control(value: object) -> ValkeyAccessControl | None:
    if value is None:
        return None
    ac = _obj(value, "access_control")
    keys = ("valkey_acl_categories", "valkey_acl_commands", "valkey_acl_keys", "valkey_acl_channels")
    if not any(k in ac and ac[k] is not None for k in keys):
        return None

    def strs(k: str) -> tuple[str, ...]:
        return tuple(_str(x, k) for x in _list(ac.get(k), k))

    return ValkeyAccessControl(
        categories=strs("valkey_acl_categories"),
        commands=strs("valkey_acl_commands"),
        keys=strs("valkey_acl_keys"),
        channels=strs("valkey_acl_channels"),
    )


def parse_user(body: object) -> ServiceUser:
    user = _obj(unwrap(body, "user"), "user")
    password = user.get("password")
    return ServiceUser(
        username=_str(user.get("username"), "username"),
        # `null` (user-overridden password) decodes as empty, as in the Go client.
        password="" if password is None else _str(password, "password"),
        user_type=_opt_str(user.get("type"), "type") or "regular",
        access_cert=_opt_str(user.get("access_cert"), "access_cert"),
        access_key=_opt_str(user.get("access_key"), "access_key"),
        cert_not_valid_after=_time(
            user.get("access_cert_not_valid_after_time"), "access_cert_not_valid_after_time"
        ),
        access_control=_access_control(user.get("access_control")),
    )


def access_control_body(ac: ValkeyAccessControl) -> dict[str, list[str]]:
    return {
        "valkey_acl_categories": list(ac.categories),
        "valkey_acl_commands": list(ac.commands),
        "valkey_acl_keys": list(ac.keys),
        "valkey_acl_channels": list(ac.channels),
    }


def same_access_control(have: ValkeyAccessControl | None, want: ValkeyAccessControl) -> bool:
    """Categories and commands are order-sensitive (Valkey applies them left to right); keys and
    channels are sets."""
    if have is None:
        return False
    return (
        have.categories == want.categories
        and have.commands == want.commands
        and set(have.keys) == set(want.keys)
        and set(have.channels) == set(want.channels)
    )


def credentials_complete(user: ServiceUser, service_type: ServiceType) -> bool:
    """Whether a read returned everything the Secret needs (right after create or a password
    change the API can briefly answer with an empty password)."""
    if not user.password or user.password == "<redacted>":
        return False
    if service_type is ServiceType.KAFKA:
        return bool(user.access_cert and user.access_key and user.cert_not_valid_after)
    return True


# --- OpenSearch ACL --------------------------------------------------------------------------


def acl_document(body: object) -> dict[str, object]:
    """The raw `opensearch_acl_config` object (kept raw so fields we do not model survive a
    read-modify-write, e.g. the legacy `extendedAcl`)."""
    return dict(_obj(unwrap(body, "opensearch_acl_config"), "opensearch_acl_config"))


def parse_acl_config(doc: Mapping[str, object]) -> OpenSearchAclConfig:
    acls: list[OpenSearchAcl] = []
    for raw in _list(doc.get("acls"), "acls"):
        entry = _obj(raw, "acl")
        rules = tuple(
            OpenSearchRule(
                index=_str(_obj(r, "rule").get("index"), "index"),
                permission=_str(_obj(r, "rule").get("permission"), "permission"),
            )
            for r in _list(entry.get("rules"), "rules")
        )
        acls.append(OpenSearchAcl(username=_str(entry.get("username"), "username"), rules=rules))
    enabled = doc.get("enabled", False)
    if not isinstance(enabled, bool):
        raise WireError("enabled is not a boolean")
    return OpenSearchAclConfig(enabled=enabled, acls=tuple(acls))


def rules_body(rules: Sequence[OpenSearchRule]) -> list[dict[str, str]]:
    return [{"index": r.index, "permission": r.permission} for r in rules]


def acl_entries(doc: Mapping[str, object]) -> list[dict[str, object]]:
    return [dict(_obj(e, "acl")) for e in _list(doc.get("acls"), "acls")]


def entry_rules(entry: Mapping[str, object]) -> list[tuple[str, str]]:
    return [
        (str(_obj(r, "rule").get("index")), str(_obj(r, "rule").get("permission")))
        for r in _list(entry.get("rules"), "rules")
    ]
