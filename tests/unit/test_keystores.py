"""Key and trust stores load back with cryptography and with Java's keytool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from aivenator.domain import keystores
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.unit.strategies import tls_material


def _keytool_list(path: Path, password: str) -> str:
    keytool = shutil.which("keytool")
    assert keytool is not None, "keytool (Java) is required for this test tier"
    result = subprocess.run(
        [keytool, "-list", "-storetype", "PKCS12", "-keystore", str(path), "-storepass", password],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_keystore_round_trip_and_content_equality() -> None:
    _ca, cert, key = tls_material(0)
    store = keystores.build_keystore(cert, key, "s3cret-pass").unwrap()
    loaded = pkcs12.load_pkcs12(store, b"s3cret-pass")
    assert loaded.key is not None and loaded.cert is not None
    assert loaded.cert.friendly_name == b"client"
    assert keystores.keystore_holds(store, "s3cret-pass", cert, key)
    assert not keystores.keystore_holds(store, "wrong", cert, key)
    _, other_cert, other_key = tls_material(1)
    assert not keystores.keystore_holds(store, "s3cret-pass", other_cert, other_key)
    # randomly salted: equal content, different bytes
    again = keystores.build_keystore(cert, key, "s3cret-pass").unwrap()
    assert again != store and keystores.keystore_holds(again, "s3cret-pass", cert, key)


def test_truststore_round_trip() -> None:
    ca, _, _ = tls_material(0)
    other_ca, _, _ = tls_material(1)
    store = keystores.build_truststore(ca, "pw-123456").unwrap()
    loaded = pkcs12.load_pkcs12(store, b"pw-123456")
    assert loaded.key is None
    assert keystores.truststore_holds(store, "pw-123456", ca)
    assert not keystores.truststore_holds(store, "pw-123456", other_ca)
    bundle = keystores.build_truststore(ca + other_ca, "pw-123456").unwrap()
    assert keystores.truststore_holds(bundle, "pw-123456", ca + other_ca)
    assert not keystores.truststore_holds(bundle, "pw-123456", ca)


def test_invalid_pem_is_a_failure_value() -> None:
    assert "PEM" in keystores.build_keystore("nope", "nope", "pw").failure()
    assert "PEM" in keystores.build_truststore("nope", "pw").failure()
    ca, cert, key = tls_material(0)
    assert keystores.build_truststore(ca, "").failure()
    assert not keystores.keystore_holds(b"garbage", "pw", cert, key)


def test_keytool_lists_the_stores(tmp_path: Path) -> None:
    ca, cert, key = tls_material(0)
    truststore = tmp_path / "client.truststore.jks"
    keystore = tmp_path / "client.keystore.p12"
    truststore.write_bytes(keystores.build_truststore(ca, "changeit-x").unwrap())
    keystore.write_bytes(keystores.build_keystore(cert, key, "changeit-x").unwrap())
    trust_listing = _keytool_list(truststore, "changeit-x")
    assert "trustedCertEntry" in trust_listing
    assert "1 entry" in trust_listing
    key_listing = _keytool_list(keystore, "changeit-x")
    assert "PrivateKeyEntry" in key_listing
    assert "client" in key_listing
