"""The Aiven httpx adapter against the simulator's MockTransport, on a fake clock.

The simulator and the adapter share one fake monotonic clock, so the simulator's request log
timestamps show exactly when each request was sent, and sleeps cost no wall time.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import structlog
from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_http import AivenHttp, RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven, Reply
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.facts import (
    Conflict,
    Endpoint,
    NotFound,
    OpenSearchRule,
    Rejected,
    ServiceType,
    Throttled,
    Unavailable,
    ValkeyAccessControl,
)
from aivenator.domain.names import count_by_convention
from aivenator.domain.ports import AivenPort
from returns.result import Failure, Success

from tests.support.clock import FakeClock

TOKEN = "unit-test-token-7f3a9c"
PROJECT = "proj"


def make_fake(clock: FakeClock | None = None) -> FakeAiven:
    fake = FakeAiven(token=TOKEN, monotonic=clock.monotonic if clock else None, sleep=clock.sleep if clock else None)
    fake.add_service(PROJECT, "kafka", "kafka")
    fake.add_service(PROJECT, "os", "opensearch")
    fake.add_service(PROJECT, "vk", "valkey", replica=True)
    fake.add_service(PROJECT, "slow", "kafka", state="REBUILDING")
    return fake


def make_adapter(
    fake: FakeAiven | None,
    clock: FakeClock,
    *,
    transport: httpx.BaseTransport | None = None,
    retry: RetryPolicy | None = None,
    budget: RequestBudget | None = None,
    observer: Callable[[str, str, float], None] | None = None,
    secrets: SecretRegistry | None = None,
    cache_ttl: float = 300.0,
) -> AivenHttp:
    if transport is None:
        assert fake is not None, "a fake Aiven or a transport is needed"
        transport = fake.mock_transport()
    return AivenHttp(
        "https://aiven.test",
        TOKEN,
        transport=transport,
        retry=retry or RetryPolicy(),
        budget=budget,
        clock=clock.monotonic,
        sleep=clock.sleep,
        random=lambda: 0.5,
        observer=observer,
        secrets=secrets if secrets is not None else SecretRegistry(),
        cache_ttl=cache_ttl,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeAiven:
    return make_fake(clock)


@pytest.fixture
def aiven(fake: FakeAiven, clock: FakeClock) -> Iterator[AivenHttp]:
    adapter = make_adapter(fake, clock)
    yield adapter
    adapter.close()


def ops(fake: FakeAiven) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.request_log]


def user_path(service: str, user: str) -> str:
    return f"/v1/project/{PROJECT}/service/{service}/user/{user}"


# --- wiring --------------------------------------------------------------------------------------


def test_satisfies_the_port_and_sends_token_user_agent_and_include_secrets(clock: FakeClock) -> None:
    seen: list[httpx.Request] = []
    fake = make_fake(clock)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake.handle(request)

    port: AivenPort = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    assert isinstance(port.ensure_user(PROJECT, "kafka", "app_one"), Success)
    assert seen, "no request sent"
    for request in seen:
        assert request.headers["authorization"] == f"aivenv1 {TOKEN}"
        assert request.headers["user-agent"].startswith("aivenator/")
        assert request.url.path.startswith("/v1/project/")
    gets = [r for r in seen if r.method == "GET"]
    assert gets and all(r.url.params.get("include_secrets") == "true" for r in gets)


def test_base_url_with_trailing_v1_is_accepted(fake: FakeAiven, clock: FakeClock) -> None:
    adapter = AivenHttp(
        "https://aiven.test/v1/",
        TOKEN,
        transport=fake.mock_transport(),
        clock=clock.monotonic,
        sleep=clock.sleep,
        secrets=SecretRegistry(),
    )
    assert isinstance(adapter.project_ca(PROJECT), Success)


# --- service facts -------------------------------------------------------------------------------


def test_service_facts_pick_the_certificate_listener_and_schema_registry(
    aiven: AivenHttp, fake: FakeAiven
) -> None:
    facts = aiven.service(PROJECT, "kafka").unwrap()
    assert facts.service_type is ServiceType.KAFKA and facts.usable
    assert "avnadmin" in facts.usernames
    assert facts.builtin_usernames == ("avnadmin",)
    comps = _components(fake, "kafka")
    cert = next(
        c for c in comps if c["component"] == "kafka" and c["kafka_authentication_method"] == "certificate"
    )
    sasl = next(c for c in comps if c["component"] == "kafka" and c["kafka_authentication_method"] == "sasl")
    kafka = facts.endpoint("kafka")
    assert kafka is not None and kafka.port == cert["port"] and kafka.port != sasl["port"]
    assert facts.endpoint("schema_registry") is not None
    assert facts.endpoint("opensearch") is None


def test_service_facts_for_opensearch_and_valkey_with_replica(aiven: AivenHttp) -> None:
    os_facts = aiven.service(PROJECT, "os").unwrap()
    assert os_facts.endpoint("opensearch") is not None
    assert os_facts.endpoint("opensearch_dashboards") is not None
    vk = aiven.service(PROJECT, "vk").unwrap()
    primary, replica = vk.endpoint("valkey"), vk.endpoint("valkey_replica")
    assert primary is not None and replica is not None and primary != replica
    assert vk.usernames == ("default",)


def test_endpoints_prefer_dynamic_route_then_first_match(clock: FakeClock) -> None:
    service = {
        "service_name": "k",
        "service_type": "kafka",
        "state": "RUNNING",
        "users": [],
        "components": [
            {
                "component": "kafka",
                "host": "sasl",
                "port": 1,
                "usage": "primary",
                "kafka_authentication_method": "sasl",
            },
            {"component": "kafka", "host": "private", "port": 2, "route": "private", "usage": "primary"},
            {"component": "kafka", "host": "dyn", "port": 3, "route": "dynamic", "usage": "primary"},
            {
                "component": "schema_registry",
                "host": "sr1",
                "port": 4,
                "route": "private",
                "usage": "primary",
            },
            {"component": "schema_registry", "host": "sr2", "port": 5, "route": "public", "usage": "primary"},
        ],
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"service": service}))
    facts = make_adapter(None, clock, transport=transport).service(PROJECT, "k").unwrap()
    assert facts.endpoint("kafka") == Endpoint("dyn", 3)
    sr = facts.endpoint("schema_registry")
    assert sr is not None and sr.host == "sr1"


def test_unknown_service_type_is_rejected(clock: FakeClock) -> None:
    body = {"service": {"service_name": "pg", "service_type": "pg", "state": "RUNNING"}}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    result = make_adapter(None, clock, transport=transport).service(PROJECT, "pg")
    assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)


def _components(fake: FakeAiven, service: str) -> list[dict[str, Any]]:
    outcome = fake.process(
        "GET", f"/v1/project/{PROJECT}/service/{service}", {"authorization": f"aivenv1 {TOKEN}"}, b""
    )
    assert isinstance(outcome, Reply)
    body = outcome.body
    assert body is not None
    comps: list[dict[str, Any]] = body["service"]["components"]
    return comps


# --- ensure_user ---------------------------------------------------------------------------------


def test_cold_kafka_user_is_created_first_with_full_credentials_in_two_requests(
    aiven: AivenHttp, fake: FakeAiven
) -> None:
    user = aiven.ensure_user(PROJECT, "kafka", "team_app_1").unwrap()
    assert user.username == "team_app_1" and user.password
    assert user.access_cert and "BEGIN CERTIFICATE" in user.access_cert
    assert user.access_key and "PRIVATE KEY" in user.access_key
    assert user.cert_not_valid_after is not None
    assert ops(fake) == [
        ("GET", f"/v1/project/{PROJECT}/service/kafka"),
        ("POST", f"/v1/project/{PROJECT}/service/kafka/user"),
    ]
    assert aiven.request_counts() == {"ServiceGet": 1, "ServiceUserCreate": 1}
    assert "team_app_1" in fake.users(PROJECT, "kafka")


def test_warm_ensure_uses_cached_service_facts_and_one_get(aiven: AivenHttp, fake: FakeAiven) -> None:
    aiven.ensure_user(PROJECT, "kafka", "team_app_1").unwrap()
    before = len(fake.request_log)
    again = aiven.ensure_user(PROJECT, "kafka", "team_app_1").unwrap()
    assert again.username == "team_app_1"
    assert ops(fake)[before:] == [("GET", user_path("kafka", "team_app_1"))]
    # and the known users learnt about the new user without another GET
    assert "team_app_1" in aiven.known_users(PROJECT, "kafka")
    assert aiven.request_counts()["ServiceGet"] == 1


def test_known_users_and_convention_counts_follow_creates_deletes_and_rereads(
    aiven: AivenHttp, fake: FakeAiven
) -> None:
    fake.add_user(PROJECT, "kafka", "other.team.app")
    assert aiven.users_by_convention(PROJECT, "kafka") == {}  # never read: nothing known
    aiven.service(PROJECT, "kafka").unwrap()

    def from_aiven() -> dict[str, int]:
        return count_by_convention(fake.users(PROJECT, "kafka"))

    assert aiven.users_by_convention(PROJECT, "kafka") == from_aiven() == {"dot": 1, "underscore": 0, "other": 1}
    for name in ("team_ns_app_1a2b", "plain", "team.app", "team_ns_app_1a2b"):
        aiven.ensure_user(PROJECT, "kafka", name).unwrap()
        assert aiven.users_by_convention(PROJECT, "kafka") == from_aiven()
        assert name in aiven.known_users(PROJECT, "kafka")
    assert aiven.users_by_convention(PROJECT, "kafka") == {"dot": 2, "underscore": 1, "other": 2}
    for name in ("team_ns_app_1a2b", "team_ns_app_1a2b", "team.app"):
        aiven.delete_user(PROJECT, "kafka", name).unwrap()
        assert aiven.users_by_convention(PROJECT, "kafka") == from_aiven()
        assert name not in aiven.known_users(PROJECT, "kafka")
    # Someone else's change is seen at the next read, which recounts from scratch.
    fake.add_user(PROJECT, "kafka", "x_y_z_w")
    aiven.invalidate(PROJECT, "kafka")
    aiven.service(PROJECT, "kafka").unwrap()
    assert aiven.users_by_convention(PROJECT, "kafka") == from_aiven() == {"dot": 1, "underscore": 1, "other": 2}
    assert "x_y_z_w" in aiven.known_users(PROJECT, "kafka")


def test_many_workers_ensuring_the_same_user_make_exactly_one(fake: FakeAiven) -> None:
    aiven = AivenHttp("https://aiven.test", TOKEN, transport=fake.mock_transport(), secrets=SecretRegistry())
    results: list[object] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait(5)
        results.append(aiven.ensure_user(PROJECT, "kafka", "shared_user"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and all(isinstance(r, Success) for r in results)
    passwords = {r.unwrap().password for r in results if isinstance(r, Success)}
    assert passwords == {fake.users(PROJECT, "kafka")["shared_user"]["password"]}
    assert len([r for r in fake.requests_matching("POST") if r.status == 200]) == 1


def test_existing_user_is_adopted_without_create(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.add_user(PROJECT, "kafka", "already_there")
    user = aiven.ensure_user(PROJECT, "kafka", "already_there").unwrap()
    assert user.password == fake.users(PROJECT, "kafka")["already_there"]["password"]
    assert not [m for m, _ in ops(fake) if m == "POST"]


def test_create_conflict_means_someone_else_made_it_and_we_adopt_it(clock: FakeClock) -> None:
    fake = make_fake(clock)
    state = {"first_get": True}

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method == "GET" and request.url.path.endswith("/service/kafka") and state["first_get"]:
            state["first_get"] = False
            # another process wins between our read of the service's users and our POST
            fake.add_user(PROJECT, "kafka", "racer")
        return response

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    user = aiven.ensure_user(PROJECT, "kafka", "racer").unwrap()
    assert user.password == fake.users(PROJECT, "kafka")["racer"]["password"]
    statuses = [
        (r.method, r.status) for r in fake.request_log if r.path.endswith("racer") or r.method == "POST"
    ]
    assert ("POST", 409) in statuses
    assert statuses.index(("POST", 409)) < statuses.index(("GET", 200))  # 409, then read


def test_known_user_is_read_first_and_created_when_it_is_gone(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.add_user(PROJECT, "kafka", "known_app")
    aiven.service(PROJECT, "kafka").unwrap()  # the service's users include known_app
    fake.delete_user_out_of_band(PROJECT, "kafka", "known_app")  # deleted since
    before = len(fake.request_log)
    user = aiven.ensure_user(PROJECT, "kafka", "known_app").unwrap()
    assert user.password == fake.users(PROJECT, "kafka")["known_app"]["password"]
    assert [(r.method, r.status) for r in fake.request_log[before:]] == [("GET", 404), ("POST", 200)]


@pytest.mark.parametrize("drop", [False, True], ids=["500-after-commit", "dropped-after-commit"])
def test_commit_then_fail_on_create_leaves_exactly_one_user(
    aiven: AivenHttp, fake: FakeAiven, drop: bool
) -> None:
    fake.faults.commit_then_fail(method="POST", path=r"/user$", times=1, drop=drop)
    user = aiven.ensure_user(PROJECT, "kafka", "committed").unwrap()
    users = fake.users(PROJECT, "kafka")
    assert list(users).count("committed") == 1
    assert user.password == users["committed"]["password"]
    # never a blind second POST: the adapter read next and adopted the committed user
    assert len(fake.requests_matching("POST", r"/user$")) == 1
    assert len(fake.requests_matching("GET", r"/user/committed$")) >= 1


def test_404_lag_after_create_is_tolerated(aiven: AivenHttp, fake: FakeAiven, clock: FakeClock) -> None:
    fake.faults.user_lag(reads=2)
    fake.faults.commit_then_fail(method="POST", path=r"/user$", times=1)  # forces reads after create
    user = aiven.ensure_user(PROJECT, "kafka", "laggy").unwrap()
    assert user.username == "laggy" and user.access_key
    assert list(fake.users(PROJECT, "kafka")).count("laggy") == 1
    # the lagging read after the failed create looked like "absent"; the repeat create answered
    # 409, and the adapter adopted the user through the remaining lag
    assert [r.status for r in fake.requests_matching("POST", r"/user$")] == [500, 409]
    assert [r.status for r in fake.requests_matching("GET", r"/user/laggy$")][-2:] == [404, 200]


def test_empty_password_right_after_create_is_reread(clock: FakeClock) -> None:
    fake = make_fake(clock)

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method == "POST":
            body = response.json()
            body["user"]["password"] = ""
            return httpx.Response(200, json=body)
        return response

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    user = aiven.ensure_user(PROJECT, "kafka", "fresh").unwrap()
    assert user.password == fake.users(PROJECT, "kafka")["fresh"]["password"]


def test_transient_5xx_on_read_is_retried_with_backoff(
    aiven: AivenHttp, fake: FakeAiven, clock: FakeClock
) -> None:
    fake.add_user(PROJECT, "kafka", "flaky")  # known to the service: the first step is a read
    fake.faults.error(503, method="GET", path=r"/user/", times=2)
    assert isinstance(aiven.ensure_user(PROJECT, "kafka", "flaky"), Success)
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] > 0


def test_persistent_5xx_gives_up_as_unavailable_within_budget(fake: FakeAiven, clock: FakeClock) -> None:
    aiven = make_adapter(fake, clock, retry=RetryPolicy(attempts=4, call_budget=5.0))
    fake.faults.error(500, path=r"/user")
    start = clock.monotonic()
    result = aiven.ensure_user(PROJECT, "kafka", "doomed")
    assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)
    assert clock.monotonic() - start <= 5.0
    assert len(fake.requests_matching("GET", r"/user/doomed$")) == 4


def test_bad_username_is_rejected_without_retries(aiven: AivenHttp, fake: FakeAiven) -> None:
    result = aiven.ensure_user(PROJECT, "kafka", "-bad name!")
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, Rejected) and error.status == 400
    assert "Invalid input" in error.message
    assert len(fake.requests_matching("POST")) == 1


def test_service_not_running_is_unavailable_before_any_user_call(aiven: AivenHttp, fake: FakeAiven) -> None:
    result = aiven.ensure_user(PROJECT, "slow", "x_user")
    assert result == Failure(Unavailable("service slow is REBUILDING"))
    assert not fake.requests_matching(path=r"/user")
    # and it is looked at again soon, not cached for the whole TTL
    fake.set_service_state(PROJECT, "slow", "RUNNING")
    assert isinstance(aiven.ensure_user(PROJECT, "slow", "x_user"), Failure)  # still cached briefly


def test_unusable_state_is_rechecked_after_short_ttl(
    aiven: AivenHttp, fake: FakeAiven, clock: FakeClock
) -> None:
    assert isinstance(aiven.ensure_user(PROJECT, "slow", "x_user"), Failure)
    fake.set_service_state(PROJECT, "slow", "RUNNING")
    clock.sleep(RetryPolicy().unusable_ttl + 0.1)
    assert isinstance(aiven.ensure_user(PROJECT, "slow", "x_user"), Success)


def test_missing_service_is_not_found(aiven: AivenHttp) -> None:
    result = aiven.ensure_user(PROJECT, "nope", "u_1")
    assert isinstance(result, Failure) and isinstance(result.failure(), NotFound)


def test_transport_errors_never_escape(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    for call in (
        lambda: aiven.project_ca(PROJECT),
        lambda: aiven.service(PROJECT, "kafka"),
        lambda: aiven.ensure_user(PROJECT, "kafka", "u_1"),
        lambda: aiven.delete_user(PROJECT, "kafka", "u_1"),
        lambda: aiven.put_user_rules(PROJECT, "os", "u_1", ()),
    ):
        result = call()
        assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)


def test_timeouts_and_resets_are_unavailable_then_retried(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.faults.timeout(method="GET", path=r"/kms/ca", times=1)
    fake.faults.reset(method="GET", path=r"/kms/ca", times=1)
    assert isinstance(aiven.project_ca(PROJECT), Success)
    assert [r.status for r in fake.requests_matching("GET", r"/kms/ca")] == ["dropped", "dropped", 200]


def test_malformed_success_body_is_unavailable(clock: FakeClock) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>gateway</html>"))
    result = make_adapter(None, clock, transport=transport).project_ca(PROJECT)
    assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)


def test_unauthorized_says_so_without_echoing_the_body(fake: FakeAiven, clock: FakeClock) -> None:
    wrong = AivenHttp(
        "https://aiven.test", "wrong-token-123", transport=fake.mock_transport(), secrets=SecretRegistry()
    )
    result = wrong.project_ca(PROJECT)
    assert result == Failure(
        Rejected("ProjectKmsGetCA: Aiven rejected the API token (missing or expired)", 401)
    )


def test_malformed_acl_document_is_unavailable_not_an_exception(clock: FakeClock) -> None:
    body = {"opensearch_acl_config": {"acls": [{"username": "x", "rules": "not-a-list"}], "enabled": True}}
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    aiven = make_adapter(None, clock, transport=transport)
    for result in (
        aiven.put_user_rules(PROJECT, "os", "u", (OpenSearchRule("*", "read"),)),
        aiven.remove_user_rules(PROJECT, "os", "u"),
        aiven.get_acl_config(PROJECT, "os"),
    ):
        assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)


def test_other_statuses_are_classified(clock: FakeClock) -> None:
    for status, kind in (
        (401, Rejected),
        (403, Rejected),
        (404, NotFound),
        (409, Conflict),
        (408, Unavailable),
    ):
        transport = httpx.MockTransport(lambda r, s=status: httpx.Response(s, json={"message": "nope"}))
        result = make_adapter(None, clock, transport=transport).project_ca(PROJECT)
        assert isinstance(result, Failure) and isinstance(result.failure(), kind), status


# --- throttling and the request budget -----------------------------------------------------------


def test_429_is_honoured_exactly_and_converges(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.faults.throttle(retry_after=1, path=r"/kms/ca", times=2)
    assert isinstance(aiven.project_ca(PROJECT), Success)
    log = fake.requests_matching("GET", r"/kms/ca")
    assert [r.status for r in log] == [429, 429, 200]
    for previous, current in itertools.pairwise(log):
        assert current.at - previous.at >= 1.0


def test_429_pauses_every_caller_of_the_shared_budget(fake: FakeAiven, clock: FakeClock) -> None:
    budget = RequestBudget(rate=None)
    one = make_adapter(fake, clock, budget=budget, retry=RetryPolicy(call_budget=1.0))
    two = make_adapter(fake, clock, budget=budget, retry=RetryPolicy(call_budget=10.0))
    fake.faults.throttle(retry_after=2, path=r"/kms/ca", times=1)
    one_result = one.project_ca(PROJECT)
    # `one` cannot wait 2 s within its 1 s budget: it hands the wait back instead of sleeping
    assert isinstance(one_result, Failure) and isinstance(one_result.failure(), Throttled)
    throttled_at = fake.requests_matching(path=r"/kms/ca")[0].at
    assert clock.monotonic() == throttled_at
    # `two` talks to another endpoint but shares the budget: it waits out the pause first
    assert isinstance(two.service(PROJECT, "kafka"), Success)
    service_get = fake.requests_matching("GET", r"/service/kafka$")[0]
    assert service_get.at - throttled_at >= 2.0


def test_retry_after_longer_than_the_call_budget_returns_throttled_without_waiting(
    fake: FakeAiven, clock: FakeClock
) -> None:
    aiven = make_adapter(fake, clock, retry=RetryPolicy(call_budget=10.0))
    fake.faults.throttle(retry_after=30, path=r"/kms/ca")
    start = clock.monotonic()
    result = aiven.project_ca(PROJECT)
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, Throttled) and 29.0 <= error.retry_after <= 30.0
    assert clock.monotonic() == start and len(fake.requests_matching(path=r"/kms/ca")) == 1
    # the next call does not send before the pause elapsed either
    again = aiven.service(PROJECT, "kafka")
    assert isinstance(again, Failure) and isinstance(again.failure(), Throttled)
    assert len(fake.request_log) == 1


def test_throttle_without_header_uses_the_message(clock: FakeClock) -> None:
    body = {"message": "Rate limit 120 exceeded - try again in 28s", "errors": []}
    transport = httpx.MockTransport(lambda r: httpx.Response(429, json=body))
    result = make_adapter(None, clock, transport=transport).project_ca(PROJECT)
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, Throttled) and error.retry_after == pytest.approx(28.0)


def test_the_adaptive_rate_falls_on_a_429_and_climbs_back_on_answers(
    fake: FakeAiven, clock: FakeClock
) -> None:
    budget = RequestBudget(rate=40.0, burst=40)
    aiven = make_adapter(fake, clock, budget=budget)
    fake.faults.throttle(retry_after=1, path=r"/kms/ca", times=1)
    assert isinstance(aiven.project_ca(PROJECT), Success)
    assert budget.current_rate() == pytest.approx(30.0 + 0.5 / 30)  # x 0.75, then one answer
    for i in range(30):  # ~1 s of answers at 30/s: +0.5/s
        assert isinstance(aiven.get_user(PROJECT, "kafka", f"nobody_{i}"), Failure)  # 404 is an answer
    assert budget.current_rate() == pytest.approx(30.5, abs=0.05)


def test_client_budget_spreads_requests_and_answers_throttled_when_spent(
    fake: FakeAiven, clock: FakeClock
) -> None:
    budget = RequestBudget(rate=2.0, burst=2)
    aiven = make_adapter(fake, clock, budget=budget, retry=RetryPolicy(call_budget=0.2))
    # a fresh budget holds one token (no burst at start), then refills at the rate
    assert isinstance(aiven.project_ca(PROJECT), Success)
    clock.sleep(0.5)
    assert isinstance(aiven.service(PROJECT, "kafka"), Success)
    spent = aiven.service(PROJECT, "os")
    assert isinstance(spent, Failure)
    error = spent.failure()
    assert isinstance(error, Throttled) and "budget" in error.message
    assert error.retry_after == pytest.approx(0.5)
    clock.sleep(0.5)
    assert isinstance(aiven.service(PROJECT, "os"), Success)


def test_rate_limited_server_is_never_hit_before_retry_after(fake: FakeAiven, clock: FakeClock) -> None:
    aiven = make_adapter(fake, clock, retry=RetryPolicy(attempts=5, call_budget=30.0))
    fake.faults.rate_limit(3, window_s=2.0)
    for name in ("a_1", "a_2", "a_3", "a_4"):
        assert isinstance(aiven.ensure_user(PROJECT, "kafka", name), Success)
    log = fake.request_log
    for index, entry in enumerate(log):
        if entry.status == 429:
            nxt = log[index + 1]
            assert nxt.at - entry.at >= 1.0


class _ThrottledRightAfterTheCheck(RequestBudget):
    """Lets the first request through its budget check, then another worker's 429 lands (a
    pause begins) before that request is sent: the race the request hook closes."""

    def __init__(self, clock: FakeClock, pause: float) -> None:
        super().__init__(rate=None, burst=1)
        self._clock = clock
        self._pause = pause
        self.raced = False

    def try_acquire(self, now: float) -> float:
        wait = super().try_acquire(now)
        if not self.raced:
            self.raced = True
            self.pause_until(self._clock.monotonic() + self._pause)
        return wait


def test_a_pause_that_begins_after_the_budget_check_still_holds_the_request(
    fake: FakeAiven, clock: FakeClock
) -> None:
    budget = _ThrottledRightAfterTheCheck(clock, pause=2.0)
    aiven = make_adapter(fake, clock, budget=budget)
    started = clock.monotonic()
    assert isinstance(aiven.project_ca(PROJECT), Success)
    assert budget.raced
    assert [entry.at - started >= 2.0 for entry in fake.request_log] == [True]
    assert aiven.request_counts() == {"ProjectKmsGetCA": 1}


def test_a_429_pauses_every_worker_before_it_is_even_recorded(clock: FakeClock) -> None:
    """The response hook pauses the shared budget as soon as the headers arrive, before the
    answer is observed, logged or classified (other workers check the pause meanwhile)."""
    budget = RequestBudget.unlimited()
    pause_when_observed: dict[str, float] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if not pause_when_observed:
            return httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down"})
        return httpx.Response(200, json={"certificate": "-----BEGIN CERTIFICATE-----"})

    def observer(operation: str, outcome: str, duration: float) -> None:
        pause_when_observed.setdefault(outcome, budget.paused_until() - clock.monotonic())

    aiven = make_adapter(
        None, clock, transport=httpx.MockTransport(handler), budget=budget, observer=observer
    )
    aiven.project_ca(PROJECT)
    assert pause_when_observed["429"] == pytest.approx(3.0)
    aiven.close()


# --- delete and access control -------------------------------------------------------------------


def test_delete_user_and_missing_things_count_as_success(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.add_user(PROJECT, "kafka", "bye")
    assert aiven.delete_user(PROJECT, "kafka", "bye") == Success(None)
    assert "bye" not in fake.users(PROJECT, "kafka")
    assert aiven.delete_user(PROJECT, "kafka", "bye") == Success(None)
    assert aiven.delete_user(PROJECT, "no-such-service", "bye") == Success(None)
    assert aiven.delete_user("no-such-project", "kafka", "bye") == Success(None)


def test_delete_refuses_built_in_admins(aiven: AivenHttp, fake: FakeAiven) -> None:
    result = aiven.delete_user(PROJECT, "kafka", "avnadmin")
    assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)
    assert not fake.request_log


def _service_with_primary_user(request: httpx.Request) -> httpx.Response:
    """A Kafka service whose built-in user has a name the operator does not know."""
    if request.method == "GET" and request.url.path == f"/v1/project/{PROJECT}/service/kafka":
        users = [
            {"username": "ops-admin", "type": "primary", "password": "admin-pw-123"},
            {"username": "team_app_1a2b3c4d_xyz", "type": "regular", "password": "user-pw-456"},
        ]
        service = {"service_name": "kafka", "service_type": "kafka", "state": "RUNNING", "users": users}
        return httpx.Response(200, json={"service": service})
    if request.method == "DELETE":
        return httpx.Response(200, json={"message": "deleted"})
    return httpx.Response(404, json={"message": "not found"})


def test_delete_refuses_a_primary_user_known_from_cached_facts(clock: FakeClock) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return _service_with_primary_user(request)

    adapter = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    facts = adapter.service(PROJECT, "kafka").unwrap()
    assert facts.builtin_usernames == ("ops-admin",)
    refused = adapter.delete_user(PROJECT, "kafka", "ops-admin")
    assert isinstance(refused, Failure) and isinstance(refused.failure(), Rejected)
    assert sent == ["GET"]
    assert adapter.delete_user(PROJECT, "kafka", "team_app_1a2b3c4d_xyz") == Success(None)
    assert sent == ["GET", "DELETE"]
    adapter.close()


def test_cached_service_never_sends_a_request(aiven: AivenHttp, fake: FakeAiven) -> None:
    assert aiven.cached_service(PROJECT, "vk") is None
    assert not fake.request_log
    loaded = aiven.service(PROJECT, "vk").unwrap()
    assert aiven.cached_service(PROJECT, "vk") == loaded
    assert loaded.endpoint("valkey_replica") is not None
    assert len(fake.request_log) == 1
    aiven.invalidate(PROJECT, "vk")
    assert aiven.cached_service(PROJECT, "vk") is None


def test_delete_without_cached_facts_costs_no_extra_request(clock: FakeClock) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return _service_with_primary_user(request)

    adapter = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    assert adapter.delete_user(PROJECT, "kafka", "team_app_1a2b3c4d_xyz") == Success(None)
    assert sent == ["DELETE"]
    adapter.close()


def test_ensure_refuses_a_primary_user(clock: FakeClock) -> None:
    adapter = make_adapter(None, clock, transport=httpx.MockTransport(_service_with_primary_user))
    result = adapter.ensure_user(PROJECT, "kafka", "ops-admin")
    assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)
    adapter.close()


def test_every_builtin_name_is_refused_without_a_request(aiven: AivenHttp, fake: FakeAiven) -> None:
    for name in ("avnadmin", "default", "root", "os-sec-admin", "metrics_user_datadog"):
        result = aiven.delete_user(PROJECT, "kafka", name)
        assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)
    assert not fake.request_log


def test_delete_5xx_is_unavailable(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.faults.error(502, method="DELETE")
    fake.add_user(PROJECT, "kafka", "stuck")
    result = aiven.delete_user(PROJECT, "kafka", "stuck")
    assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)


READ = ValkeyAccessControl(
    categories=("-@all", "+@connection", "+@read"), commands=("+info",), keys=("*",), channels=("*",)
)
WRITE = ValkeyAccessControl(
    categories=("-@all", "+@connection", "+@write"), commands=("+info",), keys=("*",), channels=("*",)
)


def test_valkey_user_is_created_with_access_control(aiven: AivenHttp, fake: FakeAiven) -> None:
    user = aiven.ensure_user(PROJECT, "vk", "app-r-abc", READ).unwrap()
    assert user.access_control == READ
    assert fake.users(PROJECT, "vk")["app-r-abc"]["access_control"]["valkey_acl_categories"] == list(
        READ.categories
    )


def test_valkey_user_with_other_access_control_is_corrected(aiven: AivenHttp, fake: FakeAiven) -> None:
    aiven.ensure_user(PROJECT, "vk", "app-rw-abc", READ).unwrap()
    user = aiven.ensure_user(PROJECT, "vk", "app-rw-abc", WRITE).unwrap()
    assert user.access_control == WRITE
    assert fake.users(PROJECT, "vk")["app-rw-abc"]["access_control"]["valkey_acl_categories"] == list(
        WRITE.categories
    )
    assert len(fake.requests_matching("PUT", r"/user/app-rw-abc$")) == 1
    # already right: no further change
    aiven.ensure_user(PROJECT, "vk", "app-rw-abc", WRITE).unwrap()
    assert len(fake.requests_matching("PUT")) == 1


def test_set_access_control_directly(aiven: AivenHttp, fake: FakeAiven) -> None:
    aiven.ensure_user(PROJECT, "vk", "app-x", READ).unwrap()
    assert aiven.set_access_control(PROJECT, "vk", "app-x", WRITE) == Success(None)
    assert aiven.get_user(PROJECT, "vk", "app-x").unwrap().access_control == WRITE
    missing = aiven.set_access_control(PROJECT, "vk", "ghost", WRITE)
    assert isinstance(missing, Failure) and isinstance(missing.failure(), NotFound)


# --- caches --------------------------------------------------------------------------------------


def test_project_ca_and_service_are_cached_until_ttl(fake: FakeAiven, clock: FakeClock) -> None:
    aiven = make_adapter(fake, clock, cache_ttl=60.0)
    ca = aiven.project_ca(PROJECT).unwrap()
    assert ca == fake.project_ca_pem(PROJECT)
    assert aiven.project_ca(PROJECT).unwrap() == ca
    aiven.service(PROJECT, "kafka").unwrap()
    aiven.service(PROJECT, "kafka").unwrap()
    assert aiven.request_counts() == {"ProjectKmsGetCA": 1, "ServiceGet": 1}
    clock.sleep(61)
    aiven.project_ca(PROJECT).unwrap()
    aiven.service(PROJECT, "kafka").unwrap()
    assert aiven.request_counts() == {"ProjectKmsGetCA": 2, "ServiceGet": 2}


def test_errors_are_not_cached_and_user_errors_invalidate_facts(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.faults.error(500, method="GET", path=r"/service/kafka$", times=3)
    assert isinstance(aiven.service(PROJECT, "kafka"), Failure)
    assert isinstance(aiven.service(PROJECT, "kafka"), Success)
    gets_before = aiven.request_counts()["ServiceGet"]
    fake.faults.error(503, path=r"/user/", times=3)
    assert isinstance(aiven.get_user(PROJECT, "kafka", "whoever"), Failure)
    aiven.service(PROJECT, "kafka").unwrap()
    assert aiven.request_counts()["ServiceGet"] == gets_before + 1


def test_a_missing_user_keeps_facts_but_a_missing_service_drops_them(
    aiven: AivenHttp, fake: FakeAiven
) -> None:
    aiven.service(PROJECT, "kafka").unwrap()
    missing_user = aiven.get_user(PROJECT, "kafka", "nobody")
    assert isinstance(missing_user, Failure) and isinstance(missing_user.failure(), NotFound)
    aiven.service(PROJECT, "kafka").unwrap()
    assert aiven.request_counts()["ServiceGet"] == 1
    fake.remove_service(PROJECT, "kafka")
    gone = aiven.get_user(PROJECT, "kafka", "nobody")
    assert isinstance(gone, Failure) and isinstance(gone.failure(), NotFound)
    assert isinstance(aiven.service(PROJECT, "kafka"), Failure)
    assert aiven.request_counts()["ServiceGet"] == 2


def test_builtin_users_are_never_ensured(aiven: AivenHttp, fake: FakeAiven) -> None:
    for name in ("avnadmin", "default"):
        result = aiven.ensure_user(PROJECT, "kafka", name)
        assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)
    assert not fake.request_log


def test_concurrent_misses_do_one_request(clock: FakeClock) -> None:
    fake = make_fake(clock)
    release = threading.Event()
    arrived = threading.Semaphore(0)

    def handler(request: httpx.Request) -> httpx.Response:
        arrived.release()
        release.wait(5)
        return fake.handle(request)

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(aiven.service(PROJECT, "kafka"))) for _ in range(10)
    ]
    for t in threads:
        t.start()
    assert arrived.acquire(timeout=5)
    release.set()
    for t in threads:
        t.join(5)
    assert len(results) == 10 and all(isinstance(r, Success) for r in results)
    assert aiven.request_counts() == {"ServiceGet": 1}


# --- observability and secrets -------------------------------------------------------------------


def test_observer_and_request_counts(fake: FakeAiven, clock: FakeClock) -> None:
    seen: list[tuple[str, str, float]] = []
    aiven = make_adapter(fake, clock, observer=lambda op, outcome, d: seen.append((op, outcome, d)))
    fake.faults.error(503, path=r"/kms/ca", times=1)
    aiven.project_ca(PROJECT).unwrap()
    assert [(op, outcome) for op, outcome, _ in seen] == [
        ("ProjectKmsGetCA", "503"),
        ("ProjectKmsGetCA", "200"),
    ]
    assert all(d >= 0 for _, _, d in seen)
    assert aiven.request_counts() == {"ProjectKmsGetCA": 2}


def test_a_raising_observer_does_not_break_calls(fake: FakeAiven, clock: FakeClock) -> None:
    def boom(op: str, outcome: str, duration: float) -> None:
        raise RuntimeError("metrics down")

    aiven = make_adapter(fake, clock, observer=boom)
    assert isinstance(aiven.project_ca(PROJECT), Success)


CANARY = "canary-9f8e7d6c5b4a39281706"


@pytest.mark.parametrize("status", [500, 400, 404, 409, 429])
def test_canary_in_error_bodies_never_reaches_logs_or_errors(
    fake: FakeAiven, clock: FakeClock, status: int
) -> None:
    aiven = make_adapter(fake, clock, retry=RetryPolicy(attempts=2, call_budget=3.0))
    fake.faults.echo_canary(CANARY, status=status)
    with structlog.testing.capture_logs() as logs:
        results = [
            aiven.ensure_user(PROJECT, "kafka", "u_1"),
            aiven.project_ca(PROJECT),
            aiven.delete_user(PROJECT, "kafka", "u_1"),
            aiven.put_user_rules(PROJECT, "os", "u_1", (OpenSearchRule("*", "read"),)),
        ]
    # (a 404 on delete counts as success; everything else fails)
    assert sum(isinstance(r, Failure) for r in results) >= 3
    assert logs, "expected request log lines"
    text = repr(logs) + repr(results) + "".join(str(r.failure()) for r in results if isinstance(r, Failure))
    assert CANARY not in text
    assert TOKEN not in text


def test_admin_credentials_seen_in_service_reads_are_registered(fake: FakeAiven, clock: FakeClock) -> None:
    registry = SecretRegistry()
    aiven = make_adapter(fake, clock, secrets=registry)
    aiven.service(PROJECT, "os").unwrap()
    admin_password = fake.users(PROJECT, "os")["avnadmin"]["password"]
    assert admin_password in registry


def test_known_credentials_echoed_in_4xx_messages_are_masked(clock: FakeClock) -> None:
    fake = make_fake(clock)
    registry = SecretRegistry()
    aiven = make_adapter(fake, clock, secrets=registry)
    user = aiven.ensure_user(PROJECT, "kafka", "leaky").unwrap()
    assert user.password in registry

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"Invalid input: user leaky has {user.password}"})

    echo = make_adapter(None, clock, transport=httpx.MockTransport(handler), secrets=registry)
    with structlog.testing.capture_logs() as logs:
        result = echo.project_ca(PROJECT)
    assert isinstance(result, Failure)
    assert user.password not in str(result.failure()) and user.password not in repr(logs)
    assert "Invalid input" in str(result.failure())


def test_logs_name_operation_path_template_status_and_attempt(aiven: AivenHttp, fake: FakeAiven) -> None:
    fake.faults.error(500, path=r"/kms/ca", times=1)
    with structlog.testing.capture_logs() as logs:
        aiven.project_ca(PROJECT).unwrap()
    requests = [e for e in logs if e["event"] == "aiven_request"]
    assert [(e["status"], e["attempt"]) for e in requests] == [(500, 1), (200, 2)]
    assert all(
        e["operation"] == "ProjectKmsGetCA" and e["path"] == "/v1/project/{project}/kms/ca" for e in requests
    )
    assert all("duration" in e and "body" not in e for e in requests)


class _RemainderBudget(RequestBudget):
    """A bucket whose refill leaves a float remainder far below the clock's resolution."""

    def __init__(self, start: float) -> None:
        super().__init__(rate=None, burst=1)
        self._start = start

    def try_acquire(self, now: float) -> float:
        return 1e-20 if now <= self._start else 0.0


