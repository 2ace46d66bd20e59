"""From the API's plain dict to an `AivenApplication`, reporting every problem at once.

`spec_hash(raw_spec)`: the Go operator's `status.synchronizationHash` of the spec
(`aivenator.domain.sync_hash`), recorded after a successful synchronization; equal values mean
the Go operator and we consider the application synchronized alike, so a takeover resyncs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aivenator.domain.application import Access, AivenApplication, KafkaSpec, OpenSearchSpec, ValkeySpec
from aivenator.domain.limits import MAX_NAME, MAX_SECRET_NAME, MAX_TIMESTAMP, MAX_VALKEY
from aivenator.domain.sync_hash import synchronization_hash
from returns.result import Failure, Result, Success

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INSTANCE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ACCESS_VALUES = ", ".join(a.value for a in Access)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input; `field` is a dotted path such as `spec.valkey[1].secretName`."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True, slots=True)
class InvalidSpec:
    problems: tuple[Problem, ...]

    def __str__(self) -> str:
        return "; ".join(str(p) for p in self.problems)


@dataclass(frozen=True, slots=True)
class ParsedApplication:
    app: AivenApplication
    warnings: tuple[Problem, ...] = ()


def spec_hash(raw_spec: Mapping[str, object] | None) -> str:
    return synchronization_hash(raw_spec)


def is_valid_secret_name(name: str) -> bool:
    return 0 < len(name) <= MAX_SECRET_NAME and bool(_DNS1123_SUBDOMAIN.match(name))


def parse_rfc3339(value: str) -> datetime | None:
    """An RFC 3339 date-time with an explicit offset (or `Z`), else None."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def too_long(self, value: object, limit: int, path: str) -> bool:
        """Report a string past `limit` characters (the CRD's `maxLength`); True if it was."""
        if isinstance(value, str) and len(value) > limit:
            self.add(path, f"is {len(value)} characters long; at most {limit} are allowed")
            return True
        return False


def _string_map(value: object, path: str, c: _Collector) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        c.add(path, "must be a map of strings")
        return ()
    return tuple(sorted(value.items()))


