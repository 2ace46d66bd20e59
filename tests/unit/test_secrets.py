"""Rendering Secrets: common metadata, timestamps that only move on credential changes, stable
stores, and determinism."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aivenator.domain import keystores
from aivenator.domain import labels as L
from aivenator.domain.facts import Endpoint, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.secrets import (
    DesiredSecret,
    SectionInput,
    Unchanged,
    decode_data,
    diff,
    render_secret,
)
from aivenator.domain.services import all_sections
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.secrets import as_existing, render_all
from tests.unit.strategies import parse_valid, raw_applications, section_inputs, tls_material

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=5)


def _raw(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "myapp",
            "namespace": "team-a",
            "generation": 2,
            "labels": {"aiven.nais.io/secret-generation": "7"},
            "annotations": {"nais.io/deploymentCorrelationID": "corr-1"},
        },
        "spec": spec,
    }


def _kafka_input(cert_index: int = 0, password: str = "pw") -> tuple[Any, SectionInput]:
    app = parse_valid(
        _raw(
            kafka={"pool": "dev-nais-dev", "secretName": "k"},
            protected=True,
            expiresAt="2027-01-01T00:00:00Z",
        )
    )
    handler, section = all_sections(app)[0]
    ca, cert, key = tls_material(cert_index)
    facts = ServiceFacts(
        "dev-nais-dev", "kafka", ServiceType.KAFKA, "RUNNING", (("kafka", Endpoint("k.example.com", 9)),)
    )
    user = ServiceUser(handler.username(app, section).name, password, access_cert=cert, access_key=key)
    return app, SectionInput(section, facts, user, ca)


def test_common_keys_labels_annotations_and_finalizer() -> None:
    app, inp = _kafka_input()
    secret = render_secret(app, inp, None, NOW, "store-pw", "MAIN-CA").unwrap()
    assert (secret.namespace, secret.name) == ("team-a", "k")
    assert secret.data["AIVEN_CA"] == b"MAIN-CA"
    assert secret.data["AIVEN_SECRET_UPDATED"] == b"2026-11-27T12:00:00Z"
    assert secret.data["KAFKA_SECRET_UPDATED"] == b"2026-11-27T12:00:00Z"
    assert secret.labels == {
        "app": "myapp",
        "team": "team-a",
        "type": "aivenator.aiven.nais.io",
        "aiven.nais.io/secret-generation": "7",
        "aivenator.aiven.nais.io/protected": "true",
    }
    assert {k: v for k, v in secret.annotations.items() if not k.startswith("kafka.")} == {
        "nais.io/deploymentCorrelationID": "corr-1",
        "aivenator.aiven.nais.io/protected": "true",
        "aivenator.aiven.nais.io/with-time-limit": "true",
        "aivenator.aiven.nais.io/expires-at": "2027-01-01T00:00:00Z",
    }
    assert secret.finalizers == (L.FINALIZER,)


def test_unprotected_app_has_no_time_limit_and_default_generation() -> None:
    app = parse_valid(
        {
            "metadata": {"name": "x", "namespace": "ns", "generation": 1},
            "spec": {"valkey": [{"instance": "c", "secretName": "v"}], "expiresAt": "2027-01-01T00:00:00Z"},
        }
    )
    _handler, section = all_sections(app)[0]
    facts = ServiceFacts(
        "dev-nais-dev", "valkey-ns-c", ServiceType.VALKEY, "RUNNING", (("valkey", Endpoint("h", 1)),)
    )
    secret = render_secret(
        app, SectionInput(section, facts, ServiceUser("x-r-abc", "pw"), "ca"), None, NOW, "", "ca"
    ).unwrap()
    assert secret.labels["aiven.nais.io/secret-generation"] == "0"
    assert secret.labels["aivenator.aiven.nais.io/protected"] == "false"
    assert L.WITH_TIME_LIMIT not in secret.annotations and L.EXPIRES_AT not in secret.annotations
    assert L.CORRELATION_ID not in secret.annotations


def test_unchanged_credentials_keep_timestamps_and_stores() -> None:
    app, inp = _kafka_input()
    first = render_secret(app, inp, None, NOW, "first-password-0123", "MAIN-CA").unwrap()
    existing = as_existing(first)
    second = render_secret(app, inp, existing, LATER, "second-pw", "MAIN-CA").unwrap()
    assert second.data == first.data  # same bytes: old timestamp, old stores, old store password
    assert isinstance(diff(second, existing), Unchanged)
    assert second.data["AIVEN_SECRET_UPDATED"] == b"2026-11-27T12:00:00Z"


def test_changed_credentials_move_timestamps_and_rebuild_stores() -> None:
    app, inp = _kafka_input(0)
    first = render_secret(app, inp, None, NOW, "first-pw", "MAIN-CA").unwrap()
    _, rotated = _kafka_input(1)
    second = render_secret(app, rotated, as_existing(first), LATER, "second-pw", "MAIN-CA").unwrap()
    stamp = b"2026-11-27T17:00:00Z"
    assert second.data["AIVEN_SECRET_UPDATED"] == stamp and second.data["KAFKA_SECRET_UPDATED"] == stamp
    assert second.data["KAFKA_CREDSTORE_PASSWORD"] == b"second-pw"
    _, cert, key = tls_material(1)
    assert keystores.keystore_holds(second.data["client.keystore.p12"], "second-pw", cert, key)


def test_password_change_alone_moves_the_timestamp() -> None:
    app, inp = _kafka_input(0, password="one")
    first = render_secret(app, inp, None, NOW, "store-password-0123", "MAIN-CA").unwrap()
    _, changed = _kafka_input(0, password="two")
    second = render_secret(app, changed, as_existing(first), LATER, "store2", "MAIN-CA").unwrap()
    assert second.data["AIVEN_SECRET_UPDATED"] == b"2026-11-27T17:00:00Z"
    # stores hold the same material: reused with their password
    assert second.data["client.keystore.p12"] == first.data["client.keystore.p12"]
    assert second.data["KAFKA_CREDSTORE_PASSWORD"] == b"store-password-0123"


def test_a_section_that_cannot_be_rendered_is_reported_and_others_still_render() -> None:
    app = parse_valid(
        _raw(
            kafka={"pool": "dev-nais-dev", "secretName": "k"},
            valkey=[{"instance": "c", "secretName": "v"}],
        )
    )
    (_kh, ks), (vh, vs) = all_sections(app)
    kafka_input = SectionInput(
        ks,
        ServiceFacts("dev-nais-dev", "kafka", ServiceType.KAFKA, "RUNNING", ()),
        ServiceUser("u", "pw"),
        "ca",
    )
    valkey_input = SectionInput(
        vs,
        ServiceFacts(
            "dev-nais-dev", "valkey-team-a-c", ServiceType.VALKEY, "RUNNING", (("valkey", Endpoint("h", 1)),)
        ),
        ServiceUser(vh.username(app, vs).name, "pw"),
        "ca",
    )
    kafka = render_secret(app, kafka_input, None, NOW, "pw", "ca")
    valkey = render_secret(app, valkey_input, None, NOW, "pw", "ca")
    assert valkey.unwrap().name == "v"
    error = kafka.failure()
    assert error.section_key == "kafka"
    assert "certificate" in error.message
    assert "pw" not in error.message


def _strip_stores(secret: DesiredSecret) -> dict[str, bytes]:
    return {k: v for k, v in secret.data.items() if not k.startswith("client.")}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_rendering_is_deterministic_and_a_fixed_point(data: st.DataObject) -> None:
    app = parse_valid(data.draw(raw_applications()))
    inputs = data.draw(section_inputs(app))
    first = render_all(app, inputs, {}, NOW, "new-password-0123", "MAIN-CA")
    again = render_all(app, inputs, {}, NOW, "new-password-0123", "MAIN-CA")
    assert len(first) == len(all_sections(app))
    # deterministic up to the random salt of PKCS#12 stores (compared by content)
    assert [_strip_stores(s) for s in first] == [_strip_stores(s) for s in again]
    assert [(s.labels, s.annotations) for s in first] == [
        (s.labels, s.annotations) for s in again
    ]
    for secret, inp in zip(first, inputs, strict=True):
        if "client.keystore.p12" in secret.data:
            pw = secret.data["KAFKA_CREDSTORE_PASSWORD"].decode()
            assert keystores.keystore_holds(
                secret.data["client.keystore.p12"], pw, inp.user.access_cert or "", inp.user.access_key or ""
            )
            assert keystores.truststore_holds(secret.data["client.truststore.jks"], pw, inp.project_ca)
    # re-rendering against what was written changes nothing, even later and with another password
    existing = {s.name: as_existing(s) for s in first}
    later = render_all(app, inputs, existing, LATER, "other-pw", "MAIN-CA")
    assert [s.data for s in later] == [s.data for s in first]
    for secret in later:
        assert isinstance(diff(secret, existing[secret.name]), Unchanged)
        assert decode_data(existing[secret.name]) == dict(secret.data)


def test_go_operator_stores_and_constant_password_are_kept_byte_for_byte() -> None:
    """A takeover changes no credential: `changeme` is short, but the stores hold the current
    certificate and CA, so password and stores stay (pods reading one from the environment and
    the others from a volume never see a mismatch)."""
    app, inp = _kafka_input()
    legacy = render_secret(app, inp, None, NOW, "changeme", "MAIN-CA").unwrap()
    assert legacy.data["KAFKA_CREDSTORE_PASSWORD"] == b"changeme"
    again = render_secret(app, inp, as_existing(legacy), LATER, "a-new-random-password", "MAIN-CA").unwrap()
    assert again.data == legacy.data
    assert isinstance(diff(again, as_existing(legacy)), Unchanged)


def test_new_certificate_brings_a_new_password() -> None:
    app, inp = _kafka_input(0)
    legacy = render_secret(app, inp, None, NOW, "changeme", "MAIN-CA").unwrap()
    _, rotated = _kafka_input(1)
    again = render_secret(
        app, rotated, as_existing(legacy), LATER, "a-new-random-password", "MAIN-CA"
    ).unwrap()
    assert again.data["KAFKA_CREDSTORE_PASSWORD"] == b"a-new-random-password"
    _, cert, key = tls_material(1)
    assert keystores.keystore_holds(again.data["client.keystore.p12"], "a-new-random-password", cert, key)
