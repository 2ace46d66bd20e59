from __future__ import annotations

import json
import threading

from aivenator.adapters.redaction import MASK, RedactingProcessor, SecretRegistry, redact_text, redact_value
from hypothesis import assume, given, settings
from hypothesis import strategies as st

KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIUYz\n-----END CERTIFICATE-----"


def clean(text: str, *known: str) -> str:
    return redact_text(text, known, registry=SecretRegistry())


def test_pem_blocks_are_masked_raw_and_json_escaped() -> None:
    for text in (f"key {KEY} cert {CERT}", json.dumps({"access_key": KEY, "access_cert": CERT})):
        out = clean(text)
        assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in out
        assert "MIIDdzCCAl+gAwIBAgIUYz" not in out


def test_truncated_pem_is_masked() -> None:
    out = clean("oops -----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
    assert "MIIEvQIBADANBgkq" not in out and "BEGIN PRIVATE KEY" in out


def test_aiven_passwords_userinfo_json_fields_and_auth_headers() -> None:
    text = (
        "pw AVNS_abcDEF123_xyz uri https://avnadmin:hunter2hunter2@os.example:443/x "
        'body {"password": "plainpass123", "new_password":"n3w-pass-word", "username": "keepme"} '
        "Authorization: aivenv1 tok3nTOK3Ntok3n password=sekrit99 Bearer abc.def.ghi"
    )
    out = clean(text)
    for secret in (
        "AVNS_abcDEF123_xyz",
        "hunter2hunter2",
        "plainpass123",
        "n3w-pass-word",
        "tok3nTOK3Ntok3n",
        "sekrit99",
        "abc.def.ghi",
    ):
        assert secret not in out, secret
    assert "keepme" in out and "https://avnadmin:" in out and "@os.example:443/x" in out


def test_known_secrets_and_registry_entries_are_masked() -> None:
    registry = SecretRegistry()
    registry.add("opaque-token-123456", None, "", "abc")  # short and empty ones are ignored
    assert len(registry) == 1 and "abc" not in registry
    out = redact_text("a opaque-token-123456 b per-call-secret c abc", ["per-call-secret"], registry=registry)
    assert out == f"a {MASK} b {MASK} c abc"


def test_registry_masks_json_escaped_forms_of_multiline_secrets() -> None:
    registry = SecretRegistry()
    secret = 'line-one\nline"two'
    registry.add(secret)
    escaped = json.dumps({"x": secret})
    assert "line-one" not in redact_text(escaped, registry=registry)


def test_registry_is_thread_safe() -> None:
    registry = SecretRegistry()

    def feed(prefix: str) -> None:
        for i in range(300):
            registry.add(f"{prefix}-secret-{i:04d}")
            redact_text("nothing here", registry=registry)

    threads = [threading.Thread(target=feed, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(registry) == 1200
    assert redact_text("a t3-secret-0150 t0-secret-0299 b", registry=registry) == f"a {MASK} {MASK} b"


def test_registry_is_bounded_dropping_the_oldest() -> None:
    registry = SecretRegistry(max_entries=3)
    registry.add("first-secret", "second-secret", "third-secret")
    registry.add("first-secret")  # seen again: now the newest
    registry.add("fourth-secret")
    assert len(registry) == 3 and "second-secret" not in registry
    assert redact_text("first-secret second-secret", registry=registry) == f"{MASK} second-secret"
    registry.discard("first-secret")
    assert redact_text("first-secret", registry=registry) == "first-secret"


def test_lookup_stays_fast_with_many_known_secrets() -> None:
    import time

    registry = SecretRegistry()
    registry.add(*(f"{i:06d}-opaque-password" for i in range(20_000)))
    registry.add(*(f"AVNS_{i:06d}shared-prefix" for i in range(20_000)))
    line = (
        "aiven_request operation=ServiceUserGet path=/v1/project/p/service/s/user/u 009999-opaque-password "
        * 3
    )
    started = time.perf_counter()
    for _ in range(200):
        out = redact_text(line, registry=registry)
    assert "009999-opaque-password" not in out
    assert (time.perf_counter() - started) / 200 < 0.005


def test_pem_blocks_are_not_stored_but_always_masked() -> None:
    registry = SecretRegistry()
    registry.add(KEY, "a-real-password")
    assert len(registry) == 1
    assert "MIIEvQIBADANBgkq" not in redact_text(f"x {KEY} y", registry=registry)


def test_processor_redacts_every_value_of_the_event_dict() -> None:
    registry = SecretRegistry()
    registry.add("my-known-secret")
    processor = RedactingProcessor(registry)
    event = {
        "event": "thing my-known-secret",
        "nested": {"list": ["AVNS_zzzzzzzz", 3], "ok": True},
        "exc": ValueError("boom my-known-secret"),
    }
    out = processor(None, "info", event)
    assert "my-known-secret" not in repr(out) and "AVNS_zzzzzzzz" not in repr(out)
    assert out["nested"]["list"][1] == 3 and out["nested"]["ok"] is True


def test_redact_value_leaves_scalars_alone() -> None:
    assert redact_value(5) == 5 and redact_value(None) is None
    assert redact_value(b"AVNS_bytesbytes", registry=SecretRegistry()) == MASK


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(max_size=40),
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=8, max_size=40),
    suffix=st.text(max_size=40),
)
def test_a_known_secret_never_survives_whatever_surrounds_it(prefix: str, secret: str, suffix: str) -> None:
    assume(secret not in MASK)  # a "secret" that is part of the mask itself
    out = redact_text(prefix + secret + suffix, [secret], registry=SecretRegistry())
    assert secret not in out


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_text_without_secrets_is_unchanged(text: str) -> None:
    if any(
        w in text.lower()
        for w in (
            "avns_",
            "://",
            "password",
            "token",
            "secret",
            "key",
            "-----",
            "bearer",
            "aivenv1",
            "passwd",
            "authorization",
        )
    ):
        return
    assert clean(text) == text


_shared_prefix = st.text(alphabet="AB", min_size=0, max_size=14).map(lambda tail: "AVNS_" + tail)


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "discard"]), _shared_prefix.filter(lambda s: len(s) >= 6)),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_registry_finds_exactly_what_a_plain_bounded_list_would(
    steps: list[tuple[str, str]], bound: int
) -> None:
    """Secrets that share their index key (one bucket) or not, added, re-added, discarded and
    dropped for the bound: `found_in` and membership match a plain model."""
    registry = SecretRegistry(max_entries=bound)
    model: list[str] = []  # oldest first
    for op, secret in steps:
        if op == "add":
            registry.add(secret)
            if secret in model:
                model.remove(secret)
            model.append(secret)
            del model[: max(0, len(model) - bound)]
        else:
            registry.discard(secret)
            if secret in model:
                model.remove(secret)
        assert registry.snapshot() == tuple(model)
    text = " ".join(secret for _, secret in steps)
    assert set(registry.found_in(text)) == {s for s in model if s in text}
