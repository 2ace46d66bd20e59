"""The simulator over real HTTP on loopback, and the `aivenator fake-aiven` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aivenator.adapters.fakes.aiven import FakeAiven, FakeAivenServer
from aivenator.adapters.fakes.aiven.core import Drop
from cryptography import x509

TOKEN = "http-token"
P = "dev-nais-dev"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> FakeAiven:
    return FakeAiven.with_default_seed(token=TOKEN)


@pytest.fixture
def server(fake: FakeAiven) -> Iterator[FakeAivenServer]:
    with fake.serve() as running:
        yield running


@pytest.fixture
def api(server: FakeAivenServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"aivenv1 {TOKEN}"}, timeout=5
    ) as client:
        yield client


def test_base_url_is_loopback_without_v1_or_trailing_slash(server: FakeAivenServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert not server.base_url.endswith("/") and "/v1" not in server.base_url
    assert server.port > 0


def test_auth_and_error_shape_over_http(server: FakeAivenServer) -> None:
    response = httpx.get(f"{server.base_url}/v1/project/{P}/kms/ca")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"] == [{"message": "Missing (expired) db token", "status": 401}]


def test_user_lifecycle_over_http(api: httpx.Client, fake: FakeAiven) -> None:
    created = api.post(
        f"/v1/project/{P}/service/kafka/user", params={"limit": 999}, json={"username": "http_user"}
    )
    assert created.status_code == 200
    user = created.json()["user"]
    cert = x509.load_pem_x509_certificate(user["access_cert"].encode())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(fake.project_ca_pem(P).encode()))
    got = api.get(
        f"/v1/project/{P}/service/kafka/user/http_user", params={"include_secrets": "true", "limit": 999}
    )
    assert got.json()["user"] == user
    assert api.put(f"/v1/project/{P}/service/kafka/user/http_user/credentials/reset").status_code == 200
    assert api.delete(f"/v1/project/{P}/service/kafka/user/http_user").json() == {"message": "deleted"}
    assert api.get(f"/v1/project/{P}/service/kafka/user/http_user").status_code == 404


def test_percent_encoded_segments_are_decoded_over_http(fake: FakeAiven, api: httpx.Client) -> None:
    fake.add_service(P, "weird name", "opensearch")
    response = api.get(f"/v1/project/{P}/service/weird%20name")
    assert response.status_code == 200
    assert response.json()["service"]["service_name"] == "weird name"


def test_throttle_sends_retry_after_header_over_http(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.throttle(retry_after=2, times=1)
    response = api.get(f"/v1/project/{P}/kms/ca")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert "try again in 2s" in response.json()["message"]


def test_reset_drops_the_connection_without_an_answer(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.reset(times=1)
    with pytest.raises(httpx.TransportError):
        api.get(f"/v1/project/{P}/kms/ca")
    assert fake.request_log[-1].status == "dropped"
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200


def test_timeout_hangs_until_the_client_gives_up_and_stop_does_not_wait(fake: FakeAiven) -> None:
    server = fake.serve()
    fake.faults.timeout(hang_s=30, times=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{server.base_url}/v1/project/{P}/kms/ca",
            headers={"Authorization": f"aivenv1 {TOKEN}"},
            timeout=0.5,
        )
    assert time.monotonic() - started < 5
    stop_started = time.monotonic()
    server.stop()
    assert time.monotonic() - stop_started < 5


def test_commit_then_fail_with_drop_over_http(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.commit_then_fail(drop=True, method="POST", times=1)
    with pytest.raises(httpx.TransportError):
        api.post(f"/v1/project/{P}/service/opensearch-team-a-logs/user", json={"username": "half"})
    assert "half" in fake.users(P, "opensearch-team-a-logs")


def test_latency_is_real_over_http(api: httpx.Client, fake: FakeAiven) -> None:
    fake.faults.latency(150, times=1)
    started = time.monotonic()
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_concurrent_clients_share_one_consistent_state(server: FakeAivenServer, fake: FakeAiven) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for n in range(5):
                status = client.post(
                    f"/v1/project/{P}/service/valkey-team-a-cache/user", json={"username": f"w{index}-{n}"}
                ).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 30
    assert len(fake.users(P, "valkey-team-a-cache")) == 31
    assert len(fake.requests_matching("POST", r"/user$")) == 30


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("projects:\n  cli-proj:\n    services:\n      cli-proj-kafka: {type: kafka}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aivenator.entrypoints.cli.main",
            "fake-aiven",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--token",
            "cli-t",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        url_line = proc.stdout.readline().strip()
        token_line = proc.stdout.readline().strip()
        assert url_line.startswith("AIVEN_WEB_URL=http://127.0.0.1:")
        assert token_line == "AIVEN_TOKEN=cli-t"
        base_url = url_line.split("=", 1)[1]
        response = httpx.get(
            f"{base_url}/v1/project/cli-proj/service/cli-proj-kafka",
            headers={"Authorization": "aivenv1 cli-t"},
        )
        assert response.status_code == 200
        assert response.json()["service"]["service_type"] == "kafka"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_chunked_request_bodies_are_read(api: httpx.Client, fake: FakeAiven) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"username": '
        yield b'"chunky"}'

    response = api.post(f"/v1/project/{P}/service/opensearch-team-a-logs/user", content=body())
    assert response.status_code == 200
    assert api.get(f"/v1/project/{P}/kms/ca").status_code == 200  # the connection stayed in sync
    assert "chunky" in fake.users(P, "opensearch-team-a-logs")


def test_response_time_counts_from_the_request_line_not_from_parsing() -> None:
    """The HTTP server stamps a request's arrival as its request line comes in: a request whose
    headers trickle in after the response time has passed is answered without further wait
    (the sleeps are recorded, not slept)."""
    sleeps: list[float] = []
    fake = FakeAiven.with_default_seed(token=TOKEN, sleep=sleeps.append, response_time=0.1)
    with fake.serve() as running, socket.create_connection((running.host, running.port), timeout=5) as conn:
        conn.sendall(f"GET /v1/project/{P}/kms/ca HTTP/1.1\r\n".encode())
        time.sleep(0.2)  # the headers come later than the response time
        conn.sendall(f"Host: x\r\nAuthorization: aivenv1 {TOKEN}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
    assert sleeps == []


def test_the_response_time_wait_is_shortened_by_the_time_since_arrival() -> None:
    sleeps: list[float] = []
    fake = FakeAiven.with_default_seed(
        token=TOKEN, monotonic=lambda: 100.0, sleep=sleeps.append, response_time=0.05
    )
    reply = fake.process(
        "GET", f"/v1/project/{P}/kms/ca", {"authorization": f"aivenv1 {TOKEN}"}, b"", arrived=99.98
    )
    assert not isinstance(reply, Drop) and reply.status == 200
    assert sleeps == [pytest.approx(0.03)]  # 20 ms of the 50 had passed when it was processed
