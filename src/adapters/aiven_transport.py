"""The Aiven transport: one shared `httpx` client with the request budget, retries and the
classification of every outcome into `aivenator.domain.facts` error values (aiven-api.md §5, §8).

Thread-safe; one instance is shared by the facts cache, the user and the ACL modules of
`aivenator.adapters.aiven_http.AivenHttp`. No httpx exception and no response body leaves this
module (messages are redacted and bounded). Retries happen inside one port call with exponential
backoff and jitter, bounded by attempts per request and by a time budget per call; Retry-After is
honoured exactly (a 429 pauses the shared request budget, so no worker sends before it elapsed)
and a wait past the call's budget answers `Throttled` instead of sleeping.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import json
import random as _random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_wire import UnsupportedServiceType, WireError
from aivenator.adapters.json_elide import elide_members
from aivenator.adapters.redaction import SecretRegistry, default_registry, redact_text
from aivenator.domain.facts import AivenError, Conflict, NotFound, Rejected, Throttled, Unavailable
from returns.result import Failure, Result, Success

#: (operation, status code or error class name, duration in seconds); wired by the operator to
#: the `aivenator_aiven_latency` histogram.
Observer = Callable[[str, str, float], None]

_MAX_MESSAGE = 300
_TRY_AGAIN = re.compile(r"try again in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
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
        other process overwrote it (see `AivenOpenSearchAcl.put_user_rules`).
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
class ApiPath:
    template: str  # logged: no names of tenants' users in metric-ish fields, no secrets
    url: str


class _PausedBeforeSend(Exception):
    """Raised by the request hook when a pause began after the budget check; never escapes."""


def api_path(template: str, **segments: str) -> ApiPath:
    return ApiPath(template, template.format(**{k: quote(v, safe="") for k, v in segments.items()}))


class AivenTransport:
    """HTTP to the Aiven API: budget, send, classify, retry. Thread-safe; share one per process."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
        budget: RequestBudget | None = None,
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
        self.secrets = default_registry if secrets is None else secrets
        self.secrets.add(token)
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
            # the budget just before is held back at the last moment (see `request`).
            event_hooks={"request": [self._hold_while_paused], "response": [self._pause_on_throttle]},
        )
        self._timeout = timeout
        self.retry = retry
        self._budget = budget if budget is not None else RequestBudget.unlimited()
        self.clock = clock
        self.sleep = sleep
        self.random = random
        self._observer = observer
        self.log = structlog.get_logger()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def request_counts(self) -> dict[str, int]:
        """HTTP requests sent so far (retries included), per Aiven operation name."""
        with self._counts_lock:
            return dict(self._counts)

    # --- shared machinery ---------------------------------------------------------------------------

    def deadline(self) -> float:
        return self.clock() + self.retry.call_budget

    def follower_wait(self, deadline: float) -> tuple[float, Callable[[], Failure[AivenError]]]:
        timeout = max(0.0, deadline - self.clock())
        return timeout, lambda: Failure(
            Unavailable("timed out waiting for a concurrent read of the same facts")
        )

    def backoff(self, attempt: int) -> float:
        base = min(self.retry.backoff_max, self.retry.backoff_base * 2.0 ** (attempt - 1))
        return base * (0.5 + 0.5 * self.random())

    def decode(self, operation: str, parse: Callable[[], Any]) -> Result[Any, AivenError]:
        try:
            return Success(parse())
        except UnsupportedServiceType as exc:
            return Failure(Rejected(str(exc), status=400))
        except WireError as exc:
            self.log.warning("aiven_response_malformed", operation=operation, reason=str(exc))
            return Failure(Unavailable(f"{operation}: malformed response ({exc})"))

    def _count(self, operation: str) -> None:
        with self._counts_lock:
            self._counts[operation] += 1

    def _observe(self, operation: str, outcome: str, duration: float) -> None:
        if self._observer is None:
            return
        try:
            self._observer(operation, outcome, duration)
        except Exception as exc:  # a metrics hook must not break Aiven calls
            self.log.warning("aiven_observer_failed", operation=operation, error=type(exc).__name__)

    def _hold_while_paused(self, request: httpx.Request) -> None:
        if self._budget.paused_until() > self.clock():
            raise _PausedBeforeSend()

    def _pause_on_throttle(self, response: httpx.Response) -> None:
        # Headers only (the body is not read yet); `_classify` refines the pause afterwards.
        # Every answer tunes the adaptive rate: a 429 lowers it, anything else raises it.
        if response.status_code == 429:
            wait = self._retry_after(response)
            if wait is not None:
                self._budget.throttled(self.clock(), wait)
        else:
            self._budget.succeeded(self.clock())

    def _wait_for_budget(self, operation: str, deadline: float) -> Throttled | None:
        while True:
            now = self.clock()
            wait = self._budget.try_acquire(now)
            if wait <= 0:
                return None
            if now + wait > deadline:
                paused = self._budget.paused_until() > now
                reason = "Aiven asked to wait" if paused else "client-side request budget spent"
                return Throttled(retry_after=wait, message=f"{operation}: {reason}")
            # Never a zero-length sleep: a float remainder far below the clock's resolution
            # would otherwise spin this loop without time moving (seen with fake clocks).
            self.sleep(max(wait, _MIN_BUDGET_SLEEP))

    def request(
        self,
        operation: str,
        method: str,
        path: ApiPath,
        deadline: float,
        *,
        params: Mapping[str, str] | None = None,
        body: object = None,
        idempotent: bool = True,
        drop_keys: frozenset[str] = frozenset(),
    ) -> Result[Any, AivenError]:
        """One logical request: budget, send, classify, retry. Returns the decoded JSON body
        (None when empty) or an error value; never raises for I/O problems. Members named in
        `drop_keys` are left out of every object as it is decoded (see `_json`)."""
        attempt = 0
        while True:
            attempt += 1
            throttled = self._wait_for_budget(operation, deadline)
            if throttled is not None:
                return Failure(throttled)
            if self.clock() >= deadline:
                return Failure(Unavailable(f"{operation}: call budget spent before sending"))
            remaining = max(0.001, deadline - self.clock())
            started = self.clock()
            response: httpx.Response | None = None
            elided: bytes | None = None
            error: AivenError
            sent = True
            try:
                if drop_keys:
                    response, elided = self._send_eliding(
                        method, path, params, body, min(self._timeout, remaining), drop_keys
                    )
                else:
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
            duration = self.clock() - started
            self._count(operation)
            self._observe(operation, outcome, duration)
            if response is not None:
                self._log_request(operation, method, path, response.status_code, duration, attempt)
                if 200 <= response.status_code < 300:
                    return self._json(operation, response.content if elided is None else elided, drop_keys)
                error = self._classify(operation, response)
                if isinstance(error, Throttled):
                    self._budget.throttled(self.clock(), error.retry_after)
            else:
                self.log.warning(
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
                if attempt >= self.retry.attempts or self.clock() + error.retry_after > deadline:
                    wait = max(0.0, self._budget.paused_until() - self.clock())
                    return Failure(replace(error, retry_after=wait))
                continue  # the paused budget makes the next try wait out Retry-After
            assert isinstance(error, Unavailable)
            if attempt >= self.retry.attempts:
                return Failure(error)
            wait = error.retry_after if error.retry_after is not None else self.backoff(attempt)
            if self.clock() + wait > deadline:
                return Failure(error)
            self.sleep(wait)

    def _send_eliding(
        self,
        method: str,
        path: ApiPath,
        params: Mapping[str, str] | None,
        body: object,
        timeout: float,
        drop_keys: frozenset[str],
    ) -> tuple[httpx.Response, bytes | None]:
        """Send and read a 2xx body chunk by chunk through `MemberElider`, so the members named in
        `drop_keys` are never held: (the response, the elided body); a non-2xx body is read whole
        (it is small, and classifying it needs it). Raises what `httpx` raises while reading."""
        request = self._client.build_request(method, path.url, params=params, json=body, timeout=timeout)
        response = self._client.send(request, stream=True)
        try:
            if not 200 <= response.status_code < 300:
                response.read()
                return response, None
            return response, elide_members(response.iter_bytes(), drop_keys)
        finally:
            response.close()

    def _json(
        self, operation: str, content: bytes, drop_keys: frozenset[str] = frozenset()
    ) -> Result[Any, AivenError]:
        """The decoded body. With `drop_keys`, those members are dropped from each object: a
        service with 10k users answers with every user's certificate and key (tens of MB), and
        holding them all at once only to read user names cost the operator tens of MB of heap
        at each read, which stayed in its RSS. A body `_send_eliding` read comes with those
        values already cut out while it streamed in."""
        if not content:
            return Success(None)
        hook = (lambda pairs: {k: v for k, v in pairs if k not in drop_keys}) if drop_keys else None
        try:
            return Success(json.loads(content, object_pairs_hook=hook))
        except ValueError:
            self.log.warning("aiven_response_malformed", operation=operation, reason="body is not JSON")
            return Failure(Unavailable(f"{operation}: malformed response (not JSON)"))

    def _classify(self, operation: str, response: httpx.Response) -> AivenError:
        status = response.status_code
        if status == 429:
            wait = self._retry_after(response)
            if wait is None:
                wait = self._retry_after_from_body(response)
            if wait is None:
                wait = self.backoff(1)
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
        text = _LONG_OPAQUE.sub(_mask_opaque, redact_text(text, registry=self.secrets))
        if len(text) > _MAX_MESSAGE:
            text = text[:_MAX_MESSAGE] + "…"
        # Truncation can cut a secret's pattern in half: redact once more on the final text.
        return redact_text(text, registry=self.secrets)

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
        self, operation: str, method: str, path: ApiPath, status: int, duration: float, attempt: int
    ) -> None:
        level = self.log.debug if status < 400 or status == 404 else self.log.warning
        if status in (400, 401, 403, 409):
            level = self.log.info
        level(
            "aiven_request",
            operation=operation,
            method=method,
            path=path.template,
            status=status,
            duration=round(duration, 4),
            attempt=attempt,
        )


__all__ = ["AivenTransport", "ApiPath", "Observer", "RetryPolicy", "api_path"]
