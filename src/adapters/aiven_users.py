"""Aiven service users: read, ensure (create or adopt), delete, and Valkey access control
(aiven-api.md §5.3). Never hands out or deletes a built-in user; never repeats a create blindly."""

from __future__ import annotations

from aivenator.adapters.aiven_facts import AivenFacts
from aivenator.adapters.aiven_transport import AivenTransport, api_path
from aivenator.adapters.aiven_wire import (
    access_control_body,
    credentials_complete,
    parse_user,
    same_access_control,
    user_secrets,
)
from aivenator.domain import user_ensure
from aivenator.domain.facts import (
    AivenError,
    NotFound,
    Rejected,
    ServiceFacts,
    ServiceType,
    ServiceUser,
    Unavailable,
    ValkeyAccessControl,
)
from aivenator.domain.names import BUILTIN_USERS
from aivenator.domain.user_ensure import EnsureStep
from returns.result import Failure, Result, Success

#: Built-in users the operator must never hand out or delete (product spec §6), by name; users
#: of Aiven `type` `primary` are refused too when the service's facts are at hand.
PROTECTED_USERS = frozenset({"avnadmin", "default"}) | BUILTIN_USERS


class AivenUsers:
    """Service-user calls over a shared `AivenTransport` and `AivenFacts`. Thread-safe."""

    def __init__(self, transport: AivenTransport, facts: AivenFacts) -> None:
        self._t = transport
        self._facts = facts

    def get_user(self, project: str, service: str, username: str) -> Result[ServiceUser, AivenError]:
        result = self._get_user(project, service, username, self._t.deadline())
        self._facts.invalidate_on(project, service, result)
        return result

    def ensure_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None = None,
    ) -> Result[ServiceUser, AivenError]:
        """Create the user first unless the service is known to have it (one request for a new
        user); on 409 (someone else created it) read it; read a known user, creating it on 404.

        Returns complete credentials: re-reads briefly while the API still answers 404 or an empty
        password right after a create. A create that failed in transit is never repeated blindly:
        the next round reads first, so a create that committed is adopted, not duplicated. For
        Valkey, an existing user whose access control differs is corrected.
        """
        if username in PROTECTED_USERS:
            return Failure(Rejected(f"refusing to hand out built-in user {username}", status=403))
        deadline = self._t.deadline()
        facts_result = self._facts.load_service(project, service, deadline)
        if isinstance(facts_result, Failure):
            return Failure(facts_result.failure())
        facts = facts_result.unwrap()
        if username in facts.builtin_usernames:
            return Failure(Rejected(f"refusing to hand out built-in user {username}", status=403))
        if not facts.usable:
            return Failure(Unavailable(f"service {service} is {facts.state}"))
        result = self._ensure_user(facts, username, access_control, deadline)
        self._facts.invalidate_on(project, service, result)
        if isinstance(result, Success):
            self._t.log.debug("aiven_user_ensured", project=project, service=service, username=username)
        return result

    def _ensure_user(
        self,
        facts: ServiceFacts,
        username: str,
        access_control: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        """Execute the steps `aivenator.domain.user_ensure` decides: create first when the user
        is not among the service's known users, read when it is, after a 409, or after an
        ambiguous create failure; at most `retry.attempts` rounds."""
        project, service = facts.project, facts.name
        last: AivenError = Unavailable(f"could not ensure user on service {service}")
        step = user_ensure.first_step(username, self._facts.known_users(project, service))
        for round_no in range(1, self._t.retry.attempts + 1):
            if step is EnsureStep.READ:
                answer = self._get_user(project, service, username, deadline)
                error = answer.failure() if isinstance(answer, Failure) else None
                step = user_ensure.after_read(error)
                if step is EnsureStep.USE:
                    return self._complete(facts, answer.unwrap(), access_control, deadline)
                if step is EnsureStep.FAIL:
                    return Failure(answer.failure())
            # step is CREATE here
            created = self._create_user(project, service, username, access_control, deadline)
            error = created.failure() if isinstance(created, Failure) else None
            step = user_ensure.after_create(error)
            match step:
                case EnsureStep.USE:
                    self._facts.remember_user(project, service, username, present=True)
                    self._t.log.info(
                        "aiven_user_created", project=project, service=service, username=username
                    )
                    return self._complete(facts, created.unwrap(), access_control, deadline)
                case EnsureStep.ADOPT:
                    # Someone (another worker, another process, an earlier try of ours) made it.
                    self._facts.remember_user(project, service, username, present=True)
                    adopted = self._read_until_complete(facts, username, deadline)
                    if isinstance(adopted, Failure):
                        return adopted
                    return self._with_access_control(facts, adopted.unwrap(), access_control, deadline)
                case EnsureStep.BACK_OFF_AND_READ:
                    # The create may have committed before the failure: read next, never re-POST.
                    last = created.failure()
                    if round_no < self._t.retry.attempts:
                        wait = self._t.backoff(round_no)
                        if self._t.clock() + wait > deadline:
                            return Failure(last)
                        self._t.sleep(wait)
                    step = EnsureStep.READ
                case _:
                    return Failure(created.failure())
        return Failure(last)

    def _complete(
        self,
        facts: ServiceFacts,
        user: ServiceUser,
        access_control: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        """The user with complete credentials (re-read while the API lags) and access control."""
        if not credentials_complete(user, facts.service_type):
            completed = self._read_until_complete(facts, user.username, deadline)
            if isinstance(completed, Failure):
                return completed
            user = completed.unwrap()
        return self._with_access_control(facts, user, access_control, deadline)

    def _create_user(
        self,
        project: str,
        service: str,
        username: str,
        access_control: ValkeyAccessControl | None,
        deadline: float,
    ) -> Result[ServiceUser, AivenError]:
        body: dict[str, object] = {"username": username}
        if access_control is not None:
            body["access_control"] = access_control_body(access_control)
        path = api_path("/v1/project/{project}/service/{service}/user", project=project, service=service)
        return self._t.request("ServiceUserCreate", "POST", path, deadline, body=body, idempotent=False).bind(
            lambda b: self._t.decode("ServiceUserCreate", lambda: self._user_from(b))
        )

    def _get_user(
        self, project: str, service: str, username: str, deadline: float
    ) -> Result[ServiceUser, AivenError]:
        path = api_path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        return self._t.request(
            "ServiceUserGet", "GET", path, deadline, params={"include_secrets": "true"}
        ).bind(lambda b: self._t.decode("ServiceUserGet", lambda: self._user_from(b)))

    def _read_until_complete(
        self, facts: ServiceFacts, username: str, deadline: float
    ) -> Result[ServiceUser, AivenError]:
        """Read a user that should exist, tolerating the API's short lag (404 / empty password)."""
        reads = max(1, self._t.retry.lag_reads)
        for read_no in range(1, reads + 1):
            got = self._get_user(facts.project, facts.name, username, deadline)
            if isinstance(got, Success) and credentials_complete(got.unwrap(), facts.service_type):
                return got
            if isinstance(got, Failure) and not isinstance(got.failure(), NotFound):
                return got
            if read_no == reads or self._t.clock() + self._t.retry.lag_delay > deadline:
                break
            self._t.sleep(self._t.retry.lag_delay)
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
        self._t.log.info(
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
        cached = self._facts.cached_service(project, service)
        if username in PROTECTED_USERS or (cached is not None and username in cached.builtin_usernames):
            return Failure(Rejected(f"refusing to delete built-in user {username}", status=403))
        deadline = self._t.deadline()
        path = api_path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        result = self._t.request("ServiceUserDelete", "DELETE", path, deadline)
        if isinstance(result, Success) or isinstance(result.failure(), NotFound):
            self._facts.remember_user(project, service, username, present=False)
            if isinstance(result, Success):
                self._t.log.info("aiven_user_deleted", project=project, service=service, username=username)
            return Success(None)
        self._facts.invalidate_on(project, service, result)
        return Failure(result.failure())

    def set_access_control(
        self, project: str, service: str, username: str, access_control: ValkeyAccessControl
    ) -> Result[None, AivenError]:
        result = self._set_access_control(project, service, username, access_control, self._t.deadline())
        self._facts.invalidate_on(project, service, result)
        return result

    def _set_access_control(
        self, project: str, service: str, username: str, ac: ValkeyAccessControl, deadline: float
    ) -> Result[None, AivenError]:
        path = api_path(
            "/v1/project/{project}/service/{service}/user/{username}",
            project=project,
            service=service,
            username=username,
        )
        body = {"operation": "set-access-control", "access_control": access_control_body(ac)}
        # Same full body each time, so repeating it after a dropped response is harmless.
        result = self._t.request("ServiceUserCredentialsModify", "PUT", path, deadline, body=body)
        return result.map(lambda _: None)

    def _user_from(self, body: object) -> ServiceUser:
        self._t.secrets.add(*user_secrets(body))
        return parse_user(body)
