"""The Aiven adapter: `aivenator.domain.ports.AivenPort` over `httpx` (aiven-api.md §5, §8).

One instance is shared by every worker thread of the operator, so all state (request budget,
caches, ACL locks, counters) is thread-safe. It is a facade over one module per concern:

* `aiven_transport`: the shared HTTP client, request budget, retries with backoff and jitter,
  Retry-After, and the classification of every outcome into `aivenator.domain.facts` errors;
* `aiven_facts`: the project CA and service facts (TTL cache, single flight, invalidation);
* `aiven_users`: service users (ensure, read, delete, Valkey access control);
* `aiven_acl`: the shared OpenSearch ACL document as a verified read-modify-write.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable, Container, Mapping, Sequence
from typing import TYPE_CHECKING

import httpx
from aivenator.adapters.aiven_acl import AivenOpenSearchAcl
from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_facts import AivenFacts
from aivenator.adapters.aiven_transport import AivenTransport, Observer, RetryPolicy
from aivenator.adapters.aiven_users import PROTECTED_USERS, AivenUsers
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.facts import (
    AivenError,
    OpenSearchAclConfig,
    OpenSearchRule,
    ServiceFacts,
    ServiceUser,
    ValkeyAccessControl,
)
from returns.result import Result

_DEFAULT_RETRY = RetryPolicy()


class AivenHttp:
    """`AivenPort` over HTTP. Thread-safe; build one per process and share it."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = _DEFAULT_RETRY,
        budget: RequestBudget | None = None,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        user_agent: str | None = None,
        observer: Observer | None = None,
        secrets: SecretRegistry | None = None,
    ) -> None:
        self._transport = AivenTransport(
            base_url,
            token,
            transport=transport,
            timeout=timeout,
            retry=retry,
            budget=budget,
            clock=clock,
            sleep=sleep,
            random=random,
            user_agent=user_agent,
            observer=observer,
            secrets=secrets,
        )
        self._retry = retry
        self._facts = AivenFacts(self._transport, cache_ttl)
        self._users = AivenUsers(self._transport, self._facts)
        self._acl = AivenOpenSearchAcl(self._transport, self._facts)

    # --- lifecycle and introspection -----------------------------------------------------------

    @property
    def retry_policy(self) -> RetryPolicy:
        """How hard each call tries (`attempts`: requests per call for retryable errors)."""
        return self._retry

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> AivenHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent so far (retries included), per Aiven operation name."""
        return self._transport.request_counts()

    def invalidate(self, project: str, service: str | None = None) -> None:
        """Forget cached facts of one service (or the project CA when `service` is None)."""
        self._facts.invalidate(project, service)

    # --- AivenProjects and AivenServices -------------------------------------------------------

    def project_ca(self, project: str) -> Result[str, AivenError]:
        return self._facts.project_ca(project)

    def service(self, project: str, service: str) -> Result[ServiceFacts, AivenError]:
        return self._facts.service(project, service)

    def cached_service(self, project: str, service: str) -> ServiceFacts | None:
        """The service's facts if they are cached and fresh; never sends a request (for checks on
        the steady-state path, such as exact drift detection in `aivenator.domain.sync.needs_sync`)."""
        return self._facts.cached_service(project, service)

    def list_services(self, project: str) -> Result[tuple[ServiceFacts, ...], AivenError]:
        """Every service of the project with its user names, in one request (for the orphan sweep)."""
        return self._facts.list_services(project)

    def known_users(self, project: str, service: str) -> Container[str]:
        """The service's user names as known now (last read plus our creates and deletes); O(1)."""
        return self._facts.known_users(project, service)

    def users_by_convention(self, project: str, service: str) -> Mapping[str, int]:
        """How many known users follow each naming convention; O(1), never sends a request."""
        return self._facts.users_by_convention(project, service)

    # --- AivenServiceUsers -----------------------------------------------------------------------

    def get_user(self, project: str, service: str, username: str) -> Result[ServiceUser, AivenError]:
        return self._users.get_user(project, service, username)

    def ensure_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None = None,
    ) -> Result[ServiceUser, AivenError]:
        return self._users.ensure_user(project, service, username, access_control)

    def delete_user(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        return self._users.delete_user(project, service, username)

    def set_access_control(
        self, project: str, service: str, username: str, access_control: ValkeyAccessControl
    ) -> Result[None, AivenError]:
        return self._users.set_access_control(project, service, username, access_control)

    # --- AivenOpenSearchAcls -----------------------------------------------------------------------

    def get_acl_config(self, project: str, service: str) -> Result[OpenSearchAclConfig, AivenError]:
        return self._acl.get_acl_config(project, service)

    def put_user_rules(
        self, project: str, service: str, username: str, rules: tuple[OpenSearchRule, ...]
    ) -> Result[None, AivenError]:
        return self._acl.put_user_rules(project, service, username, rules)

    def remove_user_rules(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        return self._acl.remove_user_rules(project, service, username)


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port (never runs)
    from aivenator.domain.ports import AivenFactsCache, AivenPort

    def _conforms(adapter: AivenHttp) -> AivenPort:
        return adapter

    def _caches(adapter: AivenHttp) -> AivenFactsCache:
        return adapter


__all__: Sequence[str] = ["PROTECTED_USERS", "AivenHttp", "Observer", "RequestBudget", "RetryPolicy"]
