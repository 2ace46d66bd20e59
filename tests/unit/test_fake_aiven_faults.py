"""Fault injection in the simulator: every mode, matching, count limits, determinism."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aivenator.adapters.fakes.aiven import FakeAiven, parse_rate_limit
from aivenator.adapters.fakes.aiven.core import Drop

from tests.support.clock import FakeClock

TOKEN = "test-token"
P = "dev-nais-dev"
USERS = f"/v1/project/{P}/service/opensearch-team-a-logs/user"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeAiven:
    return FakeAiven.with_default_seed(token=TOKEN, monotonic=clock.monotonic, sleep=clock.sleep)


def client_for(fake: FakeAiven) -> httpx.Client:
    return httpx.Client(
        transport=fake.mock_transport(),
        base_url="https://api.aiven.io",
        headers={"Authorization": f"aivenv1 {TOKEN}"},
    )


@pytest.fixture
def api(fake: FakeAiven) -> httpx.Client:
    return client_for(fake)


def create(api: httpx.Client, name: str) -> httpx.Response:
    return api.post(USERS, json={"username": name})


def test_latency_is_added_per_matching_request_and_sums_up(
    api: httpx.Client, fake: FakeAiven, clock: FakeClock
) -> None:
    fake.faults.latency(50)
    fake.faults.latency(200, method="POST")
    api.get(f"/v1/project/{P}/kms/ca")
    create(api, "slow")
    assert clock.sleeps == [0.05, 0.25]


def test_errors_are_count_limited_and_do_not_touch_state(api: httpx.Client, fake: FakeAiven) -> None:
    rule = fake.faults.error(503, method="POST", path=r"/user$", times=2)
    statuses = [create(api, "u1").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert rule.hits == 2 and rule.exhausted
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200
    assert "u1" in fake.users(P, "opensearch-team-a-logs")


def test_error_bodies_keep_aivens_shape(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.error(502, times=1)
    response = api.get(f"/v1/project/{P}/kms/ca")
    assert response.status_code == 502
    assert response.json() == {
        "message": "Bad gateway",
        "errors": [{"message": "Bad gateway", "status": 502}],
    }


def test_faults_match_on_method_and_decoded_path(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.error(500, method="GET", path=r"/user/[^/]+$")
    assert create(api, "u2").status_code == 200
    assert api.get(f"{USERS}/u2").status_code == 500
    assert api.delete(f"{USERS}/u2").status_code == 200


def test_unauthenticated_requests_are_not_faulted(fake: FakeAiven) -> None:
    rule = fake.faults.error(500)
    with httpx.Client(transport=fake.mock_transport(), base_url="https://x") as anonymous:
        assert anonymous.get(f"/v1/project/{P}/kms/ca").status_code == 401
    assert rule.hits == 0


def test_throttle_answers_429_with_retry_after_and_aivens_message(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.throttle(retry_after=3, times=1)
    response = create(api, "t1")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.json()["message"] == (
        "The user has sent too many requests in a given amount of time: Rate limit 120 exceeded - try again in 3s"
    )
    assert "t1" not in fake.users(P, "opensearch-team-a-logs")
    assert create(api, "t1").status_code == 200


def test_rate_limit_budget_per_window(api: httpx.Client, fake: FakeAiven, clock: FakeClock) -> None:
    fake.faults.rate_limit(3, window_s=10)
    ca = f"/v1/project/{P}/kms/ca"
    assert [api.get(ca).status_code for _ in range(3)] == [200, 200, 200]
    clock.advance(4)
    refused = api.get(ca)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "6"
    assert "Rate limit 3 exceeded - try again in 6s" in refused.json()["message"]
    clock.advance(6)
    assert api.get(ca).status_code == 200


def test_rate_limit_can_be_scoped_to_a_path(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.rate_limit(1, window_s=60, path=r"/user")
    assert create(api, "a").status_code == 200
    assert create(api, "b").status_code == 429
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200


def test_share_of_requests_is_deterministic_for_a_fault_seed() -> None:
    def run(seed: int) -> list[int]:
        fake = FakeAiven.with_default_seed(token=TOKEN, fault_seed=seed)
        fake.faults.error(500, rate=0.3)
        with client_for(fake) as api:
            return [api.get(f"/v1/project/{P}/kms/ca").status_code for _ in range(200)]

    first, again, other = run(7), run(7), run(8)
    assert first == again
    assert first != other
    assert 30 <= first.count(500) <= 90


def test_timeout_raises_read_timeout_and_logs_dropped(
    api: httpx.Client, fake: FakeAiven, clock: FakeClock
) -> None:
    fake.faults.timeout(hang_s=30, method="POST", times=1)
    with pytest.raises(httpx.ReadTimeout):
        create(api, "to")
    assert clock.sleeps == []  # MockTransport never hangs
    assert fake.request_log[-1].status == "dropped"
    assert "to" not in fake.users(P, "opensearch-team-a-logs")


def test_reset_raises_remote_protocol_error(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.reset(times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(f"/v1/project/{P}/kms/ca")
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200


def test_commit_then_fail_applies_the_change_but_answers_500(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.commit_then_fail(method="POST", path=r"/user$", times=1)
    response = create(api, "ghost-success")
    assert response.status_code == 500
    assert "ghost-success" in fake.users(P, "opensearch-team-a-logs")
    retry = create(api, "ghost-success")
    assert retry.status_code == 409 and "already exists" in retry.json()["message"]


def test_commit_then_fail_can_drop_the_connection(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.commit_then_fail(drop=True, method="DELETE", times=1)
    create(api, "dropme")
    with pytest.raises(httpx.RemoteProtocolError):
        api.delete(f"{USERS}/dropme")
    assert "dropme" not in fake.users(P, "opensearch-team-a-logs")
    assert fake.request_log[-1].status == "dropped"


def test_commit_then_fail_is_only_consumed_by_successes(api: httpx.Client, fake: FakeAiven) -> None:
    rule = fake.faults.commit_then_fail(method="POST", times=1)
    assert api.post(USERS, json={"username": "bad name"}).status_code == 400
    assert rule.hits == 0
    assert create(api, "good").status_code == 500
    assert rule.hits == 1


def test_user_lag_hides_a_new_user_for_n_reads(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.user_lag(2, times=1)
    create(api, "laggy")
    statuses = [api.get(f"{USERS}/laggy").status_code for _ in range(3)]
    assert statuses == [404, 404, 200]
    create(api, "prompt")
    assert api.get(f"{USERS}/prompt").status_code == 200


def test_echo_canary_puts_the_canary_in_the_error_body(api: httpx.Client, fake: FakeAiven) -> None:
    canary = "CANARY-5f2e9c"
    fake.faults.echo_canary(canary, status=500, method="GET", times=1)
    response = api.get(f"{USERS}/avnadmin")
    assert response.status_code == 500
    assert canary in response.text
    assert canary not in api.get(f"{USERS}/avnadmin").text


def test_clear_removes_every_rule(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.error(500)
    fake.faults.throttle()
    fake.faults.clear()
    assert fake.faults.rules == []
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200


def test_first_failure_rule_wins_and_later_ones_are_not_consumed(api: httpx.Client, fake: FakeAiven) -> None:
    first = fake.faults.error(500, times=1)
    second = fake.faults.throttle(times=1)
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 500
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 429
    assert (first.hits, second.hits) == (1, 1)


def test_retry_after_can_be_checked_from_the_request_log(
    api: httpx.Client, fake: FakeAiven, clock: FakeClock
) -> None:
    fake.faults.throttle(retry_after=2, times=1)
    first = create(api, "honour")
    clock.advance(float(first.headers["retry-after"]))
    assert create(api, "honour").status_code == 200
    attempts = fake.requests_matching("POST", r"/user$")
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 2


@pytest.mark.parametrize(
    ("bad", "kwargs"),
    [("rate", {"rate": 1.5}), ("times", {"times": -1})],
)
def test_invalid_rules_are_refused(fake: FakeAiven, bad: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        fake.faults.error(500, **kwargs)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("120/60s", (120, 60.0)),
        ("5/500ms", (5, 0.5)),
        ("10/2m", (10, 120.0)),
        ("7", (7, 60.0)),
        ("3/10", (3, 10.0)),
    ],
)
def test_parse_rate_limit(spec: str, expected: tuple[int, float]) -> None:
    assert parse_rate_limit(spec) == expected


@pytest.mark.parametrize("spec", ["", "x/60s", "5/0s", "5/60h", "-1/60s"])
def test_parse_rate_limit_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_rate_limit(spec)


def test_password_lag_shows_an_empty_password_after_a_reset(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.password_lag(1)
    create(api, "pw")
    assert api.put(f"{USERS}/pw", json={"operation": "reset-credentials"}).status_code == 200
    assert [api.get(f"{USERS}/pw").json()["user"]["password"] == "" for _ in range(2)] == [True, False]
    assert api.put(f"{USERS}/pw/credentials/reset").status_code == 200
    assert api.get(f"{USERS}/pw").json()["user"]["password"] == ""
    assert fake.users(P, "opensearch-team-a-logs")["pw"]["password"] != ""


def test_request_log_is_bounded() -> None:
    fake = FakeAiven.with_default_seed(token=TOKEN, log_limit=10)
    with client_for(fake) as api:
        for _ in range(25):
            api.get(f"/v1/project/{P}/kms/ca")
    assert 5 <= len(fake.request_log) <= 10


def test_hidden_server_rate_limit_is_a_token_bucket_answering_429_with_retry_after() -> None:
    now = [0.0]
    fake = FakeAiven(monotonic=lambda: now[0], server_rate_limit=2.0, server_burst=2)
    fake.add_project("p")
    headers = {"authorization": f"aivenv1 {fake.token}"}
    answers = [fake.process("GET", "/v1/project/p/kms/ca", headers, b"") for _ in range(3)]
    statuses = [a.status for a in answers if not isinstance(a, Drop)]
    assert statuses == [200, 200, 429]
    throttled = answers[2]
    assert not isinstance(throttled, Drop)
    assert ("retry-after", "1") in throttled.headers
    assert "Rate limit" in json.loads(throttled.content())["message"]
    now[0] = 0.5  # one token refilled at 2/s
    assert [_status(fake, "/v1/project/p/kms/ca", headers) for _ in range(2)] == [200, 429]
    fake.set_server_rate_limit(None)
    assert _status(fake, "/v1/project/p/kms/ca", headers) == 200


def _status(fake: FakeAiven, path: str, headers: dict[str, str]) -> int:
    """The status of one GET the fake answers (a dropped connection fails the test)."""
    answer = fake.process("GET", path, headers, b"")
    assert not isinstance(answer, Drop), answer
    return answer.status


def test_server_rate_limit_is_off_by_default() -> None:
    fake = FakeAiven()
    fake.add_project("p")
    headers = {"authorization": f"aivenv1 {fake.token}"}
    assert all(_status(fake, "/v1/project/p/kms/ca", headers) == 200 for _ in range(200))


def test_response_time_counts_from_arrival_and_includes_processing(
    api: httpx.Client, fake: FakeAiven, clock: FakeClock
) -> None:
    """A server's response time: the answer leaves `response_time` after the request arrived,
    however long processing took (unlike the latency fault, which sleeps before processing)."""
    route = fake._route
    took = iter([0.02, 0.2])  # processing "takes" 20 ms, then 200 ms

    def timed_route(*args: Any) -> Any:
        clock.advance(next(took))
        return route(*args)

    fake._route = timed_route  # type: ignore[method-assign,assignment]  # processing that takes time
    fake.response_time = 0.05
    assert create(api, "quick").status_code == 200
    assert create(api, "slow").status_code == 200
    assert clock.sleeps == [pytest.approx(0.03)]  # the slow one is answered as soon as done
