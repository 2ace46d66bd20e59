"""Slow-changing Aiven facts: the project CA and each service's facts (state, endpoints, user
names), cached with a TTL and single-flight loading and forgotten when a call suggests they went
stale. Beside them, each service's known user names (a set) and their count per naming convention,
kept in step by the user calls (a created or deleted user updates both in O(1)) and rebuilt from
scratch whenever the service is read again. The `usernames` of the cached `ServiceFacts` stay as
Aiven reported them at that read; `known_users` is the live view."""

from __future__ import annotations

import re
import threading
from collections.abc import Container, Mapping

from aivenator.adapters.aiven_cache import SingleFlightCache
from aivenator.adapters.aiven_transport import AivenTransport, api_path
from aivenator.adapters.aiven_wire import (
    UnsupportedServiceType,
    WireError,
    parse_service,
    unwrap,
    user_secrets,
)
from aivenator.domain import names
from aivenator.domain.facts import AivenError, NotFound, ServiceFacts, Unavailable
from returns.result import Failure, Result, Success

_SERVICE_GONE = re.compile(r"Service (?!user\b)\S+ does not exist|Project does not exist")


#: Members of a service's user objects the facts never read: each user's certificate and key
#: (about 3 KB together). Key material is masked in logs by its PEM shape anyway, so the
#: redaction registry loses nothing; a user's own credentials come from the user endpoints.
BULKY_USER_KEYS = frozenset({"access_cert", "access_key", "access_cert_not_valid_after_time"})


class AivenFacts:
    """Project CA and service facts over a shared `AivenTransport`. Thread-safe."""

    def __init__(self, transport: AivenTransport, cache_ttl: float = 300.0) -> None:
        self._t = transport
        self._cache_ttl = cache_ttl
        self._cas: SingleFlightCache[str, str, AivenError] = SingleFlightCache(transport.clock)
        self._services: SingleFlightCache[tuple[str, str], ServiceFacts, AivenError] = SingleFlightCache(
            transport.clock
        )
        # The service's user names as a set (membership in O(1) on every ensure) and how many
        # follow each naming convention (the service_users_count gauge, O(1) per reconcile), both
        # rebuilt on every read of the service and kept in step by our own creates and deletes.
        self._known: dict[tuple[str, str], set[str]] = {}
        self._counts: dict[tuple[str, str], dict[str, int]] = {}
        self._known_lock = threading.Lock()

    def invalidate(self, project: str, service: str | None = None) -> None:
        """Forget cached facts of one service (or the project CA when `service` is None)."""
        if service is None:
            self._cas.invalidate(project)
        else:
            self._services.invalidate((project, service))

    # --- AivenProjects ---------------------------------------------------------------------------

    def project_ca(self, project: str) -> Result[str, AivenError]:
        deadline = self._t.deadline()

        def load() -> Result[str, AivenError]:
            path = api_path("/v1/project/{project}/kms/ca", project=project)
            return self._t.request("ProjectKmsGetCA", "GET", path, deadline).bind(
                lambda body: self._t.decode("ProjectKmsGetCA", lambda: _certificate(body))
            )

        return self._cas.get_or_load(
            project, load, lambda _: self._cache_ttl, *self._t.follower_wait(deadline)
        )

    # --- AivenServices ---------------------------------------------------------------------------

    def service(self, project: str, service: str) -> Result[ServiceFacts, AivenError]:
        return self.load_service(project, service, self._t.deadline())

    def cached_service(self, project: str, service: str) -> ServiceFacts | None:
        """The service's facts if they are cached and fresh; never sends a request (for checks on
        the steady-state path, such as exact drift detection in `aivenator.domain.sync.needs_sync`)."""
        return self._services.get((project, service))

    def load_service(self, project: str, service: str, deadline: float) -> Result[ServiceFacts, AivenError]:
        def load() -> Result[ServiceFacts, AivenError]:
            path = api_path("/v1/project/{project}/service/{service}", project=project, service=service)
            result: Result[ServiceFacts, AivenError] = self._t.request(
                "ServiceGet", "GET", path, deadline, params={"include_secrets": "true"}, drop_keys=BULKY_USER_KEYS
            ).bind(lambda body: self._t.decode("ServiceGet", lambda: self._service_from(project, body)))
            if isinstance(result, Success):
                known = set(result.unwrap().usernames)
                with self._known_lock:
                    self._known[(project, service)] = known
                    self._counts[(project, service)] = names.count_by_convention(known)
            return result

        def ttl(facts: ServiceFacts) -> float:
            return self._cache_ttl if facts.usable else min(self._cache_ttl, self._t.retry.unusable_ttl)

        return self._services.get_or_load((project, service), load, ttl, *self._t.follower_wait(deadline))

    def _service_from(self, project: str, body: object) -> ServiceFacts:
        # The service object carries the admin's credentials (users[], connection_info, URIs).
        self._t.secrets.add(*user_secrets(body))
        return parse_service(project, body)

    def list_services(self, project: str) -> Result[tuple[ServiceFacts, ...], AivenError]:
        """Every service of the project with its user names, in one request (without secrets:
        only names are needed). For the orphan sweep, which must also see services that no
        Secret or application names any more; services of types the operator does not manage
        are left out."""
        path = api_path("/v1/project/{project}/service", project=project)
        return self._t.request("ServiceList", "GET", path, self._t.deadline(), drop_keys=BULKY_USER_KEYS).bind(
            lambda body: self._t.decode("ServiceList", lambda: self._services_from(project, body))
        )

    def _services_from(self, project: str, body: object) -> tuple[ServiceFacts, ...]:
        items = body.get("services") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise WireError("services: expected a list")
        found: list[ServiceFacts] = []
        for item in items:
            try:
                found.append(parse_service(project, {"service": item}))
            except UnsupportedServiceType:
                continue
        return tuple(found)

    def known_users(self, project: str, service: str) -> Container[str]:
        """The users the service is known to have (from its last read, plus our own creates and
        deletes since): a live read-only view with O(1) membership; never sends a request."""
        with self._known_lock:
            return self._known.get((project, service), frozenset())

    def users_by_convention(self, project: str, service: str) -> Mapping[str, int]:
        """How many of `known_users` follow each naming convention (`names.USERNAME_CONVENTIONS`,
        zeros included; empty when the service was never read): a copy, O(1); never sends a request."""
        with self._known_lock:
            return dict(self._counts.get((project, service), {}))

    def remember_user(self, project: str, service: str, username: str, *, present: bool) -> None:
        """Record a create (or adoption) or a delete in the known users and their per-convention
        counts; O(1). Nothing to do when the service was never read (its first read sees it)."""
        with self._known_lock:
            known = self._known.get((project, service))
            if known is None or (username in known) == present:
                return
            counts = self._counts[(project, service)]
            convention = names.username_convention(username)
            if present:
                known.add(username)
                counts[convention] += 1
            else:
                known.discard(username)
                counts[convention] -= 1

    def invalidate_on(self, project: str, service: str, result: Result[object, AivenError]) -> None:
        """Forget the service's facts when a call suggests they are stale: the service (or its
        project) is gone, or Aiven is failing for it. A plain missing user says nothing about the
        service, so it keeps the cache warm."""
        if not isinstance(result, Failure):
            return
        error = result.failure()
        if isinstance(error, Unavailable) or (
            isinstance(error, NotFound) and _SERVICE_GONE.search(error.message)
        ):
            self._services.invalidate((project, service))


def _certificate(body: object) -> str:
    cert = unwrap(body, "certificate")
    if not isinstance(cert, str) or not cert:
        raise WireError("certificate is not a string")
    return cert
