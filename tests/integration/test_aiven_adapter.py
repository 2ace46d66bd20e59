"""The Aiven adapter over real HTTP against the simulator's loopback server, and under
concurrency (many worker threads; two adapter instances standing in for two processes).

Real clocks here: Retry-After is checked against the simulator's own request timestamps.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import structlog
from aivenator.adapters.aiven_budget import RequestBudget
from aivenator.adapters.aiven_http import AivenHttp, RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.adapters.redaction import SecretRegistry
from aivenator.domain.facts import OpenSearchRule, Rejected, Throttled, Unavailable
from returns.result import Failure, Success

TOKEN = "integration-token-51ab7e"
PROJECT = "proj"
RULES = (OpenSearchRule("_*", "readwrite"), OpenSearchRule("*", "readwrite"))


@pytest.fixture
def fake() -> FakeAiven:
    fake = FakeAiven(token=TOKEN)
    fake.add_service(PROJECT, "kafka", "kafka")
    fake.add_service(PROJECT, "os", "opensearch")
    fake.add_service(PROJECT, "vk", "valkey")
    return fake


@pytest.fixture
def server(fake: FakeAiven) -> Iterator[str]:
    srv = fake.serve()
    try:
        yield str(srv.base_url)
    finally:
        srv.stop()


FAST_RETRY = RetryPolicy(backoff_base=0.02, backoff_max=0.1, lag_delay=0.05, acl_settle=0.02)


def adapter(
    base_url: str,
    *,
    retry: RetryPolicy = FAST_RETRY,
    budget: RequestBudget | None = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
) -> AivenHttp:
    return AivenHttp(
        base_url,
        TOKEN,
        retry=retry,
        budget=budget,
        transport=transport,
        timeout=timeout,
        secrets=SecretRegistry(),
    )


def test_kafka_user_cold_and_warm_request_counts_over_http(server: str, fake: FakeAiven) -> None:
    with adapter(server) as aiven:
        ca = aiven.project_ca(PROJECT).unwrap()
        user = aiven.ensure_user(PROJECT, "kafka", "team_app_cold").unwrap()
        cold = aiven.request_counts()
        assert "BEGIN CERTIFICATE" in ca and user.access_cert and user.access_key and user.password
        assert cold == {"ProjectKmsGetCA": 1, "ServiceGet": 1, "ServiceUserCreate": 1}
        aiven.project_ca(PROJECT).unwrap()
        again = aiven.ensure_user(PROJECT, "kafka", "team_app_cold").unwrap()
        assert again.password == user.password
        warm = {k: v - cold.get(k, 0) for k, v in aiven.request_counts().items() if v != cold.get(k, 0)}
        assert warm == {"ServiceUserGet": 1}
    assert len(fake.request_log) == 4


def test_throttling_is_waited_out_exactly_over_http(server: str, fake: FakeAiven) -> None:
    fake.faults.throttle(retry_after=1, path=r"/user", times=2)
    with adapter(server) as aiven:
        started = time.monotonic()
        assert isinstance(aiven.ensure_user(PROJECT, "kafka", "throttled_app"), Success)
        assert time.monotonic() - started >= 2.0
    log = [r for r in fake.request_log if "/user" in r.path]
    assert [r.status for r in log][:2] == [429, 429]
    for earlier, later in itertools.pairwise(log[:3]):
        assert later.at - earlier.at >= 1.0


class RecordingTransport(httpx.HTTPTransport):
    """Real HTTP, recording when each request left the client and when each 429 came back."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []
        self.throttled: list[tuple[float, float]] = []  # (received at, Retry-After)
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(time.monotonic())
        response = super().handle_request(request)
        if response.status_code == 429:
            with self._lock:
                self.throttled.append((time.monotonic(), float(response.headers["retry-after"])))
        return response


