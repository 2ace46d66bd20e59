"""The stateful Aiven API simulator: state, routing and the wire format of aiven-api.md.

`FakeAiven.process()` is the single entry for both transports: the httpx MockTransport handler
(`handle`) and the loopback HTTP server (`server.py`) turn its `Reply` or `Drop` into their own
terms. All state changes happen under one lock, so concurrent operator threads see a strongly
consistent API unless a fault rule says otherwise.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote

import httpx
from aivenator.adapters.fakes.aiven._certs import ProjectCA, issue_client_cert, make_project_ca
from aivenator.adapters.fakes.aiven.faults import RATE_LIMIT_MESSAGE, Fault, FaultInjector
from aivenator.adapters.fakes.aiven.seed import DEFAULT_SEED, SERVICE_TYPES, Seed
from aivenator.domain.times import format_time

if TYPE_CHECKING:
    from aivenator.adapters.fakes.aiven.server import FakeAivenServer

JSON = dict[str, Any]

REDACTED = "<redacted>"
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,63}$")
KAFKA_ACL_USERNAME_PATTERN = re.compile(r"^[-._*?A-Za-z0-9]+$")
KAFKA_PERMISSIONS = ("admin", "read", "readwrite", "write")
SCHEMA_REGISTRY_PERMISSIONS = ("schema_registry_read", "schema_registry_write")
OPENSEARCH_PERMISSIONS = ("admin", "deny", "read", "readwrite", "write")
USABLE_STATES = ("RUNNING", "REBALANCING")
MODIFY_OPERATIONS = ("reset-credentials", "set-access-control", "acknowledge-renewal")
ACCESS_CONTROL_LIST_KEYS = tuple(
    f"{engine}_acl_{kind}"
    for engine in ("valkey", "redis", "dragonfly")
    for kind in ("categories", "commands", "keys", "channels")
    if not (engine == "dragonfly" and kind == "channels")
)
#: Access control a Valkey user gets when created without one (real default UNVERIFIED).
DEFAULT_VALKEY_ACCESS_CONTROL: JSON = {
    "valkey_acl_categories": ["+@all"],
    "valkey_acl_commands": [],
    "valkey_acl_keys": ["*"],
    "valkey_acl_channels": ["*"],
}

MSG_UNAUTHORIZED = "Missing (expired) db token"
MSG_NO_PROJECT = "Project does not exist"
MSG_NOT_MEMBER = "Not a project member"
MSG_NO_USER = "Service user does not exist"
MSG_NO_ACL = "ACL entry does not exist"


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the simulator saw it: `at` is time.monotonic() (or the injected
    monotonic clock) on arrival; `status` is "dropped" when no answer was sent."""

    method: str
    path: str
    status: int | Literal["dropped"]
    at: float
    query: str = ""


