"""The conversion webhook server: HTTPS, /convert, certificate reload (entrypoints.runtime.webhook)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aivenator.entrypoints import config as operator_config
from aivenator.entrypoints.runtime.webhook import CertificateFiles, WebhookServer
from returns.result import Failure, Success

from tests.support.clock import FakeClock
from tests.webhook_tls import WebhookTLS, make_webhook_tls


@pytest.fixture
def tls(tmp_path: Path) -> WebhookTLS:
    return make_webhook_tls(tmp_path / "certs")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(tls: WebhookTLS, clock: FakeClock) -> Iterator[WebhookServer]:
    webhook = WebhookServer("127.0.0.1", 0, CertificateFiles(str(tls.cert_file), str(tls.key_file), clock.monotonic))
    webhook.start()
    yield webhook
    webhook.stop()


def client_for(ca_pem: bytes) -> httpx.Client:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    return httpx.Client(verify=context, timeout=10)


def review_body(desired: str = "aiven.nais.io/v2") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "u-1",
            "desiredAPIVersion": desired,
            "objects": [
                {
                    "apiVersion": "aiven.nais.io/v1",
                    "kind": "AivenApplication",
                    "metadata": {"name": "a", "namespace": "t"},
                    "spec": {"secretName": "legacy", "kafka": {"pool": "p"}},
                }
            ],
        },
    }


def test_convert_answers_a_conversion_review_over_https(server: WebhookServer, tls: WebhookTLS) -> None:
    with client_for(tls.ca_pem) as client:
        reply = client.post(server.url, json=review_body())
    assert reply.status_code == 200
    response = reply.json()["response"]
    assert response["uid"] == "u-1"
    assert response["result"] == {"status": "Success"}
    [obj] = response["convertedObjects"]
    assert obj["apiVersion"] == "aiven.nais.io/v2"
    assert obj["spec"] == {"kafka": {"pool": "p", "secretName": "legacy"}}


def test_a_bad_object_is_a_failure_response_not_an_http_error(server: WebhookServer, tls: WebhookTLS) -> None:
    with client_for(tls.ca_pem) as client:
        reply = client.post(server.url, json=review_body(desired="aiven.nais.io/v3"))
    assert reply.status_code == 200
    result = reply.json()["response"]["result"]
    assert result["status"] == "Failure" and "aiven.nais.io/v3" in result["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/convert", b"{not json", 400),
        ("POST", "/convert", b'{"kind": "AdmissionReview"}', 400),
        ("POST", "/other", b"{}", 404),
        ("GET", "/convert", None, 404),
    ],
)
def test_what_is_not_a_conversion_review_gets_a_client_error(
    server: WebhookServer, tls: WebhookTLS, method: str, path: str, body: bytes | None, status: int
) -> None:
    with client_for(tls.ca_pem) as client:
        reply = client.request(method, f"https://127.0.0.1:{server.port}{path}", content=body)
    assert reply.status_code == status
    assert "error" in reply.json()


def test_a_renewed_certificate_is_served_without_a_restart(
    server: WebhookServer, tls: WebhookTLS, clock: FakeClock, tmp_path: Path
) -> None:
    renewed = make_webhook_tls(tmp_path / "renewed", ca_name="renewed CA")
    tls.cert_file.write_bytes(renewed.cert_file.read_bytes())
    tls.key_file.write_bytes(renewed.key_file.read_bytes())
    later = os.stat(tls.cert_file).st_mtime_ns + 10**9
    os.utime(tls.cert_file, ns=(later, later))
    with client_for(tls.ca_pem) as old_client:  # within the check interval the old pair is served
        assert old_client.post(server.url, json=review_body()).status_code == 200
    clock.advance(1.5)
    with client_for(renewed.ca_pem) as client:
        assert client.post(server.url, json=review_body()).status_code == 200
    assert server.certificates.reloads == 1
    with client_for(tls.ca_pem) as old_client, pytest.raises(httpx.ConnectError):
        old_client.post(server.url, json=review_body())


def test_a_half_written_pair_keeps_the_previous_certificate(
    server: WebhookServer, tls: WebhookTLS, clock: FakeClock, tmp_path: Path
) -> None:
    other = make_webhook_tls(tmp_path / "other")
    tls.key_file.write_bytes(other.key_file.read_bytes())  # key no longer matches the certificate
    later = os.stat(tls.key_file).st_mtime_ns + 10**9
    os.utime(tls.key_file, ns=(later, later))
    clock.advance(1.5)
    with client_for(tls.ca_pem) as client:
        assert client.post(server.url, json=review_body()).status_code == 200
    assert server.certificates.reloads == 0


def _load(**flags: str) -> Any:
    args = {"aiven_token": "t", **{k.replace("-", "_"): v for k, v in flags.items()}}
    return operator_config.load_config(args, env={})


def test_webhook_flags_are_parsed_and_checked_together() -> None:
    match _load(**{"webhook-address": ":9443", "webhook-cert-file": "/c", "webhook-key-file": "/k"}):
        case Success(cfg):
            assert cfg.webhook_address == operator_config.Address("0.0.0.0", 9443)
            assert (cfg.webhook_cert_file, cfg.webhook_key_file) == ("/c", "/k")
        case other:
            pytest.fail(f"unexpected {other}")
    assert _load().unwrap().webhook_address is None
    match _load(**{"webhook-address": ":9443"}):
        case Failure(problems):
            assert problems == ("--webhook-address: needs --webhook-cert-file and --webhook-key-file",)
        case other:
            pytest.fail(f"unexpected {other}")
    match _load(**{"webhook-cert-file": "/c"}):
        case Failure(problems):
            assert problems == ("--webhook-cert-file/--webhook-key-file: given without --webhook-address",)
        case other:
            pytest.fail(f"unexpected {other}")


def test_a_missing_certificate_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        CertificateFiles(str(tmp_path / "nope.crt"), str(tmp_path / "nope.key"))
