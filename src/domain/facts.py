"""Plain values describing the Aiven side, as the domain sees it.

The Aiven adapter (and the simulator) produce these; the pure domain consumes them. They carry
no behaviour beyond small derived properties, so they can be built by hand in tests and in the
`render` facts file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ServiceType(StrEnum):
    KAFKA = "kafka"
    OPENSEARCH = "opensearch"
    VALKEY = "valkey"


#: Service states in which user operations may proceed (aiven-api.md §8).
USABLE_STATES = frozenset({"RUNNING", "REBALANCING"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What the operator needs to know about one Aiven service.

    `endpoints` maps a purpose to an endpoint, picked from the service's `components` by the
    adapter: `kafka` (certificate listener), `schema_registry`, `opensearch`,
    `opensearch_dashboards`, `valkey`, `valkey_replica`. A missing key means the service has no
    such endpoint (for example no replica, no dashboard).
    """

    project: str
    name: str
    service_type: ServiceType
    state: str
    endpoints: tuple[tuple[str, Endpoint], ...] = ()
    usernames: tuple[str, ...] = ()
    #: Users Aiven reports with `type` `primary`: built in, never the operator's to hand out or
    #: delete, whatever their name.
    builtin_usernames: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.state in USABLE_STATES

    def endpoint(self, purpose: str) -> Endpoint | None:
        for key, value in self.endpoints:
            if key == purpose:
                return value
        return None


@dataclass(frozen=True, slots=True)
class ValkeyAccessControl:
    categories: tuple[str, ...]
    commands: tuple[str, ...]
    keys: tuple[str, ...]
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """A service user with its credentials (read with include_secrets=true)."""

    username: str
    password: str = field(repr=False)
    user_type: str = "regular"
    access_cert: str | None = field(default=None, repr=False)
    access_key: str | None = field(default=None, repr=False)
    cert_not_valid_after: datetime | None = None
    access_control: ValkeyAccessControl | None = None


@dataclass(frozen=True, slots=True)
class OpenSearchRule:
    index: str
    permission: str


@dataclass(frozen=True, slots=True)
class OpenSearchAcl:
    username: str
    rules: tuple[OpenSearchRule, ...]


@dataclass(frozen=True, slots=True)
class OpenSearchAclConfig:
    enabled: bool
    acls: tuple[OpenSearchAcl, ...]


# --- Errors from the Aiven side, classified once by the adapter -----------------------------
# Messages are already redacted by the adapter: they never carry tokens, passwords, keys or
# certificate bodies.


@dataclass(frozen=True, slots=True)
class Throttled:
    """429 (or a spent client-side budget): retry no earlier than `retry_after` seconds."""

    retry_after: float
    message: str = "throttled"


@dataclass(frozen=True, slots=True)
class Unavailable:
    """5xx, timeouts, connection resets, service not RUNNING: worth retrying later."""

    message: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class NotFound:
    message: str


@dataclass(frozen=True, slots=True)
class Conflict:
    message: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A 4xx that will not get better by retrying (bad input, forbidden, unauthorized)."""

    message: str
    status: int = 400


AivenError = Throttled | Unavailable | NotFound | Conflict | Rejected
