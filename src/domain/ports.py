"""Ports: the roles the shell needs at real I/O edges. Adapters implement them.

Only Protocols live here; the Kubernetes roles are in `aivenator.domain.kubernetes_port`.
Every method returns a `returns` Result whose failure side is an `AivenError` value; exceptions
from an adapter mean a bug.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Protocol

from aivenator.domain.facts import (
    AivenError,
    OpenSearchAclConfig,
    OpenSearchRule,
    ServiceFacts,
    ServiceUser,
    ValkeyAccessControl,
)
from returns.result import Result


class AivenProjects(Protocol):
    def project_ca(self, project: str) -> Result[str, AivenError]:
        """PEM of the project's CA certificate."""
        ...


class AivenServices(Protocol):
    def service(self, project: str, service: str) -> Result[ServiceFacts, AivenError]:
        """Facts about one service (state, endpoints, user names)."""
        ...

    def list_services(self, project: str) -> Result[tuple[ServiceFacts, ...], AivenError]:
        """Every service of the project with its user names, in one request (the orphan sweep
        and the audit must also see services that nothing names any more)."""
        ...

    def invalidate(self, project: str, service: str | None = None) -> None:
        """Forget cached facts of one service (or the project CA when `service` is None), so the
        next read asks Aiven."""
        ...

    def known_users(self, project: str, service: str) -> Container[str]:
        """The service's user names as known now (its last read plus our own creates and deletes
        since): O(1) membership; never asks Aiven (empty before the service was read)."""
        ...

    def users_by_convention(self, project: str, service: str) -> Mapping[str, int]:
        """How many of `known_users` follow each `names.username_convention` (every convention,
        zeros included; empty before the service was read): O(1); never asks Aiven."""
        ...


class AivenServiceUsers(Protocol):
    def get_user(self, project: str, service: str, username: str) -> Result[ServiceUser, AivenError]: ...

    def ensure_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None = None,
    ) -> Result[ServiceUser, AivenError]:
        """Get the user, or create it; a 409 on create means someone else made it: read it again."""
        ...

    def delete_user(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        """Delete the user; an already-missing user (or service) counts as success."""
        ...

    def set_access_control(
        self, project: str, service: str, username: str, access_control: ValkeyAccessControl
    ) -> Result[None, AivenError]: ...


class AivenOpenSearchAcls(Protocol):
    def get_acl_config(self, project: str, service: str) -> Result[OpenSearchAclConfig, AivenError]: ...

    def put_user_rules(
        self, project: str, service: str, username: str, rules: tuple[OpenSearchRule, ...]
    ) -> Result[None, AivenError]:
        """Set this user's rules in the shared ACL document (and enable it), without losing others'."""
        ...

    def remove_user_rules(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        """Remove this user's entry from the shared ACL document; absent entry is success."""
        ...


class AivenFactsCache(Protocol):
    def cached_service(self, project: str, service: str) -> ServiceFacts | None:
        """Fresh cached facts of the service, or None; never asks Aiven (steady-state checks)."""
        ...


class AivenPort(AivenProjects, AivenServices, AivenServiceUsers, AivenOpenSearchAcls, Protocol):
    """Everything the operator asks of Aiven."""
