"""Actions as data: what the shell must do against Aiven to clean up after a Secret.

Service handlers derive these from a Secret's labels and annotations alone
(`aivenator.domain.services.cleanup_actions`). Those annotations are tenant-writable, so an action is a
*request*: the finalizer checks ownership (`aivenator.domain.names.owner_matches`) and, when `requires`
is set, that the named `aiven.io` object exists in the Secret's own namespace before acting.
"""

from __future__ import annotations

from dataclasses import dataclass

from aivenator.domain.facts import ServiceType
from aivenator.domain.labels import AivenObjectKind


@dataclass(frozen=True, slots=True)
class RequiredObject:
    """A Kubernetes object that must exist in `namespace` (for example an `aiven.io/v1alpha1`
    OpenSearch or Valkey named like the Aiven service). For apply it must also be RUNNING; for
    cleanup its existence in the Secret's namespace proves that namespace owns the service."""

    api_version: str
    kind: AivenObjectKind
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class DeleteServiceUser:
    service_type: ServiceType
    project: str
    service: str
    username: str
    requires: RequiredObject | None = None


@dataclass(frozen=True, slots=True)
class RemoveOpenSearchAcl:
    project: str
    service: str
    username: str
    requires: RequiredObject | None = None


Action = DeleteServiceUser | RemoveOpenSearchAcl