def test_a_sub_resolution_budget_wait_still_lets_time_move() -> None:
    """A budget wait of a float remainder must not spin with a clock at 1e6 s.

    1e6 + 1e-20 == 1e6, so a sleep of exactly the computed wait never moves a fake clock;
    the adapter sleeps at least a millisecond.
    """
    now = [1_000_000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        assert len(sleeps) < 100, "budget wait loop is spinning"
        now[0] += seconds

    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"certificate": "PEM"}))
    aiven = AivenHttp(
        "http://aiven.test",
        "token",
        transport=transport,
        budget=_RemainderBudget(now[0]),
        clock=lambda: now[0],
        sleep=sleep,
        secrets=SecretRegistry(),
    )
    assert aiven.project_ca("p") == Success("PEM")
    assert sleeps == [0.001]


def test_service_reads_keep_user_names_but_never_decode_their_keys_and_certificates(
    clock: FakeClock,
) -> None:
    """A service's users come with their certificates and keys (about 3 KB each; tens of MB at
    10k users); the facts need the names. Those members are dropped while the body is decoded,
    for a service read and a listing alike, and a user's own credentials still come whole."""
    fake = make_fake(clock)
    for i in range(3):
        fake.add_user(PROJECT, "kafka", f"app_{i}")
    decoded: list[object] = []
    texts: list[bytes] = []
    real_loads = __import__("json").loads

    def spying_loads(*args: Any, **kwargs: Any) -> Any:
        result = real_loads(*args, **kwargs)
        decoded.append(result)
        if isinstance(result, dict) and ({"service", "services"} & set(result)):
            texts.append(bytes(args[0]))
        return result

    adapter = make_adapter(fake, clock)
    try:
        import aivenator.adapters.aiven_transport as transport_module

        transport_module.json.loads = spying_loads  # type: ignore[attr-defined]
        try:
            facts = adapter.service(PROJECT, "kafka")
            listed = adapter.list_services(PROJECT)
        finally:
            transport_module.json.loads = real_loads  # type: ignore[attr-defined]
        assert isinstance(facts, Success) and {"app_0", "app_1", "app_2"} <= set(facts.unwrap().usernames)
        assert isinstance(listed, Success)
        kafka = next(f for f in listed.unwrap() if f.name == "kafka")
        assert {"app_0", "app_1", "app_2"} <= set(kafka.usernames)
        bodies = [d for d in decoded if isinstance(d, dict) and ({"service", "services"} & set(d))]
        assert len(bodies) == 2  # the service read and the listing
        services = [bodies[0]["service"], *bodies[1]["services"]]
        users = [u for svc in services for u in svc.get("users", [])]
        assert "app_0" in {u["username"] for u in users}
        assert not [u for u in users if {"access_key", "access_cert"} & set(u)]
        # Not even the raw text handed to the decoder holds them: they were cut out as the body
        # streamed in (adapters/json_elide.py), so no whole body with every key is ever held.
        assert len(texts) == 2
        for text in texts:
            assert re.search(rb'"access_(key|cert)"\s*:\s*"', text) is None
            assert re.search(rb'"access_key"\s*:\s*null', text) is not None  # there, and cut out
        user = adapter.ensure_user(PROJECT, "kafka", "app_0", None)
        assert isinstance(user, Success) and user.unwrap().access_key and user.unwrap().access_cert
    finally:
        adapter.close()
