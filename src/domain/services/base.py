"""The contract every service (Kafka, OpenSearch, Valkey, ...) implements.

A handler is a bundle of pure functions. The shell asks it which sections an application has
(one Secret each), where in Aiven each section lives, which user name and access to ensure,
what the Secret must contain, and what to clean up when a Secret goes away. Adding a service
means one new module with one handler, one line in `aivenator.domain.services.SERVICES`, and (for now) a
`ServiceType` member plus the few service-specific rules listed in `aivenator.domain.services`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aivenator.domain.actions import Action, RequiredObject
from aivenator.domain.application import Access, AivenApplication
from aivenator.domain.facts import OpenSearchRule, ServiceFacts, ServiceType, ServiceUser, ValkeyAccessControl
from aivenator.domain.kubernetes_port import ObjectMeta
from aivenator.domain.names import NameChoice
from returns.result import Result


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Operator configuration a handler needs (`--main-project`)."""

    main_project: str


@dataclass(frozen=True, slots=True)
class Section:
    """One service section of an application, written into exactly one Secret."""

    service_type: ServiceType
    secret_name: str
    #: OpenSearch/Valkey instance name; empty for Kafka.
    instance: str = ""
    #: OpenSearch/Valkey access; None for Kafka.
    access: Access | None = None
    #: Kafka pool (Aiven project); empty for the others.
    pool: str = ""

    @property
    def key(self) -> str:
        """Stable identifier of the section within its app: `kafka`, `opensearch`, `valkey/<instance>`."""
        if self.service_type is ServiceType.VALKEY:
            return f"valkey/{self.instance}"
        return str(self.service_type)


@dataclass(frozen=True, slots=True)
class ServiceCandidate:
    """One possible Aiven service name for a section, tried in order. When `required_object` is
    set, that object must exist in the app's namespace with `status.state == RUNNING`, otherwise
    the candidate is not usable (the app waits)."""

    service: str
    required_object: RequiredObject | None = None


@dataclass(frozen=True, slots=True)
class Target:
    service_type: ServiceType
    project: str
    candidates: tuple[ServiceCandidate, ...]


@dataclass(frozen=True, slots=True)
class ApplyInput:
    """Everything a handler needs to compute its Secret content. Pure values only."""

    app: AivenApplication
    section: Section
    #: The resolved Aiven service (its `project` and `name` are recorded in annotations).
    facts: ServiceFacts
    #: The ensured user, with credentials.
    user: ServiceUser
    #: CA of `facts.project` (PEM); for Kafka this is the pool's CA (`KAFKA_CA`).
    project_ca: str
    #: Decoded data of the Secret as it exists now (empty when there is none).
    existing_data: Mapping[str, bytes] = field(default_factory=dict)
    #: Password for new key/trust stores when existing ones cannot be reused.
    new_store_password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class SecretContent:
    """What one handler contributes to a Secret (timestamps are added by `aivenator.domain.secrets`)."""

    data: Mapping[str, bytes]
    annotations: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderError:
    """Why a section's Secret cannot be rendered (never contains credential values)."""

    section_key: str
    message: str


@dataclass(frozen=True, slots=True)
class SecretMeta:
    """The parts of an existing Secret that cleanup looks at."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]

    @classmethod
    def from_raw(cls, raw: Mapping[str, object]) -> SecretMeta:
        """From the API's dict shape (`{"metadata": {...}, ...}`)."""
        meta = ObjectMeta(raw)
        return cls(
            namespace=meta.namespace,
            name=meta.name,
            labels={str(k): str(v) for k, v in meta.labels.items()},
            annotations={str(k): str(v) for k, v in meta.annotations.items()},
        )


class ServiceHandler(Protocol):
    """One Aiven service type. All methods are pure."""

    @property
    def service_type(self) -> ServiceType: ...

    def sections(self, app: AivenApplication) -> tuple[Section, ...]:
        """The sections of `app` this handler serves (one per Secret)."""
        ...

    def target(self, app: AivenApplication, section: Section, config: ServiceConfig) -> Target:
        """Aiven project and service-name candidates (in the order to try)."""
        ...

    def username(self, app: AivenApplication, section: Section, alternative: int = 0) -> NameChoice:
        """The user name; `alternative` > 0 gives the collision variants (`aivenator.domain.names`)."""
        ...

    def access_control(self, section: Section) -> ValkeyAccessControl | None:
        """Valkey ACL to create/correct the user with; None when the service has none."""
        ...

    def acl_rules(self, section: Section) -> tuple[OpenSearchRule, ...]:
        """OpenSearch ACL rules for the user; empty when the service has none."""
        ...

    def owned_data_keys(self, section: Section) -> frozenset[str]:
        """Every data key this handler may write for the section (also optional ones, so stale
        keys can be removed); excludes the common keys."""
        ...

    def required_data_keys(
        self, section: Section, facts: ServiceFacts | None = None, present: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        """The data keys a correct Secret for the section holds (excludes the common keys); drift
        detection reports any of them missing. With `facts` (the service as last seen) the answer
        is exact. Without facts (the steady-state check makes no Aiven request) keys that depend
        on the service's features are judged by `present`, the keys the Secret holds now: such a
        feature's keys are all there or none is."""
        ...

    def owned_annotation_keys(self, section: Section) -> frozenset[str]: ...

    def timestamp_keys(self, section: Section) -> tuple[str, ...]:
        """Service-specific "last credential change" keys (besides `AIVEN_SECRET_UPDATED`)."""
        ...

    def apply(self, inp: ApplyInput) -> Result[SecretContent, RenderError]: ...

    def cleanup(self, secret: SecretMeta) -> tuple[Action, ...]:
        """Aiven clean-up for a Secret being deleted, from its annotations alone (empty when the
        Secret carries none of this handler's annotations)."""
        ...