def _mapping(value: object, path: str, c: _Collector) -> Mapping[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        c.add(path, "must be an object")
        return None
    return value


def _secret_name(section: Mapping[str, object], path: str, c: _Collector) -> str:
    value = section.get("secretName")
    if value is None or value == "":
        c.add(f"{path}.secretName", "is required")
        return ""
    if not isinstance(value, str):
        c.add(f"{path}.secretName", "must be a string")
        return ""
    if c.too_long(value, MAX_SECRET_NAME, f"{path}.secretName"):
        return value
    if not is_valid_secret_name(value):
        c.add(
            f"{path}.secretName",
            "is not a valid Secret name (lower-case DNS-1123 subdomain, at most 253 characters)",
        )
    return value


def _access(section: Mapping[str, object], path: str, c: _Collector) -> Access:
    value = section.get("access")
    if value is None or value == "":
        return Access.READ
    if not isinstance(value, str) or value not in {a.value for a in Access}:
        c.add(f"{path}.access", f"must be one of {_ACCESS_VALUES}")
        return Access.READ
    return Access(value)


def _instance(section: Mapping[str, object], path: str, c: _Collector) -> str:
    value = section.get("instance")
    if value is None or value == "":
        c.add(f"{path}.instance", "is required")
        return ""
    if not isinstance(value, str):
        c.add(f"{path}.instance", "must be a string")
        return ""
    if c.too_long(value, MAX_NAME, f"{path}.instance"):
        return value
    if len(value) > 63 or not _INSTANCE.match(value):
        c.add(f"{path}.instance", "must be lower-case letters, digits and '-' (at most 63 characters)")
    return value


def _kafka(raw: object, allowed_projects: frozenset[str], c: _Collector) -> KafkaSpec | None:
    section = _mapping(raw, "spec.kafka", c)
    if section is None:
        return None
    pool = section.get("pool")
    if pool is None or pool == "":
        c.add("spec.kafka.pool", "is required")
        pool = ""
    elif not isinstance(pool, str):
        c.add("spec.kafka.pool", "must be a string")
        pool = ""
    elif c.too_long(pool, MAX_NAME, "spec.kafka.pool"):
        pass
    elif pool not in allowed_projects:
        c.add("spec.kafka.pool", f"pool {pool!r} is not one of the allowed projects")
    return KafkaSpec(pool=pool, secret_name=_secret_name(section, "spec.kafka", c))


def _opensearch(raw: object, c: _Collector) -> OpenSearchSpec | None:
    section = _mapping(raw, "spec.openSearch", c)
    if section is None:
        return None
    return OpenSearchSpec(
        instance=_instance(section, "spec.openSearch", c),
        access=_access(section, "spec.openSearch", c),
        secret_name=_secret_name(section, "spec.openSearch", c),
    )


def _valkey(raw: object, c: _Collector) -> tuple[ValkeySpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("spec.valkey", "must be a list")
        return ()
    if len(raw) > MAX_VALKEY:
        # Only the count is reported: judging thousands of entries is the work the limit avoids.
        c.add("spec.valkey", f"has {len(raw)} entries; at most {MAX_VALKEY} are allowed")
        return ()
    specs: list[ValkeySpec] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        path = f"spec.valkey[{index}]"
        section = _mapping(item, path, c)
        if section is None:
            if item is None:
                c.add(path, "must be an object")
            continue
        spec = ValkeySpec(
            instance=_instance(section, path, c),
            access=_access(section, path, c),
            secret_name=_secret_name(section, path, c),
        )
        if spec.instance and spec.instance in seen:
            c.add(
                f"{path}.instance",
                f"instance {spec.instance!r} is already used by spec.valkey[{seen[spec.instance]}]",
            )
        seen.setdefault(spec.instance, index)
        specs.append(spec)
    return tuple(specs)


def _duplicate_secret_names(
    kafka: KafkaSpec | None, opensearch: OpenSearchSpec | None, valkey: tuple[ValkeySpec, ...], c: _Collector
) -> None:
    owners: dict[str, str] = {}
    named: list[tuple[str, str]] = []
    if kafka is not None:
        named.append(("spec.kafka.secretName", kafka.secret_name))
    if opensearch is not None:
        named.append(("spec.openSearch.secretName", opensearch.secret_name))
    named.extend((f"spec.valkey[{i}].secretName", v.secret_name) for i, v in enumerate(valkey))
    for path, name in named:
        if not name:
            continue
        if name in owners:
            c.add(path, f"Secret name {name!r} is already used by {owners[name]}")
        else:
            owners[name] = path


def parse_application(
    raw: Mapping[str, object], allowed_projects: frozenset[str]
) -> Result[ParsedApplication, InvalidSpec]:
    """Parse an AivenApplication object (API dict shape). Pure; reports every problem found."""
    c = _Collector()
    metadata = _mapping(raw.get("metadata"), "metadata", c) or {}
    name = metadata.get("name")
    namespace = metadata.get("namespace")
    for key, value in (("name", name), ("namespace", namespace)):
        if not isinstance(value, str) or not value:
            c.add(f"metadata.{key}", "is required")
    generation = metadata.get("generation")
    if generation is None:
        c.warnings.append(Problem("metadata.generation", "missing; assuming 1"))
        generation = 1
    elif isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        c.add("metadata.generation", "must be a non-negative integer")
        generation = 0
    labels = _string_map(metadata.get("labels"), "metadata.labels", c)
    annotations = _string_map(metadata.get("annotations"), "metadata.annotations", c)

    raw_spec = raw.get("spec")
    spec = _mapping(raw_spec, "spec", c) or {}
    if raw_spec is None:
        c.add("spec", "is required")

    protected = spec.get("protected", False)
    if protected is None:
        protected = False
    if not isinstance(protected, bool):
        c.add("spec.protected", "must be true or false")
        protected = False

    expires_at: datetime | None = None
    raw_expires = spec.get("expiresAt")
    if c.too_long(raw_expires, MAX_TIMESTAMP, "spec.expiresAt"):
        pass
    elif raw_expires not in (None, ""):
        expires_at = parse_rfc3339(raw_expires) if isinstance(raw_expires, str) else None
        if expires_at is None:
            c.add("spec.expiresAt", "must be an RFC 3339 date-time with a time zone")

    deprecated = spec.get("secretName")
    if deprecated not in (None, ""):
        if not isinstance(deprecated, str):
            c.add("spec.secretName", "must be a string")
            deprecated = None
        elif c.too_long(deprecated, MAX_SECRET_NAME, "spec.secretName"):
            deprecated = None
        else:
            c.warnings.append(
                Problem("spec.secretName", "is deprecated and ignored; use the per-service secretName")
            )
    else:
        deprecated = None

    kafka = _kafka(spec.get("kafka"), allowed_projects, c)
    opensearch = _opensearch(spec.get("openSearch"), c)
    valkey = _valkey(spec.get("valkey"), c)
    _duplicate_secret_names(kafka, opensearch, valkey, c)

    status = raw.get("status")
    status_hash: str | None = None
    if isinstance(status, Mapping):
        value = status.get("synchronizationHash")
        status_hash = value if isinstance(value, str) and value else None

    if c.problems:
        return Failure(InvalidSpec(tuple(c.problems)))
    app = AivenApplication(
        namespace=str(namespace),
        name=str(name),
        uid=str(metadata.get("uid") or ""),
        generation=generation,
        resource_version=str(metadata.get("resourceVersion") or ""),
        labels=labels,
        annotations=annotations,
        kafka=kafka,
        opensearch=opensearch,
        valkey=valkey,
        protected=protected,
        expires_at=expires_at,
        deprecated_secret_name=deprecated,
        spec_hash=spec_hash(spec),
        status_hash=status_hash,
        deletion_requested=bool(metadata.get("deletionTimestamp")),
    )
    return Success(ParsedApplication(app, tuple(c.warnings)))
