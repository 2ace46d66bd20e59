"""The Aiven adapter: `aivenator.domain.ports.AivenPort` over `httpx` (aiven-api.md §5, §8).

One instance is shared by every worker thread of the operator, so all state here (request
budget, caches, ACL locks, counters) is thread-safe. What it does beyond plain HTTP calls:

* classifies every outcome once into `aivenator.domain.facts` error values; no httpx exception and no
  response body leaves this module (messages are redacted and bounded);
* retries inside one port call with exponential backoff and jitter, bounded by attempts per
  request and by a time budget per call; honours Retry-After exactly (a 429 pauses the shared
  request budget, so no worker sends before it elapsed) and answers `Throttled` instead of
  sleeping past the call's budget;
* never repeats a create blindly: after a failed or dropped create it reads first, so a create
  that committed before the connection broke leaves exactly one user;
* caches the project CA and service facts (TTL, single flight, invalidated when a user call
  suggests they went stale);
* does the shared OpenSearch ACL document as a verified read-modify-write.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import random as _random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import structlog
from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_cache import SingleFlightCache
from aivenator.adapters.aiven_wire import (
    UnsupportedServiceType,
    WireError,
    access_control_body,
    acl_document,
    acl_entries,
    credentials_complete,
    entry_rules,
    parse_acl_config,
    parse_service,
    parse_user,
    rules_body,
    same_access_control,
    unwrap,
    user_secrets,
)
from aivenator.adapters.redaction import SecretRegistry, default_registry, redact_text
from aivenator.domain.facts import (
    AivenError,
    Conflict,
    NotFound,
    OpenSearchAclConfig,
    OpenSearchRule,
    Rejected,
    ServiceFacts,
    ServiceType,
    ServiceUser,
    Throttled,
    Unavailable,
    ValkeyAccessControl,
)
from aivenator.domain.names import BUILTIN_USERS
from returns.result import Failure, Result, Success

#: (operation, status code or error class name, duration in seconds); wired by the operator to
#: the `aivenator_aiven_latency` histogram.
Observer = Callable[[str, str, float], None]

#: Built-in users the operator must never hand out or delete (product spec §6), by name; users
#: of Aiven `type` `primary` are refused too when the service's facts are at hand.
PROTECTED_USERS = frozenset({"avnadmin", "default"}) | BUILTIN_USERS

_MAX_MESSAGE = 300
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_SERVICE_GONE = re.compile(r"Service (?!user\b)\S+ does not exist|Project does not exist")
_SECRET_WORDS = re.compile(r"credential|passw|secret|token|private|certificate|api.?key", re.IGNORECASE)
# Long runs mixing letters and digits look like generated secrets; names we generate are shorter
# than this or contain separators every few characters.
_LONG_OPAQUE = re.compile(r"[A-Za-z0-9+/=]{20,}")


def _mask_opaque(match: re.Match[str]) -> str:
    word = match.group(0)
    has_alpha = any(c.isalpha() for c in word)
    has_digit = any(c.isdigit() for c in word)
    return "[REDACTED]" if has_alpha and has_digit else word


def _version() -> str:
    try:
        return importlib.metadata.version("aivenator")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


#: Shortest wait for the request budget (seconds); see `_wait_for_budget`.
_MIN_BUDGET_SLEEP = 0.001


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one port call tries before answering with an error value.

    attempts: tries per HTTP request for retryable outcomes (429, 5xx, 408, transport errors).
    call_budget: seconds one port call may take in total, waits included.
    backoff_base / backoff_max: exponential backoff (with jitter) between tries.
    lag_reads / lag_delay: re-reads tolerated right after a create or credential change, when the
        API can briefly answer 404 or an empty password (aiven-api.md §5.3.3).
    acl_attempts: read-modify-write rounds on the OpenSearch ACL document before giving up.
    acl_settle: seconds to wait after writing the ACL document before the final check that no
        other process overwrote it (see `AivenHttp.put_user_rules`).
    unusable_ttl: cache lifetime of facts for a service that is not RUNNING/REBALANCING.
    """

    attempts: int = 3
    call_budget: float = 10.0
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    lag_reads: int = 5
    lag_delay: float = 0.5
    acl_attempts: int = 8
    acl_settle: float = 0.2
    unusable_ttl: float = 5.0