def test_no_request_leaves_inside_a_retry_after_window(server: str, fake: FakeAiven) -> None:
    """Six workers share one adapter against a server that allows 4 requests a second.

    Once a 429 has come back, no worker starts a request until its Retry-After has elapsed.
    Requests that had already passed the budget check when the 429 arrived are in flight (no
    client can recall them); on a loaded 2-core machine that race is bounded here by
    IN_FLIGHT_RACE. Any send later inside the window is a violation.
    """
    IN_FLIGHT_RACE = 0.1
    fake.faults.rate_limit(4, window_s=1.0, retry_after=1)
    transport = RecordingTransport()
    retry = RetryPolicy(attempts=6, call_budget=20.0, acl_settle=0.0)
    with adapter(server, retry=retry, transport=transport) as aiven:
        results = []
        threads = [
            threading.Thread(
                target=lambda n=n: results.append(aiven.ensure_user(PROJECT, "kafka", f"rl_app_{n}"))
            )
            for n in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(results) == 6 and all(isinstance(r, Success) for r in results)
    assert transport.throttled, "the rate limit never fired"
    for received, wait in transport.throttled:
        inside = [at for at in transport.sent if received + IN_FLIGHT_RACE < at < received + wait]
        assert not inside, f"{len(inside)} request(s) sent within Retry-After"


def test_commit_then_dropped_connection_leaves_exactly_one_user(server: str, fake: FakeAiven) -> None:
    fake.faults.commit_then_fail(method="POST", path=r"/user$", times=1, drop=True)
    with adapter(server) as aiven:
        user = aiven.ensure_user(PROJECT, "kafka", "dropped_app").unwrap()
    assert list(fake.users(PROJECT, "kafka")).count("dropped_app") == 1
    assert user.password == fake.users(PROJECT, "kafka")["dropped_app"]["password"]
    assert len([r for r in fake.request_log if r.method == "POST"]) == 1


def test_hanging_server_times_out_into_unavailable_then_recovers(server: str, fake: FakeAiven) -> None:
    fake.faults.timeout(hang_s=3.0, path=r"/kms/ca", times=1)
    with adapter(server, timeout=0.3) as aiven:
        started = time.monotonic()
        assert isinstance(aiven.project_ca(PROJECT), Success)  # second attempt succeeds
        assert time.monotonic() - started < 2.5
    fake.faults.timeout(hang_s=3.0, path=r"/kms/ca")
    with adapter(server, timeout=0.2, retry=RetryPolicy(attempts=2, backoff_base=0.01)) as aiven:
        result = aiven.project_ca(PROJECT)
        assert isinstance(result, Failure) and isinstance(result.failure(), Unavailable)


def test_bad_name_is_rejected_and_budget_exhaustion_is_throttled(server: str, fake: FakeAiven) -> None:
    with adapter(server) as aiven:
        bad = aiven.ensure_user(PROJECT, "kafka", "x" * 65)
        assert isinstance(bad, Failure) and isinstance(bad.failure(), Rejected)
    budget = RequestBudget(rate=1.0, burst=1)
    with adapter(server, budget=budget, retry=RetryPolicy(call_budget=0.3)) as aiven:
        assert isinstance(aiven.project_ca(PROJECT), Success)
        spent = aiven.service(PROJECT, "kafka")
        assert isinstance(spent, Failure) and isinstance(spent.failure(), Throttled)


def test_canary_in_error_bodies_never_reaches_logs_or_errors_over_http(server: str, fake: FakeAiven) -> None:
    canary = "CANARY-over-http-0b1c2d3e4f"
    for status in (500, 400, 409):
        fake.faults.clear()
        fake.faults.echo_canary(canary, status=status)
        with adapter(server, retry=RetryPolicy(attempts=2, call_budget=2.0, backoff_base=0.01)) as aiven:
            with structlog.testing.capture_logs() as logs:
                results = [
                    aiven.ensure_user(PROJECT, "kafka", "canary_app"),
                    aiven.put_user_rules(PROJECT, "os", "canary-app", RULES),
                    aiven.delete_user(PROJECT, "kafka", "canary_app"),
                ]
            assert all(isinstance(r, Failure) for r in results)
            text = repr(logs) + "".join(repr(r.failure()) for r in results if isinstance(r, Failure))
            assert canary not in text and TOKEN not in text


def _hammer(aivens: list[AivenHttp], count: int) -> list[object]:
    results: list[object] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def work(n: int) -> None:
        aiven = aivens[n % len(aivens)]
        start.wait(10)
        result = aiven.put_user_rules(PROJECT, "os", f"ns{n:02d}-rw-app", RULES)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _acl_users(fake: FakeAiven) -> list[str]:
    return [entry["username"] for entry in fake.opensearch_acl(PROJECT, "os")["acls"]]


def test_fifty_concurrent_acl_updates_in_one_process_lose_nothing(server: str, fake: FakeAiven) -> None:
    with adapter(
        server, retry=RetryPolicy(call_budget=60.0, acl_settle=0.05, acl_attempts=20, backoff_base=0.02)
    ) as aiven:
        results = _hammer([aiven], 50)
    assert len(results) == 50 and all(isinstance(r, Success) for r in results), results
    users = _acl_users(fake)
    assert sorted(users) == sorted(f"ns{n:02d}-rw-app" for n in range(50))
    assert fake.opensearch_acl(PROJECT, "os")["enabled"] is True


def test_fifty_concurrent_acl_updates_from_two_processes_lose_nothing(server: str, fake: FakeAiven) -> None:
    retry = RetryPolicy(call_budget=90.0, acl_settle=0.05, acl_attempts=20, backoff_base=0.02)
    one, two = adapter(server, retry=retry), adapter(server, retry=retry)
    try:
        results = _hammer([one, two], 50)
    finally:
        one.close()
        two.close()
    assert len(results) == 50 and all(isinstance(r, Success) for r in results), results
    users = _acl_users(fake)
    assert sorted(users) == sorted(f"ns{n:02d}-rw-app" for n in range(50))
    # and then half of them leave again, concurrently, from both processes
    removed: list[object] = []
    one, two = adapter(server, retry=retry), adapter(server, retry=retry)
    threads = [
        threading.Thread(
            target=lambda n=n: removed.append(
                (one if n % 2 else two).remove_user_rules(PROJECT, "os", f"ns{n:02d}-rw-app")
            )
        )
        for n in range(0, 50, 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    one.close()
    two.close()
    assert all(isinstance(r, Success) for r in removed)
    assert sorted(_acl_users(fake)) == sorted(f"ns{n:02d}-rw-app" for n in range(1, 50, 2))


def test_fifty_concurrent_acl_updates_over_mock_transport(fake: FakeAiven) -> None:
    retry = RetryPolicy(call_budget=60.0, acl_settle=0.01, acl_attempts=20, backoff_base=0.01)
    one = AivenHttp(
        "https://aiven.test", TOKEN, transport=fake.mock_transport(), retry=retry, secrets=SecretRegistry()
    )
    two = AivenHttp(
        "https://aiven.test", TOKEN, transport=fake.mock_transport(), retry=retry, secrets=SecretRegistry()
    )
    results = _hammer([one, two], 50)
    assert all(isinstance(r, Success) for r in results), results
    assert sorted(_acl_users(fake)) == sorted(f"ns{n:02d}-rw-app" for n in range(50))
