"""The managed-Secret cache keeps no credential values (aivenator.entrypoints.shells.certs)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from aivenator.adapters.fakes.aiven._certs import make_project_ca
from aivenator.entrypoints.shells.certs import CERT_KEY, CertCache, is_slim, slim_secret

CERT = make_project_ca("proj", datetime(2026, 1, 1, tzinfo=UTC)).certificate_pem


def secret(rv: str, password: str) -> dict[str, Any]:
    cert = CERT
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": "ns", "name": "s", "resourceVersion": rv, "managedFields": [{"x": 1}]},
        "data": {
            CERT_KEY: base64.b64encode(cert.encode()).decode(),
            "KAFKA_PASSWORD": base64.b64encode(password.encode()).decode(),
        },
    }


def test_the_cache_keeps_key_names_digests_and_the_expiry_but_no_value() -> None:
    certs = CertCache()
    full = secret("7", "hunter2-very-secret")
    slim = slim_secret(full, certs)
    assert is_slim(slim) and not is_slim(full)
    assert set(slim["data"]) == {CERT_KEY, "KAFKA_PASSWORD"}
    text = repr(slim)
    for value in full["data"].values():
        assert value not in text
    assert "managedFields" not in slim["metadata"]
    # the expiry was parsed from the full Secret and is answered for the slim one
    expiry = certs.not_after(slim)
    assert expiry is not None and expiry == CertCache().not_after(full)
    # slimming is idempotent; an edited value changes its digest
    assert slim_secret(slim, certs) == slim
    edited = slim_secret(secret("8", "another-password-x"), certs)
    assert edited["data"]["KAFKA_PASSWORD"] != slim["data"]["KAFKA_PASSWORD"]
    assert edited["data"][CERT_KEY] == slim["data"][CERT_KEY]


def test_a_slim_secret_whose_expiry_was_forgotten_is_unknown_not_garbage() -> None:
    slim = slim_secret(secret("9", "pw-0123456789"), CertCache())
    assert CertCache().not_after(slim) is None
