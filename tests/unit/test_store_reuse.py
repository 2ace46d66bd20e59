"""`plan_stores`: key/trust stores and their password change only with the credentials.

The Go operator protects its stores with the constant `changeme`; its stores (built here by the
Go library it uses, see `go_operator_stores.json`) must be kept as they are at takeover.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from aivenator.domain import keystores
from aivenator.domain.services.kafka import (
    CA,
    CERTIFICATE,
    CREDSTORE_PASSWORD,
    KEYSTORE,
    PRIVATE_KEY,
    TRUSTSTORE,
    plan_stores,
)

from tests.unit.strategies import tls_material

_ROOT = Path(__file__).resolve().parents[2]


def _example_material() -> tuple[str, str, str]:
    facts: dict[str, Any] = yaml.safe_load((_ROOT / "deploy/examples/facts.yaml").read_text())
    (project,) = facts["projects"].values()
    user = next(u for u in facts["users"] if u.get("access_cert"))
    return project["ca"], user["access_cert"], user["access_key"]


def _go_operator_data() -> dict[str, bytes]:
    stores = json.loads((Path(__file__).parent / "go_operator_stores.json").read_text())
    ca, cert, key = _example_material()
    return {
        CREDSTORE_PASSWORD: stores["password"].encode(),
        KEYSTORE: base64.b64decode(stores["keystore"]),
        TRUSTSTORE: base64.b64decode(stores["truststore"]),
        CERTIFICATE: cert.encode(),
        PRIVATE_KEY: key.encode(),
        CA: ca.encode(),
    }


def _our_data(index: int, password: str) -> dict[str, bytes]:
    ca, cert, key = tls_material(index)
    return {
        CREDSTORE_PASSWORD: password.encode(),
        KEYSTORE: keystores.build_keystore(cert, key, password).unwrap(),
        TRUSTSTORE: keystores.build_truststore(ca, password).unwrap(),
        CERTIFICATE: cert.encode(),
        PRIVATE_KEY: key.encode(),
    }


def test_stores_built_by_the_go_operator_are_kept_with_changeme() -> None:
    ca, cert, key = _example_material()
    data = _go_operator_data()
    plan = plan_stores(data, cert, key, ca, "fresh-random-password")
    assert (plan.password, plan.keystore, plan.truststore) == ("changeme", data[KEYSTORE], data[TRUSTSTORE])


def test_any_password_length_is_kept_while_the_stores_hold_the_credentials() -> None:
    ca, cert, key = tls_material(0)
    for password in ("x", "changeme", "a" * 64):
        data = _our_data(0, password)
        plan = plan_stores(data, cert, key, ca, "fresh-random-password")
        assert (plan.password, plan.keystore, plan.truststore) == (password, data[KEYSTORE], data[TRUSTSTORE])


def test_a_rotated_ca_rebuilds_only_the_truststore_under_the_same_password() -> None:
    _, cert, key = tls_material(0)
    other_ca, _, _ = tls_material(1)
    data = _our_data(0, "changeme")
    plan = plan_stores(data, cert, key, other_ca, "fresh-random-password")
    assert (plan.password, plan.keystore, plan.truststore) == ("changeme", data[KEYSTORE], None)


def test_a_damaged_keystore_for_the_same_certificate_keeps_the_password() -> None:
    ca, cert, key = tls_material(0)
    data = {**_our_data(0, "changeme"), KEYSTORE: b"not a store"}
    plan = plan_stores(data, cert, key, ca, "fresh-random-password")
    assert (plan.password, plan.keystore) == ("changeme", None)
    assert plan.truststore == data[TRUSTSTORE]


def test_new_credentials_get_the_new_password_and_new_stores() -> None:
    ca, cert, key = tls_material(1)
    plan = plan_stores(_our_data(0, "changeme"), cert, key, ca, "fresh-random-password")
    assert (plan.password, plan.keystore, plan.truststore) == ("fresh-random-password", None, None)


def test_a_new_secret_gets_the_new_password() -> None:
    ca, cert, key = tls_material(0)
    plan = plan_stores({}, cert, key, ca, "fresh-random-password")
    assert (plan.password, plan.keystore, plan.truststore) == ("fresh-random-password", None, None)


def test_a_store_that_opens_only_with_another_password_is_not_kept() -> None:
    ca, cert, key = tls_material(0)
    data = {**_our_data(0, "changeme"), CREDSTORE_PASSWORD: b"edited"}
    plan = plan_stores(data, cert, key, ca, "fresh-random-password")
    # same certificate in the Secret: the (edited) password is kept, both stores rebuilt under it
    assert (plan.password, plan.keystore, plan.truststore) == ("edited", None, None)