@dataclass(frozen=True)
class Reply:
    status: int
    body: JSON | None
    headers: tuple[tuple[str, str], ...] = ()

    def content(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode("utf-8")


@dataclass(frozen=True)
class Drop:
    """Answer nothing: `timeout` hangs first, `reset` closes at once."""

    kind: Literal["timeout", "reset"]
    hang_s: float = 0.0


class _Fail(Exception):
    """Early exit from a route handler with an Aiven-shaped error; never leaves `process`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> JSON:
    return {"message": message, "errors": [{"message": message, "status": status}]}


@dataclass
class _Service:
    project: str
    name: str
    service_type: str
    state: str
    replica: bool
    schema_registry: bool
    dashboards: bool
    create_time: datetime
    update_time: datetime
    users: dict[str, JSON] = field(default_factory=dict)
    acl: list[JSON] = field(default_factory=list)
    schema_registry_acl: list[JSON] = field(default_factory=list)
    opensearch_acl: JSON = field(default_factory=lambda: {"acls": [], "enabled": False, "extendedAcl": False})
    lag: dict[str, int] = field(default_factory=dict)
    password_lag: dict[str, int] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"{self.name}-{self.project}.aivencloud.com"

    @property
    def port(self) -> int:
        return 10000 + zlib.crc32(f"{self.project}/{self.name}".encode()) % 20000

    @property
    def admin_name(self) -> str:
        return "default" if self.service_type == "valkey" else "avnadmin"


@dataclass
class _Project:
    name: str
    ca: ProjectCA
    services: dict[str, _Service] = field(default_factory=dict)


@dataclass
class _ServerLimit:
    """Token bucket for the hidden server-side rate limit; thread-safe."""

    rate: float
    burst: int
    tokens: float
    updated: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, now: float) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        with self.lock:
            self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


class FakeAiven:
    """A stateful, in-process Aiven API (the subset in aiven-api.md), thread-safe."""

    def __init__(
        self,
        token: str = "fake-aiven-token",
        *,
        redact_by_default: bool = False,
        clock: Callable[[], datetime] | None = None,
        seed: Seed | None = None,
        cert_validity: timedelta = timedelta(days=365),
        fault_seed: int = 0,
        monotonic: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        log_limit: int = 100_000,
        server_rate_limit: float | None = None,
        server_burst: int | None = None,
        response_time: float = 0.0,
    ) -> None:
        self.token = token
        #: Seconds from a request's arrival to its answer, its own processing included (the
        #: server's response time; 0: answer as soon as processed). Unlike the `latency` fault,
        #: which sleeps before processing, concurrent requests then finish together however long
        #: processing under the simulator's lock takes.
        self.response_time = response_time
        self.redact_by_default = redact_by_default
        self.cert_validity = cert_validity
        self._clock = clock or (lambda: datetime.now(UTC))
        self._monotonic = monotonic or time.monotonic
        self._sleep = sleep or time.sleep
        self._lock = threading.RLock()
        self._projects: dict[str, _Project] = {}
        self.request_log: list[LoggedRequest] = []
        self._log_limit = max(2, log_limit)
        self._forbidden: set[str] = set()
        self.faults = FaultInjector(seed=fault_seed, monotonic=self._monotonic)
        self._server_limit: _ServerLimit | None = None
        self.set_server_rate_limit(server_rate_limit, server_burst)
        if seed is not None:
            self.apply_seed(seed)

    @classmethod
    def with_default_seed(cls, **kw: Any) -> FakeAiven:
        return cls(seed=DEFAULT_SEED, **kw)

    # ---- state setup and inspection ----------------------------------------------------------

    def apply_seed(self, seed: Seed) -> None:
        for project in seed.projects:
            self.add_project(project.name)
            for svc in project.services:
                self.add_service(
                    project.name,
                    svc.name,
                    svc.service_type,
                    state=svc.state,
                    replica=svc.replica,
                    schema_registry=svc.schema_registry,
                    dashboards=svc.dashboards,
                )
                for username in svc.users:
                    self.add_user(project.name, svc.name, username)

    def set_server_rate_limit(self, rate: float | None, burst: int | None = None) -> None:
        """The hidden server-side limit: a token bucket of `rate` requests/s holding at most
        `burst` (default: one second's worth); a request finding it empty is answered 429 with a
        whole-second Retry-After and Aiven's rate-limit body. None (the default) turns it off.
        Clients are not told the rate: they have to discover it."""
        if rate is not None and rate <= 0:
            raise ValueError("server rate limit must be positive (or None for off)")
        with self._lock:
            if rate is None:
                self._server_limit = None
            else:
                size = burst if burst is not None else max(1, math.ceil(rate))
                self._server_limit = _ServerLimit(rate, size, float(size), self._monotonic())

    def add_project(self, name: str) -> None:
        with self._lock:
            if name not in self._projects:
                self._projects[name] = _Project(name=name, ca=make_project_ca(name, self._now()))

    def add_service(
        self,
        project: str,
        name: str,
        service_type: str,
        *,
        state: str = "RUNNING",
        replica: bool = False,
        schema_registry: bool = True,
        dashboards: bool = True,
    ) -> None:
        if service_type not in SERVICE_TYPES:
            raise ValueError(f"service_type must be one of {SERVICE_TYPES}")
        with self._lock:
            self.add_project(project)
            proj = self._projects[project]
            if name in proj.services:
                raise ValueError(f"service {project}/{name} already exists")
            now = self._now()
            svc = _Service(
                project=project,
                name=name,
                service_type=service_type,
                state=state,
                replica=replica,
                schema_registry=schema_registry,
                dashboards=dashboards,
                create_time=now,
                update_time=now,
            )
            proj.services[name] = svc
            self._create_user(svc, svc.admin_name, user_type="primary")
            if service_type == "kafka":
                svc.acl.append({"id": "default", "permission": "admin", "topic": "*", "username": "avnadmin"})
                if schema_registry:
                    svc.schema_registry_acl.extend(
                        [
                            {
                                "id": "default-sr-admin-config",
                                "permission": "schema_registry_write",
                                "resource": "Config:",
                                "username": "avnadmin",
                            },
                            {
                                "id": "default-sr-admin-subject",
                                "permission": "schema_registry_write",
                                "resource": "Subject:*",
                                "username": "avnadmin",
                            },
                        ]
                    )

    def remove_service(self, project: str, service: str) -> None:
        with self._lock:
            del self._projects[project].services[service]

    def add_user(
        self, project: str, service: str, username: str, access_control: Mapping[str, object] | None = None
    ) -> JSON:
        """Create a regular user directly in state (no request, no faults); returns a copy."""
        with self._lock:
            svc = self._service_state(project, service)
            if username in svc.users:
                raise ValueError(f"user {username} already exists")
            return _copy_obj(self._create_user(svc, username, "regular", access_control))

    def forbid_project(self, project: str, forbidden: bool = True) -> None:
        """Make the token 'not a project member' of `project` (403 on every request to it)."""
        with self._lock:
            if forbidden:
                self._forbidden.add(project)
            else:
                self._forbidden.discard(project)

    def renew_user_cert(self, project: str, service: str, username: str) -> JSON:
        """Issue a new Kafka client cert, as Aiven does before the old one expires.

        The old expiry moves to `expiring_cert_not_valid_after_time` until the client sends
        `acknowledge-renewal`. Returns a copy of the user.
        """
        with self._lock:
            svc = self._service_state(project, service)
            if svc.service_type != "kafka":
                raise ValueError("only Kafka users have certificates")
            user = svc.users[username]
            old_expiry = user["access_cert_not_valid_after_time"]
            self._issue_cert(svc, user)
            user["expiring_cert_not_valid_after_time"] = old_expiry
            svc.update_time = self._now()
            return _copy_obj(user)

    def set_service_state(self, project: str, service: str, state: str) -> None:
        with self._lock:
            svc = self._service_state(project, service)
            svc.state = state
            svc.update_time = self._now()

    def users(self, project: str, service: str) -> dict[str, JSON]:
        with self._lock:
            return {name: _copy(user) for name, user in self._service_state(project, service).users.items()}

    def opensearch_acl(self, project: str, service: str) -> JSON:
        with self._lock:
            return _copy_obj(self._service_state(project, service).opensearch_acl)

    def kafka_acl(self, project: str, service: str) -> list[JSON]:
        with self._lock:
            return [dict(entry) for entry in self._service_state(project, service).acl]

    def schema_registry_acl(self, project: str, service: str) -> list[JSON]:
        with self._lock:
            return [dict(entry) for entry in self._service_state(project, service).schema_registry_acl]

    def delete_user_out_of_band(self, project: str, service: str, username: str) -> None:
        with self._lock:
            self._service_state(project, service).users.pop(username, None)

    def project_ca_pem(self, project: str) -> str:
        with self._lock:
            return self._projects[project].ca.certificate_pem

    def projects(self) -> dict[str, list[str]]:
        """project -> service names (for tooling and the CLI banner)."""
        with self._lock:
            return {p.name: list(p.services) for p in self._projects.values()}

    def requests_matching(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests whose method equals `method` and whose path matches regex `path`."""
        with self._lock:
            log = list(self.request_log)
        return [
            r
            for r in log
            if (method is None or r.method == method.upper()) and (path is None or re.search(path, r.path))
        ]

    # ---- transports ---------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """httpx MockTransport handler. Dropped answers raise httpx transport errors at once
        (a timeout does not hang here; the HTTP server is the place for real hangs)."""
        outcome = self.process(
            request.method, request.url.raw_path.decode("ascii"), dict(request.headers), request.read()
        )
        if isinstance(outcome, Drop):
            if outcome.kind == "timeout":
                raise httpx.ReadTimeout("fake-aiven: timed out waiting for a response", request=request)
            raise httpx.RemoteProtocolError(
                "fake-aiven: server disconnected without sending a response", request=request
            )
        return httpx.Response(
            outcome.status,
            headers=[("content-type", "application/json"), *outcome.headers],
            content=outcome.content(),
            request=request,
        )

    def mock_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> FakeAivenServer:
        from aivenator.adapters.fakes.aiven.server import FakeAivenServer

        return FakeAivenServer(self, host, port)

    # ---- request processing -------------------------------------------------------------------

    def monotonic(self) -> float:
        """The simulator's monotonic clock (a transport stamps a request's arrival with it)."""
        return self._monotonic()

    def process(
        self,
        method: str,
        raw_target: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        arrived: float | None = None,
    ) -> Reply | Drop:
        """Answer one request. `raw_target` is the undecoded path plus optional query string.
        `arrived`: when the request arrived on `monotonic()` (the HTTP server stamps it as its
        request line comes in, before parsing); default now."""
        if arrived is None:
            arrived = self._monotonic()  # arrival, not completion: what Retry-After checks need
        method = method.upper()
        raw_path, _, raw_query = raw_target.partition("?")
        segments = [unquote(s) for s in raw_path.split("/") if s != ""]
        path = "/" + "/".join(segments)
        query = {k: v for k, v in parse_qsl(raw_query, keep_blank_values=True)}
        outcome = self._process(
            method, path, segments, query, _header(headers, "authorization"), body, arrived
        )
        status: int | Literal["dropped"] = "dropped" if isinstance(outcome, Drop) else outcome.status
        with self._lock:
            self.request_log.append(LoggedRequest(method, path, status, arrived, raw_query))
            if len(self.request_log) > self._log_limit:
                # A long-running `aivenator fake-aiven` must not grow without bound.
                del self.request_log[: self._log_limit // 2]
        return outcome

    def _process(
        self,
        method: str,
        path: str,
        segments: list[str],
        query: dict[str, str],
        auth: str | None,
        body: bytes,
        arrived: float,
    ) -> Reply | Drop:
        if not self._authorized(auth):
            return _error(401, MSG_UNAUTHORIZED)
        limit = self._server_limit
        if limit is not None:
            wait = limit.take(self._monotonic())
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                message = RATE_LIMIT_MESSAGE.format(limit=math.ceil(limit.rate * 60), seconds=seconds)
                return _error(429, message, (("retry-after", str(seconds)),))
        decision = self.faults.before(method, path)
        if decision.latency_s > 0:
            self._sleep(decision.latency_s)
        if decision.fault is not None:
            return _fault_reply(decision.fault, decision.retry_after)
        # The response time counts from the request's arrival (after an injected latency, which
        # comes on top); its parsing and processing here are inside it.
        started = arrived + decision.latency_s
        with self._lock:
            try:
                reply = self._route(method, path, segments, query, body)
            except _Fail as fail:
                reply = _error(fail.status, fail.message)
        remaining = self.response_time - (self._monotonic() - started)
        if remaining > 0:
            self._sleep(remaining)
        if 200 <= reply.status < 300:
            late = self.faults.after_success(method, path)
            if late is not None:
                return Drop("reset") if late.drop else _error(late.status, "Internal server error")
        return reply

    def _authorized(self, auth: str | None) -> bool:
        if not auth:
            return False
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() not in ("aivenv1", "bearer"):
            return False
        return secrets.compare_digest(token.strip().encode(), self.token.encode())

    def _route(self, method: str, path: str, seg: list[str], query: dict[str, str], body: bytes) -> Reply:
        n = len(seg)
        if seg == ["v1", "project"]:
            _allow(method, "GET")
            return _ok(self._project_list_json())
        if n < 3 or seg[0] != "v1" or seg[1] != "project":
            raise _Fail(404, "Not Found")
        p = seg[2]
        rest = seg[3:]
        reveal = query.get("include_secrets", "").lower() in ("true", "1") or not self.redact_by_default
        if rest == ["kms", "ca"]:
            _allow(method, "GET")
            return _ok({"certificate": self._project(p).ca.certificate_pem})
        if rest == ["service"]:
            _allow(method, "GET")
            proj = self._project(p)
            return _ok(
                {"services": [self._service_json(s, redact=not reveal) for s in proj.services.values()]}
            )
        if len(rest) < 2 or rest[0] != "service":
            raise _Fail(404, "Not Found")
        s = rest[1]
        tail = rest[2:]
        if tail == []:
            _allow(method, "GET")
            return _ok({"service": self._service_json(self._service(p, s), redact=not reveal)})
        if tail == ["user"]:
            _allow(method, "POST")
            return self._create_user_route(p, s, path, body)
        if len(tail) == 2 and tail[0] == "user":
            _allow(method, "GET", "DELETE", "PUT")
            if method == "GET":
                return self._get_user_route(p, s, tail[1], redact=not reveal)
            if method == "DELETE":
                return self._delete_user_route(p, s, tail[1])
            return self._modify_user_route(p, s, tail[1], path, body)
        if len(tail) == 4 and tail[0] == "user" and tail[2:] == ["credentials", "reset"]:
            _allow(method, "PUT")
            return self._reset_user_route(p, s, tail[1], path)
        if tail in (["opensearch", "acl"], ["elasticsearch", "acl"]):
            _allow(method, "GET", "POST", "PUT")
            return self._opensearch_acl_route(p, s, method, f"{tail[0]}_acl_config", body)
        if tail == ["acl"]:
            _allow(method, "GET", "POST")
            return self._kafka_acl_route(p, s, method, body)
        if len(tail) == 2 and tail[0] == "acl":
            _allow(method, "DELETE")
            return self._delete_acl_route(p, s, "acl", tail[1])
        if tail == ["kafka", "schema-registry", "acl"]:
            _allow(method, "GET", "POST")
            return self._schema_registry_acl_route(p, s, method, body)
        if len(tail) == 4 and tail[:3] == ["kafka", "schema-registry", "acl"]:
            _allow(method, "DELETE")
            return self._delete_acl_route(p, s, "schema_registry_acl", tail[3])
        raise _Fail(404, "Not Found")

    # ---- lookups ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def _project_list_json(self) -> JSON:
        """`GET /v1/project`: the projects the token is a member of (docs/aiven-fidelity.md).

        The wrapper keys and the non-pointer string fields of avngen's `ProjectOut` are all
        present (a wrong JSON type fails the Go client); a forbidden project is left out, as a
        token that is not a member does not see it.
        """
        names = [name for name in self._projects if name not in self._forbidden]
        return {
            "projects": [
                {
                    "project_name": name,
                    "account_id": "",
                    "billing_address": "",
                    "billing_emails": [],
                    "billing_group_id": "",
                    "billing_group_name": "",
                    "country": "",
                    "country_code": "",
                    "default_cloud": "google-europe-north1",
                    "estimated_balance": "0.00",
                    "organization_id": "",
                    "payment_method": "no_payment_expected",
                    "vat_id": "",
                    "tech_emails": [],
                }
                for name in names
            ],
            "project_membership": {name: "admin" for name in names},
            "project_memberships": {name: ["admin"] for name in names},
        }

    def _project(self, project: str) -> _Project:
        if project in self._forbidden:
            raise _Fail(403, MSG_NOT_MEMBER)
        proj = self._projects.get(project)
        if proj is None:
            raise _Fail(404, MSG_NO_PROJECT)
        return proj

    def _service(self, project: str, service: str) -> _Service:
        svc = self._project(project).services.get(service)
        if svc is None:
            raise _Fail(404, f"Service {service} does not exist")
        return svc

    def _service_state(self, project: str, service: str) -> _Service:
        """Public-API lookup: plain KeyError for tests that name something missing."""
        try:
            return self._projects[project].services[service]
        except KeyError:
            raise KeyError(f"no service {project}/{service}") from None

    def _running(self, svc: _Service) -> None:
        if svc.state not in USABLE_STATES:
            raise _Fail(503, f"Service {svc.name} is not running (state {svc.state})")

    def _user(self, svc: _Service, username: str) -> JSON:
        user = svc.users.get(username)
        if user is None:
            raise _Fail(404, MSG_NO_USER)
        return user

    # ---- users --------------------------------------------------------------------------------

    def _create_user(
        self, svc: _Service, username: str, user_type: str, access_control: Mapping[str, object] | None = None
    ) -> JSON:
        user: JSON = {"username": username, "type": user_type, "password": _new_password()}
        if svc.service_type == "kafka":
            self._issue_cert(svc, user)
        if svc.service_type == "valkey":
            user["access_control"] = (
                _copy(dict(access_control)) if access_control else _copy(DEFAULT_VALKEY_ACCESS_CONTROL)
            )
        svc.users[username] = user
        svc.update_time = self._now()
        return user

    def _issue_cert(self, svc: _Service, user: JSON) -> None:
        cert = issue_client_cert(
            self._projects[svc.project].ca, user["username"], self._now(), self.cert_validity
        )
        user["access_cert"] = cert.certificate_pem
        user["access_key"] = cert.key_pem
        user["access_cert_not_valid_after_time"] = format_time(cert.not_valid_after)

    def _create_user_route(self, p: str, s: str, path: str, body: bytes) -> Reply:
        svc = self._service(p, s)
        data = _json_object(body)
        username = _validate_username(data.get("username"))
        access_control = data.get("access_control")
        if access_control is not None:
            access_control = _validate_access_control(access_control)
        self._running(svc)
        if username in svc.users:
            raise _Fail(409, f"Service user {username} already exists")
        user = self._create_user(
            svc, username, "regular", access_control if svc.service_type == "valkey" else None
        )
        reads = self.faults.lag_for_create("POST", path)
        if reads > 0:
            svc.lag[username] = reads
        return _ok({"user": _copy(user), "message": "created"})

    def _get_user_route(self, p: str, s: str, username: str, redact: bool) -> Reply:
        svc = self._service(p, s)
        user = self._user(svc, username)
        if svc.lag.get(username, 0) > 0:
            svc.lag[username] -= 1
            raise _Fail(404, MSG_NO_USER)
        shown = _user_json(user, redact)
        if svc.password_lag.get(username, 0) > 0:
            svc.password_lag[username] -= 1
            shown["password"] = ""
        return _ok({"user": shown})

    def _lag_password(self, svc: _Service, username: str, path: str) -> None:
        reads = self.faults.lag_for("password_lag", "PUT", path)
        if reads > 0:
            svc.password_lag[username] = reads

    def _delete_user_route(self, p: str, s: str, username: str) -> Reply:
        svc = self._service(p, s)
        user = self._user(svc, username)
        self._running(svc)
        if user.get("type") == "primary":
            raise _Fail(400, f"Invalid input: cannot delete the built-in service user {username}")
        del svc.users[username]
        svc.lag.pop(username, None)
        svc.password_lag.pop(username, None)
        svc.update_time = self._now()
        return _ok({"message": "deleted"})

    def _modify_user_route(self, p: str, s: str, username: str, path: str, body: bytes) -> Reply:
        svc = self._service(p, s)
        user = self._user(svc, username)
        data = _json_object(body)
        operation = data.get("operation")
        if operation is None:
            raise _Fail(400, "Invalid input: 'operation' is a required property")
        if operation not in MODIFY_OPERATIONS:
            raise _Fail(400, f"Invalid input: 'operation' must be one of {', '.join(MODIFY_OPERATIONS)}")
        if operation == "reset-credentials":
            new_password = data.get("new_password")
            if new_password is not None and (
                not isinstance(new_password, str) or not 8 <= len(new_password) <= 256
            ):
                raise _Fail(400, "Invalid input: 'new_password' must be a string of 8 to 256 characters")
            self._running(svc)
            user["password"] = new_password if new_password is not None else _new_password()
            self._lag_password(svc, username, path)
        elif operation == "set-access-control":
            if svc.service_type != "valkey":
                raise _Fail(
                    400, f"Invalid input: access control is not supported for {svc.service_type} services"
                )
            if "access_control" not in data or data["access_control"] is None:
                raise _Fail(400, "Invalid input: 'access_control' is a required property")
            access_control = _validate_access_control(data["access_control"])
            self._running(svc)
            user["access_control"] = access_control
        else:
            self._running(svc)
            user.pop("expiring_cert_not_valid_after_time", None)
        svc.update_time = self._now()
        return _ok({"service": self._service_json(svc, redact=True), "message": "updated"})

    def _reset_user_route(self, p: str, s: str, username: str, path: str) -> Reply:
        svc = self._service(p, s)
        user = self._user(svc, username)
        self._running(svc)
        user["password"] = _new_password()
        self._lag_password(svc, username, path)
        svc.update_time = self._now()
        return _ok({"service": self._service_json(svc, redact=True), "message": "updated"})

    # ---- OpenSearch ACL -----------------------------------------------------------------------

    def _opensearch_acl_route(self, p: str, s: str, method: str, wrapper: str, body: bytes) -> Reply:
        svc = self._service(p, s)
        if svc.service_type != "opensearch":
            raise _Fail(400, f"Invalid input: service {s} is not an OpenSearch service")
        if method != "GET":
            data = _json_object(body)
            raw = data.get(wrapper, data.get("opensearch_acl_config", data.get("elasticsearch_acl_config")))
            if not isinstance(raw, dict):
                raise _Fail(400, f"Invalid input: '{wrapper}' is a required property")
            update = _validate_opensearch_acl(raw)
            self._running(svc)
            if method == "POST":
                svc.opensearch_acl = {
                    "acls": update.get("acls", []),
                    "enabled": update.get("enabled", False),
                    "extendedAcl": update.get("extendedAcl", False),
                }
            else:
                svc.opensearch_acl.update(update)
            svc.update_time = self._now()
        return _ok({wrapper: _copy(svc.opensearch_acl)})

    # ---- Kafka and Schema Registry ACLs -------------------------------------------------------

    def _kafka_service(self, p: str, s: str) -> _Service:
        svc = self._service(p, s)
        if svc.service_type != "kafka":
            raise _Fail(400, f"Invalid input: service {s} is not a Kafka service")
        return svc

    def _kafka_acl_route(self, p: str, s: str, method: str, body: bytes) -> Reply:
        svc = self._kafka_service(p, s)
        if method == "POST":
            data = _json_object(body)
            permission = data.get("permission")
            if permission not in KAFKA_PERMISSIONS:
                raise _Fail(400, f"Invalid input: 'permission' must be one of {', '.join(KAFKA_PERMISSIONS)}")
            topic = _bounded_str(data, "topic", 249)
            username = _bounded_str(data, "username", 64)
            if not KAFKA_ACL_USERNAME_PATTERN.match(username):
                raise _Fail(400, "Invalid input: 'username' does not match pattern '^[-._*?A-Za-z0-9]+$'")
            self._running(svc)
            svc.acl.append({"id": _acl_id(), "permission": permission, "topic": topic, "username": username})
            svc.update_time = self._now()
            return _ok({"acl": _copy(svc.acl), "message": "added"})
        return _ok({"acl": _copy(svc.acl)})

    def _schema_registry_acl_route(self, p: str, s: str, method: str, body: bytes) -> Reply:
        svc = self._kafka_service(p, s)
        if not svc.schema_registry:
            raise _Fail(400, f"Invalid input: Schema Registry is not enabled on service {s}")
        if method == "POST":
            data = _json_object(body)
            permission = data.get("permission")
            if permission not in SCHEMA_REGISTRY_PERMISSIONS:
                raise _Fail(
                    400,
                    f"Invalid input: 'permission' must be one of {', '.join(SCHEMA_REGISTRY_PERMISSIONS)}",
                )
            resource = _bounded_str(data, "resource", 249)
            username = _bounded_str(data, "username", 64)
            self._running(svc)
            svc.schema_registry_acl.append(
                {"id": _acl_id(), "permission": permission, "resource": resource, "username": username}
            )
            svc.update_time = self._now()
            return _ok({"acl": _copy(svc.schema_registry_acl), "message": "added"})
        return _ok({"acl": _copy(svc.schema_registry_acl)})

    def _delete_acl_route(
        self, p: str, s: str, which: Literal["acl", "schema_registry_acl"], acl_id: str
    ) -> Reply:
        svc = self._kafka_service(p, s)
        entries = svc.acl if which == "acl" else svc.schema_registry_acl
        if which == "schema_registry_acl" and not svc.schema_registry:
            raise _Fail(400, f"Invalid input: Schema Registry is not enabled on service {s}")
        index = next((i for i, e in enumerate(entries) if e["id"] == acl_id), None)
        if index is None:
            raise _Fail(404, MSG_NO_ACL)
        self._running(svc)
        del entries[index]
        svc.update_time = self._now()
        return _ok({"acl": _copy(entries), "message": "deleted"})

    # ---- service objects ----------------------------------------------------------------------

    def _service_json(self, svc: _Service, redact: bool) -> JSON:
        admin = svc.users.get(svc.admin_name, {})
        admin_pw = admin.get("password", "")
        shown_pw = REDACTED if redact else admin_pw
        host, port = svc.host, svc.port
        components: list[JSON]
        uri_params: dict[str, str] = {"host": host, "port": str(port)}
        info: JSON
        user_config: JSON = {}
        if svc.service_type == "kafka":
            sasl_port, sr_port = port + 13, port + 3
            components = [
                _component(
                    "kafka", host, port, kafka_authentication_method="certificate", kafka_ssl_ca="project_ca"
                ),
                _component(
                    "kafka", host, sasl_port, kafka_authentication_method="sasl", kafka_ssl_ca="project_ca"
                ),
            ]
            service_uri = f"{host}:{port}"
            info = {
                "kafka": [f"{host}:{port}"],
                "kafka_access_cert": admin.get("access_cert", ""),
                "kafka_access_key": REDACTED if redact else admin.get("access_key", ""),
            }
            if svc.schema_registry:
                components.append(_component("schema_registry", host, sr_port))
                info["schema_registry_uri"] = f"https://avnadmin:{shown_pw}@{host}:{sr_port}"
            user_config = {
                "kafka_authentication_methods": {"certificate": True, "sasl": True},
                "schema_registry": svc.schema_registry,
            }
        elif svc.service_type == "opensearch":
            components = [_component("opensearch", host, port)]
            service_uri = f"https://avnadmin:{shown_pw}@{host}:{port}"
            uri_params |= {"user": "avnadmin", "password": shown_pw}
            info = {
                "opensearch": [service_uri],
                "opensearch_username": "avnadmin",
                "opensearch_password": shown_pw,
            }
            if svc.dashboards:
                components.append(_component("opensearch_dashboards", host, 443))
                info["opensearch_dashboards_uri"] = f"https://{host}:443"
        else:
            components = [_component("valkey", host, port)]
            service_uri = f"rediss://default:{shown_pw}@{host}:{port}"
            uri_params |= {"user": "default", "password": shown_pw, "ssl": "required"}
            info = {"valkey": [service_uri], "valkey_password": shown_pw, "valkey_slave": []}
            if svc.replica:
                replica_host = f"replica-{host}"
                components.append(_component("valkey", replica_host, port, usage="replica"))
                replica_uri = f"rediss://default:{shown_pw}@{replica_host}:{port}"
                info["valkey_replica_uri"] = replica_uri
                info["valkey_slave"] = [replica_uri]
        return {
            "service_name": svc.name,
            "service_type": svc.service_type,
            "state": svc.state,
            "plan": "business-4",
            "cloud_name": "google-europe-north1",
            "project_vpc_id": "",
            "create_time": format_time(svc.create_time),
            "update_time": format_time(svc.update_time),
            "group_list": ["default"],
            "service_integrations": [],
            "termination_protection": False,
            "node_count": 3 if svc.service_type == "kafka" else 1 + int(svc.replica),
            "service_uri": service_uri,
            "service_uri_params": uri_params,
            "user_config": user_config,
            "components": components,
            "connection_info": info,
            "users": [_user_json(u, redact) for u in svc.users.values()],
            "acl": _copy(svc.acl) if svc.service_type == "kafka" else [],
            "schema_registry_acl": _copy(svc.schema_registry_acl) if svc.service_type == "kafka" else [],
            "kafka_acl": [],
        }


# ---- helpers ------------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """Deep copy through JSON: what leaves the simulator can never alias its state."""
    return json.loads(json.dumps(value))


def _copy_obj(value: JSON) -> JSON:
    out: JSON = _copy(value)
    return out


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _ok(body: JSON) -> Reply:
    return Reply(200, body)


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, error_body(status, message), headers)


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise _Fail(405, f"Method {method} not allowed")


def _fault_reply(fault: Fault, retry_after: int | None) -> Reply | Drop:
    if fault.kind in ("throttle", "rate_limit"):
        seconds = retry_after if retry_after is not None else 1
        message = RATE_LIMIT_MESSAGE.format(limit=fault.limit, seconds=seconds)
        return _error(429, message, (("retry-after", str(seconds)),))
    if fault.kind == "timeout":
        return Drop("timeout", fault.hang_s)
    if fault.kind == "reset":
        return Drop("reset")
    if fault.kind == "echo_canary":
        return _error(fault.status, f"Internal error while handling credentials {fault.canary}")
    headers = (("retry-after", str(retry_after)),) if retry_after is not None else ()
    return _error(fault.status, fault.message or _default_message(fault.status), headers)


def _default_message(status: int) -> str:
    return {502: "Bad gateway", 503: "Service temporarily unavailable", 504: "Gateway timeout"}.get(
        status, "Internal server error"
    )


def _new_password() -> str:
    return "AVNS_" + secrets.token_urlsafe(18)


def _acl_id() -> str:
    return "acl" + secrets.token_hex(6)[:11]


def _json_object(body: bytes) -> JSON:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Fail(400, "Invalid input: request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _Fail(400, "Invalid input: request body must be a JSON object")
    return data


def _validate_username(value: object) -> str:
    if value is None:
        raise _Fail(400, "Invalid input: 'username' is a required property")
    if not isinstance(value, str):
        raise _Fail(400, "Invalid input: 'username' must be a string")
    if value == "":
        raise _Fail(400, "Invalid input: 'username' is too short")
    if len(value) > 64:
        raise _Fail(400, "Invalid input: 'username' is too long")
    if not USERNAME_PATTERN.match(value):
        raise _Fail(
            400, "Invalid input: 'username' does not match pattern '^[A-Za-z0-9_][-._A-Za-z0-9]{0,63}$'"
        )
    return value


def _validate_access_control(value: object) -> JSON:
    if not isinstance(value, dict):
        raise _Fail(400, "Invalid input: 'access_control' must be an object")
    out: JSON = {}
    for key, item in value.items():
        if key == "pg_allow_replication":
            if not isinstance(item, bool):
                raise _Fail(400, "Invalid input: 'pg_allow_replication' must be a boolean")
            out[key] = item
        elif key in ACCESS_CONTROL_LIST_KEYS:
            if item is None:
                item = []
            if not isinstance(item, list) or not all(isinstance(x, str) for x in item):
                raise _Fail(400, f"Invalid input: '{key}' must be a list of strings")
            out[key] = list(item)
        else:
            raise _Fail(400, f"Invalid input: additional property '{key}' is not allowed in 'access_control'")
    return out


def _validate_opensearch_acl(raw: JSON) -> JSON:
    update: JSON = {}
    if "acls" in raw:
        acls = raw["acls"] if raw["acls"] is not None else []
        if not isinstance(acls, list):
            raise _Fail(400, "Invalid input: 'acls' must be a list")
        clean = []
        for acl in acls:
            if not isinstance(acl, dict) or not isinstance(acl.get("username"), str) or not acl["username"]:
                raise _Fail(400, "Invalid input: each ACL needs a non-empty 'username'")
            rules = acl.get("rules") if acl.get("rules") is not None else []
            if not isinstance(rules, list):
                raise _Fail(400, "Invalid input: 'rules' must be a list")
            clean_rules = []
            for rule in rules:
                if not isinstance(rule, dict):
                    raise _Fail(400, "Invalid input: each rule must be an object")
                index = rule.get("index")
                if not isinstance(index, str) or not 1 <= len(index) <= 249:
                    raise _Fail(400, "Invalid input: rule 'index' must be a string of 1 to 249 characters")
                if rule.get("permission") not in OPENSEARCH_PERMISSIONS:
                    raise _Fail(
                        400,
                        f"Invalid input: rule 'permission' must be one of {', '.join(OPENSEARCH_PERMISSIONS)}",
                    )
                clean_rules.append({"index": index, "permission": rule["permission"]})
            clean.append({"username": acl["username"], "rules": clean_rules})
        update["acls"] = clean
    for key in ("enabled", "extendedAcl"):
        if key in raw and raw[key] is not None:
            if not isinstance(raw[key], bool):
                raise _Fail(400, f"Invalid input: '{key}' must be a boolean")
            update[key] = raw[key]
    return update


def _bounded_str(data: JSON, key: str, max_len: int) -> str:
    value = data.get(key)
    if value is None:
        raise _Fail(400, f"Invalid input: '{key}' is a required property")
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise _Fail(400, f"Invalid input: '{key}' must be a string of 1 to {max_len} characters")
    return value


def _component(
    name: str,
    host: str,
    port: int,
    *,
    usage: str = "primary",
    kafka_authentication_method: str | None = None,
    kafka_ssl_ca: str | None = None,
) -> JSON:
    comp: JSON = {"component": name, "host": host, "port": port, "route": "dynamic", "usage": usage}
    if kafka_authentication_method is not None:
        comp["kafka_authentication_method"] = kafka_authentication_method
    if kafka_ssl_ca is not None:
        comp["kafka_ssl_ca"] = kafka_ssl_ca
    return comp


def _user_json(user: JSON, redact: bool) -> JSON:
    out = _copy_obj(user)
    if redact:
        out["password"] = REDACTED
        if "access_key" in out:
            out["access_key"] = REDACTED
    return out
