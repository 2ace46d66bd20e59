"""The AivenApplication as frozen values.

`aivenator.domain.parse.parse_application(raw, allowed_projects)` turns the plain dict the Kubernetes API
returns into an `AivenApplication` (or every problem at once); everything downstream works on
these values only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class KafkaSpec:
    pool: str
    secret_name: str


@dataclass(frozen=True, slots=True)
class OpenSearchSpec:
    instance: str
    access: Access
    secret_name: str


@dataclass(frozen=True, slots=True)
class ValkeySpec:
    instance: str
    access: Access
    secret_name: str


@dataclass(frozen=True, slots=True)
class AivenApplication:
    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]
    kafka: KafkaSpec | None
    opensearch: OpenSearchSpec | None
    valkey: tuple[ValkeySpec, ...]
    protected: bool
    expires_at: datetime | None
    deprecated_secret_name: str | None
    #: The Go operator's synchronizationHash of the spec (`aivenator.domain.sync_hash`).
    spec_hash: str
    status_hash: str | None
    deletion_requested: bool = False

    def label(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.labels if k == key), default)

    def annotation(self, key: str, default: str = "") -> str:
        return next((v for k, v in self.annotations if k == key), default)

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Every Secret name this application refers to (per-service and deprecated)."""
        names: list[str] = []
        if self.kafka is not None:
            names.append(self.kafka.secret_name)
        if self.opensearch is not None:
            names.append(self.opensearch.secret_name)
        names.extend(v.secret_name for v in self.valkey)
        if self.deprecated_secret_name:
            names.append(self.deprecated_secret_name)
        return tuple(names)