@dataclass(frozen=True, slots=True)
class _Path:
    template: str  # logged: no names of tenants' users in metric-ish fields, no secrets
    url: str


class _PausedBeforeSend(Exception):
    """Raised by the request hook when a pause began after the budget check; never escapes."""


def _path(template: str, **segments: str) -> _Path:
    return _Path(template, template.format(**{k: quote(v, safe="") for k, v in segments.items()}))


class AivenHttp:
    """`AivenPort` over HTTP. Thread-safe; build one per process and share it."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        budget: RequestBudget | None = None,
        cache_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        user_agent: str | None = None,
        observer: Observer | None = None,
        secrets: SecretRegistry | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if base.endswith("/v1"):
            base = base[: -len("/v1")]
        self._secrets = default_registry if secrets is None else secrets
        self._secrets.add(token)
        self._client = httpx.Client(
            base_url=base,
            transport=transport,
            timeout=timeout,
            headers={
                "Authorization": f"aivenv1 {token}",
                "Content-Type": "application/json",
                "User-Agent": user_agent or f"aivenator/{_version()}",
            },
            follow_redirects=False,
            # A 429 pauses every thread the moment its headers arrive, and a request that passed
            # the budget just before is held back at the last moment (see `_request`).
            event_hooks={"request": [self._hold_while_paused], "response": [self._pause_on_throttle]},
        )
        self._timeout = timeout
        self._retry = retry
        self._budget = budget if budget is not None else RequestBudget.unlimited()
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._observer = observer
        self._log = structlog.get_logger()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._cas: SingleFlightCache[str, str, AivenError] = SingleFlightCache(clock)
        self._facts: SingleFlightCache[tuple[str, str], ServiceFacts, AivenError] = SingleFlightCache(clock)
        self._acl_locks: dict[tuple[str, str], threading.Lock] = {}
        self._acl_locks_guard = threading.Lock()

    # --- lifecycle and introspection -----------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AivenHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent so far (retries included), per Aiven operation name."""
        with self._counts_lock:
            return dict(self._counts)

    def invalidate(self, project: str, service: str | None = None) -> None:
        """Forget cached facts of one service (or the project CA when `service` is None)."""
        if service is None:
            self._cas.invalidate(project)
        else:
            self._facts.invalidate((project, service))

    # --- AivenProjects ---------------------------------------------------------------------------

    def project_ca(self, project: str) -> Result[str, AivenError]:
        deadline = self._deadline()

        def load() -> Result[str, AivenError]:
            path = _path("/v1/project/{project}/kms/ca", project=project)
            return self._request("ProjectKmsGetCA", "GET", path, deadline).bind(
                lambda body: self._decode("ProjectKmsGetCA", lambda: _certificate(body))
            )

        return self._cas.get_or_load(project, load, lambda _: self._cache_ttl, *self._follower_wait(deadline))

    # --- AivenServices ---------------------------------------------------------------------------

    def service(self, project: str, service: str) -> Result[ServiceFacts, AivenError]:
        return self._service(project, service, self._deadline())

    def cached_service(self, project: str, service: str) -> ServiceFacts | None:
        """The service's facts if they are cached and fresh; never sends a request (for checks on
        the steady-state path, such as exact drift detection in `aivenator.domain.sync.needs_sync`)."""
        return self._facts.get((project, service))

    def _service(self, project: str, service: str, deadline: float) -> Result[ServiceFacts, AivenError]:
        def load() -> Result[ServiceFacts, AivenError]:
            path = _path("/v1/project/{project}/service/{service}", project=project, service=service)
            return self._request(
                "ServiceGet", "GET", path, deadline, params={"include_secrets": "true"}
            ).bind(lambda body: self._decode("ServiceGet", lambda: self._service_from(project, body)))

        def ttl(facts: ServiceFacts) -> float:
            return self._cache_ttl if facts.usable else min(self._cache_ttl, self._retry.unusable_ttl)

        return self._facts.get_or_load((project, service), load, ttl, *self._follower_wait(deadline))

    # --- AivenServiceUsers -----------------------------------------------------------------------

    def get_user(self, project: str, service: str, username: str) -> Result[ServiceUser, AivenError]:
        result = self._get_user(project, service, username, self._deadline())
        self._invalidate_on(project, service, result)
        return result

    def ensure_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None = None,
    ) -> Result[ServiceUser, AivenError]:
        """GET the user; on 404 create it; on 409 (someone else created it) read it again.

        Returns complete credentials: re-reads briefly while the API still answers 404 or an empty
        password right after a create. A create that failed in transit is never repeated blindly:
        the next round reads first, so a create that committed is adopted, not duplicated. For
        Valkey, an existing user whose access control differs is corrected.
        """
        if username in PROTECTED_USERS:
            return Failure(Rejected(f"refusing to hand out built-in user {username}", status=403))
        deadline = self._deadline()
        facts_result = self._service(project, service, deadline)
        if isinstance(facts_result, Failure):
            return Failure(facts_result.failure())
        facts = facts_result.unwrap()
        if username in facts.builtin_usernames:
            return Failure(Rejected(f"refusing to hand out built-in user {username}", status=403))
        if not facts.usable:
            return Failure(Unavailable(f"service {service} is {facts.state}"))
        result = self._ensure_user(facts, username, access_control, deadline)
        self._invalidate_on(project, service, result)
        if isinstance(result, Success):
            self._log.debug("aiven_user_ensured", project=project, service=service, username=username)
        return result

    def _ensure_user(
        self,
        facts: ServiceFacts,
        username: str,
        access_control: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        project, service = facts.project, facts.name
        last: AivenError = Unavailable(f"could not ensure user on service {service}")
        for round_no in range(1, self._retry.attempts + 1):
            existing = self._get_user(project, service, username, deadline)
            if isinstance(existing, Success):
                user = existing.unwrap()
                if not credentials_complete(user, facts.service_type):
                    completed = self._read_until_complete(facts, username, deadline)
                    if isinstance(completed, Failure):
                        return completed
                    user = completed.unwrap()
                return self._with_access_control(facts, user, access_control, deadline)
            error = existing.failure()
            if not isinstance(error, NotFound):
                return Failure(error)

            created = self._create_user(project, service, username, access_control, deadline)
            if isinstance(created, Success):
                user = created.unwrap()
                self._remember_user(project, service, username, present=True)
                self._log.info("aiven_user_created", project=project, service=service, username=username)
                if not credentials_complete(user, facts.service_type):
                    completed = self._read_until_complete(facts, username, deadline)
                    if isinstance(completed, Failure):
                        return completed
                    user = completed.unwrap()
                return self._with_access_control(facts, user, access_control, deadline)
            error = created.failure()
            match error:
                case Conflict():
                    # Someone (another worker, another process, an earlier try of ours) made it.
                    self._remember_user(project, service, username, present=True)
                    adopted = self._read_until_complete(facts, username, deadline)
                    if isinstance(adopted, Failure):
                        return adopted
                    return self._with_access_control(facts, adopted.unwrap(), access_control, deadline)
                case Unavailable():
                    # The create may have committed before the failure: read again, never re-POST.
                    last = error
                    if round_no < self._retry.attempts:
                        wait = self._backoff(round_no)
                        if self._clock() + wait > deadline:
                            return Failure(error)
                        self._sleep(wait)
                    continue
                case _:
                    return Failure(error)
        return Failure(last)

    def _create_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        body: dict[str, Any] = {"username": username}
        if access_control is not None:
            body["access_control"] = access_control_body(access_control)
        path = _path("/v1/project/{project}/service/{service}/user", project=project, service=service)
        return self._request("ServiceUserCreate", "POST", path, deadline, body=body, idempotent=False).bind(
            lambda b: self._decode("ServiceUserCreate", lambda: self._user_from(b))
        )

    def _get_user(
        self, project: str, service: str, username: str, deadline: float
    ) -> Result[ServiceUser, AivenError]:
        path = _path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        return self._request(
            "ServiceUserGet", "GET", path, deadline, params={"include_secrets": "true"}
        ).bind(lambda b: self._decode("ServiceUserGet", lambda: self._user_from(b)))

    def _read_until_complete(
        self, facts: ServiceFacts, username: str, deadline: float
    ) -> Result[ServiceUser, AivenError]:
        """Read a user that should exist, tolerating the API's short lag (404 / empty password)."""
        reads = max(1, self._retry.lag_reads)
        for read_no in range(1, reads + 1):
            got = self._get_user(facts.project, facts.name, username, deadline)
            if isinstance(got, Success) and credentials_complete(got.unwrap(), facts.service_type):
                return got
            if isinstance(got, Failure) and not isinstance(got.failure(), NotFound):
                return got
            if read_no == reads or self._clock() + self._retry.lag_delay > deadline:
                break
            self._sleep(self._retry.lag_delay)
        return Failure(
            Unavailable(f"credentials of user {username} on service {facts.name} not available yet")
        )

    def _with_access_control(
        self,
        facts: ServiceFacts,
        user: ServiceUser,
        wanted: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        if wanted is None or facts.service_type is not ServiceType.VALKEY:
            return Success(user)
        if same_access_control(user.access_control, wanted):
            return Success(user)
        changed = self._set_access_control(facts.project, facts.name, user.username, wanted, deadline)
        if isinstance(changed, Failure):
            return Failure(changed.failure())
        self._log.info(
            "aiven_user_access_control_corrected",
            project=facts.project,
            service=facts.name,
            username=user.username,
        )
        return self._read_until_complete(facts, user.username, deadline)

    def delete_user(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        """Delete the user; a missing user, service or project is success. Built-in users are
        refused outright: by name, or by Aiven `type` `primary` in the service's cached facts
        (read only if already cached, so the check costs no request)."""
        cached = self.cached_service(project, service)
        if username in PROTECTED_USERS or (cached is not None and username in cached.builtin_usernames):
            return Failure(Rejected(f"refusing to delete built-in user {username}", status=403))
        deadline = self._deadline()
        path = _path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        result = self._request("ServiceUserDelete", "DELETE", path, deadline)
        if isinstance(result, Success) or isinstance(result.failure(), NotFound):
            self._remember_user(project, service, username, present=False)
            if isinstance(result, Success):
                self._log.info("aiven_user_deleted", project=project, service=service, username=username)
            return Success(None)
        self._invalidate_on(project, service, result)
        return Failure(result.failure())

    def set_access_control(
        self, project: str, service: str, username: str, access_control: ValkeyAccessControl
    ) -> Result[None, AivenError]:
        result = self._set_access_control(project, service, username, access_control, self._deadline())
        self._invalidate_on(project, service, result)
        return result

    def _set_access_control(
        self, project: str, service: str, username: str, ac: ValkeyAccessControl, deadline: float
    ) -> Result[None, AivenError]:
        path = _path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        body = {"operation": "set-access-control", "access_control": access_control_body(ac)}
        # Same full body each time, so repeating it after a dropped response is harmless.
        result = self._request("ServiceUserCredentialsModify", "PUT", path, deadline, body=body)
        return result.map(lambda _: None)

    # --- AivenOpenSearchAcls -----------------------------------------------------------------------

    def get_acl_config(self, project: str, service: str) -> Result[OpenSearchAclConfig, AivenError]:
        result = self._read_acl(project, service, self._deadline()).bind(
            lambda doc: self._decode("ServiceOpenSearchAclGet", lambda: parse_acl_config(doc))
        )
        self._invalidate_on(project, service, result)
        return result

    def put_user_rules(
        self, project: str, service: str, username: str, rules: tuple[OpenSearchRule, ...]
    ) -> Result[None, AivenError]:
        """Set `username`'s rules in the shared ACL document and enable it, keeping others' entries.

        Aiven offers no compare-and-set on this document, so this is a verified read-modify-write:
        one writer per (project, service) inside this process (a lock), and across processes a
        protocol: never write a snapshot older than half the settle time; after writing, re-read
        and check that our entry is there and every other entry we saw still is; wait the settle
        time and check again (a writer that read before our write has sent its stale snapshot by
        then); on any failed check, read and write again.

        Writes use POST (`ServiceOpenSearchAclSet`), the documented full replacement, with the
        whole document we read (unknown fields such as the legacy `extendedAcl` carried along).
        PUT would also work with a full body, but whether PUT merges or replaces `acls` is not
        verified (aiven-api.md §5.4), and a full replace is what makes the result checkable.
        """
        want = rules_body(rules)
        want_pairs = [(r["index"], r["permission"]) for r in want]

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            out: list[dict[str, Any]] = []
            found = False
            for entry in entries:
                if entry.get("username") == username:
                    if found:
                        continue  # drop duplicates of our own entry
                    found = True
                    if entry_rules(entry) == want_pairs:
                        out.append(entry)
                        continue
                    out.append({**entry, "rules": want})
                else:
                    out.append(entry)
            if not found:
                out.append({"username": username, "rules": want})
            return out

        def ours_ok(entries: list[dict[str, Any]]) -> bool:
            mine = [e for e in entries if e.get("username") == username]
            return len(mine) == 1 and entry_rules(mine[0]) == want_pairs

        return self._acl_rmw(project, service, username, change, ours_ok, enable=True)

    def remove_user_rules(self, project: str, service: str, username: str) -> Result[None, AivenError]:
        """Remove `username`'s entry from the shared ACL document (absent is success); same verified
        read-modify-write as `put_user_rules`, leaving `enabled` as it is."""

        def change(entries: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            return [e for e in entries if e.get("username") != username]

        def ours_ok(entries: list[dict[str, Any]]) -> bool:
            return all(e.get("username") != username for e in entries)

        return self._acl_rmw(project, service, username, change, ours_ok, enable=False)

    def _acl_rmw(
        self,
        project: str,
        service: str,
        username: str,
        change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None],
        ours_ok: Callable[[list[dict[str, Any]]], bool],
        *,
        enable: bool,
    ) -> Result[None, AivenError]:
        deadline = self._deadline()
        lock = self._acl_lock(project, service)
        if not lock.acquire(timeout=max(0.0, deadline - self._clock())):
            return Failure(Unavailable(f"opensearch acl of service {service} is busy in this process"))
        try:
            result = self._acl_rounds(project, service, username, change, ours_ok, enable, deadline)
        finally:
            lock.release()
        self._invalidate_on(project, service, result)
        return result

    def _acl_rounds(
        self,
        project: str,
        service: str,
        username: str,
        change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None],
        ours_ok: Callable[[list[dict[str, Any]]], bool],
        enable: bool,
        deadline: float,
    ) -> Result[None, AivenError]:
        settle = self._retry.acl_settle
        max_age = settle / 2
        last: AivenError = Unavailable(
            f"opensearch acl of service {service}: concurrent writers kept winning"
        )
        for round_no in range(1, max(1, self._retry.acl_attempts) + 1):
            if round_no > 1:
                wait = self._backoff(round_no - 1) / 4
                if self._clock() + wait > deadline:
                    return Failure(last)
                self._sleep(wait)
            read = self._read_acl(project, service, deadline)
            if isinstance(read, Failure):
                return Failure(read.failure())
            read_at = self._clock()
            doc = read.unwrap()
            entries = self._decode_entries(doc)
            if isinstance(entries, Failure):
                return Failure(entries.failure())
            before = entries.unwrap()
            after = change(before)
            enabled_ok = doc.get("enabled") is True or not enable
            if after == before and enabled_ok:
                return Success(None)
            assert after is not None
            others = {str(e.get("username")) for e in before if e.get("username") != username}
            if settle > 0 and self._clock() - read_at > max_age:
                continue  # stale snapshot: writing it could undo another process's change
            new_doc = {**doc, "acls": after, "enabled": True if enable else bool(doc.get("enabled", False))}
            path = _path(
                "/v1/project/{project}/service/{service}/opensearch/acl", project=project, service=service
            )
            # Not retried inside `_request`: a late repeat would write an old snapshot. The next
            # round reads again instead.
            written = self._request(
                "ServiceOpenSearchAclSet",
                "POST",
                path,
                deadline,
                body={"opensearch_acl_config": new_doc},
                idempotent=False,
            )
            if isinstance(written, Failure):
                error = written.failure()
                if not isinstance(error, Unavailable | Throttled):
                    return Failure(error)
                last = error
                continue
            checks = 2 if settle > 0 else 1
            verified = True
            for check_no in range(checks):
                if check_no > 0:
                    if self._clock() + settle > deadline:
                        return Failure(
                            Unavailable(f"opensearch acl of service {service}: no time to verify write")
                        )
                    self._sleep(settle)
                again = self._read_acl(project, service, deadline)
                if isinstance(again, Failure):
                    return Failure(again.failure())
                seen = self._decode_entries(again.unwrap())
                if isinstance(seen, Failure):
                    return Failure(seen.failure())
                now_entries = seen.unwrap()
                names = {str(e.get("username")) for e in now_entries}
                if not (ours_ok(now_entries) and others <= names):
                    verified = False
                    break
            if verified:
                self._log.info(
                    "aiven_opensearch_acl_written", project=project, service=service, username=username
                )
                return Success(None)
            self._log.info(
                "aiven_opensearch_acl_lost_race",
                project=project,
                service=service,
                username=username,
                round=round_no,
            )
        return Failure(last)

    def _read_acl(self, project: str, service: str, deadline: float) -> Result[dict[str, Any], AivenError]:
        path = _path(
            "/v1/project/{project}/service/{service}/opensearch/acl", project=project, service=service
        )
        return self._request("ServiceOpenSearchAclGet", "GET", path, deadline).bind(
            lambda b: self._decode("ServiceOpenSearchAclGet", lambda: _checked_acl_document(b))
        )

    def _decode_entries(self, doc: Mapping[str, Any]) -> Result[list[dict[str, Any]], AivenError]:
        return self._decode("ServiceOpenSearchAclGet", lambda: acl_entries(doc))

    def _acl_lock(self, project: str, service: str) -> threading.Lock:
        with self._acl_locks_guard:
            return self._acl_locks.setdefault((project, service), threading.Lock())

    # --- shared machinery ---------------------------------------------------------------------------

    def _deadline(self) -> float:
        return self._clock() + self._retry.call_budget

    def _follower_wait(self, deadline: float) -> tuple[float, Callable[[], Failure[AivenError]]]:
        timeout = max(0.0, deadline - self._clock())
        return timeout, lambda: Failure(
            Unavailable("timed out waiting for a concurrent read of the same facts")
        )

    def _backoff(self, attempt: int) -> float:
        base = min(self._retry.backoff_max, self._retry.backoff_base * 2.0 ** (attempt - 1))
        return base * (0.5 + 0.5 * self._random())

    def _service_from(self, project: str, body: Any) -> ServiceFacts:
        # The service object carries the admin's credentials (users[], connection_info, URIs).
        self._secrets.add(*user_secrets(body))
        return parse_service(project, body)

    def list_services(self, project: str) -> Result[tuple[ServiceFacts, ...], AivenError]:
        """Every service of the project with its user names, in one request (without secrets:
        only names are needed). For the orphan sweep, which must also see services that no
        Secret or application names any more; services of types the operator does not manage
        are left out."""
        path = _path("/v1/project/{project}/service", project=project)
        return self._request("ServiceList", "GET", path, self._deadline()).bind(
            lambda body: self._decode("ServiceList", lambda: self._services_from(project, body))
        )

    def _services_from(self, project: str, body: Any) -> tuple[ServiceFacts, ...]:
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

    def _user_from(self, body: Any) -> ServiceUser:
        self._secrets.add(*user_secrets(body))
        return parse_user(body)

    def _decode(self, operation: str, parse: Callable[[], Any]) -> Result[Any, AivenError]:
        try:
            return Success(parse())
        except UnsupportedServiceType as exc:
            return Failure(Rejected(str(exc), status=400))
        except WireError as exc:
            self._log.warning("aiven_response_malformed", operation=operation, reason=str(exc))
            return Failure(Unavailable(f"{operation}: malformed response ({exc})"))

    def _remember_user(self, project: str, service: str, username: str, *, present: bool) -> None:
        def change(facts: ServiceFacts) -> ServiceFacts:
            names = tuple(n for n in facts.usernames if n != username)
            return replace(facts, usernames=(*names, username) if present else names)

        self._facts.update((project, service), change)

    def _invalidate_on(self, project: str, service: str, result: Result[Any, AivenError]) -> None:
        """Forget the service's facts when a call suggests they are stale: the service (or its
        project) is gone, or Aiven is failing for it. A plain missing user says nothing about the
        service, so it keeps the cache warm."""
        if not isinstance(result, Failure):
            return
        error = result.failure()
        if isinstance(error, Unavailable) or (
            isinstance(error, NotFound) and _SERVICE_GONE.search(error.message)
        ):
            self._facts.invalidate((project, service))

    def _count(self, operation: str) -> None:
        with self._counts_lock:
            self._counts[operation] += 1

    def _observe(self, operation: str, outcome: str, duration: float) -> None:
        if self._observer is None:
            return
        try:
            self._observer(operation, outcome, duration)
        except Exception as exc:  # a metrics hook must not break Aiven calls
            self._log.warning("aiven_observer_failed", operation=operation, error=type(exc).__name__)

    def _hold_while_paused(self, request: httpx.Request) -> None:
        if self._budget.paused_until() > self._clock():
            raise _PausedBeforeSend()

    def _pause_on_throttle(self, response: httpx.Response) -> None:
        # Headers only (the body is not read yet); `_classify` refines the pause afterwards.
        if response.status_code == 429:
            wait = self._retry_after(response)
            if wait is not None:
                self._budget.pause_until(self._clock() + wait)

    def _wait_for_budget(self, operation: str, deadline: float) -> Throttled | None:
        while True:
            now = self._clock()
            wait = self._budget.try_acquire(now)
            if wait <= 0:
                return None
            if now + wait > deadline:
                paused = self._budget.paused_until() > now
                reason = "Aiven asked to wait" if paused else "client-side request budget spent"
                return Throttled(retry_after=wait, message=f"{operation}: {reason}")
            # Never a zero-length sleep: a float remainder far below the clock's resolution
            # would otherwise spin this loop without time moving (seen with fake clocks).
            self._sleep(max(wait, _MIN_BUDGET_SLEEP))

    def _request(
        self,
        operation: str,
        method: str,
        path: _Path,
        deadline: float,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotent: bool = True,
    ) -> Result[Any, AivenError]:
        """One logical request: budget, send, classify, retry. Returns the decoded JSON body
        (None when empty) or an error value; never raises for I/O problems."""
        attempt = 0
        while True:
            attempt += 1
            throttled = self._wait_for_budget(operation, deadline)
            if throttled is not None:
                return Failure(throttled)
            if self._clock() >= deadline:
                return Failure(Unavailable(f"{operation}: call budget spent before sending"))
            remaining = max(0.001, deadline - self._clock())
            started = self._clock()
            response: httpx.Response | None = None
            error: AivenError
            sent = True
            try:
                response = self._client.request(
                    method,
                    path.url,
                    params=params,
                    json=body,
                    timeout=min(self._timeout, remaining),
                )
                outcome = str(response.status_code)
            except _PausedBeforeSend:
                # Another thread was throttled after our budget check: wait it out like any pause.
                attempt -= 1
                continue
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                sent = False  # never reached the server: safe to repeat even a create
                outcome = type(exc).__name__
                error = Unavailable(f"{operation}: {outcome}")
            except httpx.TimeoutException as exc:
                outcome = type(exc).__name__
                error = Unavailable(f"{operation}: timed out")
            except (httpx.HTTPError, OSError) as exc:
                outcome = type(exc).__name__
                error = Unavailable(f"{operation}: {outcome}")
            duration = self._clock() - started
            self._count(operation)
            self._observe(operation, outcome, duration)
            if response is not None:
                self._log_request(operation, method, path, response.status_code, duration, attempt)
                if 200 <= response.status_code < 300:
                    return self._json(operation, response)
                error = self._classify(operation, response)
                if isinstance(error, Throttled):
                    self._budget.pause_until(self._clock() + error.retry_after)
            else:
                self._log.warning(
                    "aiven_request",
                    operation=operation,
                    method=method,
                    path=path.template,
                    status=None,
                    error=outcome,
                    duration=round(duration, 4),
                    attempt=attempt,
                )
            retryable = isinstance(error, Throttled) or (
                isinstance(error, Unavailable) and (idempotent or not sent)
            )
            if not retryable:
                return Failure(error)
            if isinstance(error, Throttled):
                if attempt >= self._retry.attempts or self._clock() + error.retry_after > deadline:
                    wait = max(0.0, self._budget.paused_until() - self._clock())
                    return Failure(replace(error, retry_after=wait))
                continue  # the paused budget makes the next try wait out Retry-After
            assert isinstance(error, Unavailable)
            if attempt >= self._retry.attempts:
                return Failure(error)
            wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
            if self._clock() + wait > deadline:
                return Failure(error)
            self._sleep(wait)

    def _json(self, operation: str, response: httpx.Response) -> Result[Any, AivenError]:
        if not response.content:
            return Success(None)
        try:
            return Success(response.json())
        except ValueError:
            self._log.warning("aiven_response_malformed", operation=operation, reason="body is not JSON")
            return Failure(Unavailable(f"{operation}: malformed response (not JSON)"))

    def _classify(self, operation: str, response: httpx.Response) -> AivenError:
        status = response.status_code
        if status == 429:
            wait = self._retry_after(response)
            if wait is None:
                wait = self._retry_after_from_body(response)
            if wait is None:
                wait = self._backoff(1)
            return Throttled(retry_after=wait, message=f"{operation}: throttled by Aiven")
        if status >= 500 or status == 408:
            # 5xx bodies are the likeliest to echo internals; keep only the status.
            return Unavailable(
                f"{operation}: Aiven answered {status}", retry_after=self._retry_after(response)
            )
        if status == 401:
            # Aiven's text ("Missing (expired) db token") would be withheld as credential talk.
            return Rejected(f"{operation}: Aiven rejected the API token (missing or expired)", status=401)
        message = f"{operation}: {self._message(response)}"
        if status == 404:
            return NotFound(message)
        if status == 409:
            return Conflict(message)
        return Rejected(message, status=status)

    def _message(self, response: httpx.Response) -> str:
        """The Aiven error message, redacted and bounded; the raw body never leaves."""
        text = ""
        try:
            body = response.json()
            if isinstance(body, Mapping) and isinstance(body.get("message"), str):
                text = body["message"]
        except ValueError:
            text = ""
        if not text:
            return f"HTTP {response.status_code}"
        if _SECRET_WORDS.search(text):
            # A message about credentials may quote one we have never seen: keep none of it.
            return f"HTTP {response.status_code} (message withheld)"
        text = _LONG_OPAQUE.sub(_mask_opaque, redact_text(text, registry=self._secrets))
        if len(text) > _MAX_MESSAGE:
            text = text[:_MAX_MESSAGE] + "…"
        # Truncation can cut a secret's pattern in half: redact once more on the final text.
        return redact_text(text, registry=self._secrets)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def _retry_after_from_body(self, response: httpx.Response) -> float | None:
        try:
            body = response.json()
        except ValueError:
            return None
        message = body.get("message") if isinstance(body, Mapping) else None
        if not isinstance(message, str):
            return None
        match = _TRY_AGAIN.search(message)
        return float(match.group(1)) if match else None

    def _log_request(
        self, operation: str, method: str, path: _Path, status: int, duration: float, attempt: int
    ) -> None:
        level = self._log.debug if status < 400 or status == 404 else self._log.warning
        if status in (400, 401, 403, 409):
            level = self._log.info
        level(
            "aiven_request",
            operation=operation,
            method=method,
            path=path.template,
            status=status,
            duration=round(duration, 4),
            attempt=attempt,
        )


def _checked_acl_document(body: Any) -> dict[str, Any]:
    """The raw ACL document, after checking it parses (so later edits of it cannot fail)."""
    doc = acl_document(body)
    parse_acl_config(doc)
    return doc


def _certificate(body: Any) -> str:
    cert = unwrap(body, "certificate")
    if not isinstance(cert, str) or not cert:
        raise WireError("certificate is not a string")
    return cert


if TYPE_CHECKING:  # mypy proves the adapter satisfies the port (never runs)
    from aivenator.domain.ports import AivenFactsCache, AivenPort

    def _conforms(adapter: AivenHttp) -> AivenPort:
        return adapter

    def _caches(adapter: AivenHttp) -> AivenFactsCache:
        return adapter


__all__: Sequence[str] = ["AivenHttp", "Observer", "RequestBudget", "RetryPolicy"]
