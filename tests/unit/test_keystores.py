"""Key and trust stores load back with cryptography and with Java's keytool."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

from aivenator.domain import keystores
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # no randomness in the domain: salts and IV come from the password and the content
    assert keystores.build_keystore(cert, key, "s3cret-pass").unwrap() == store
    other_password = keystores.build_keystore(cert, key, "s3cret-pass2").unwrap()
    assert other_password != store and keystores.keystore_holds(other_password, "s3cret-pass2", cert, key)
    assert keystores.build_keystore(other_cert, other_key, "s3cret-pass").unwrap() != store


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


def test_a_chain_and_an_rsa_key_round_trip() -> None:
    ca, _, _ = tls_material(0)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rsa-client")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        .sign(rsa_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    store = keystores.build_keystore(cert + ca, key_pem, "pw-chain-1").unwrap()
    loaded = pkcs12.load_pkcs12(store, b"pw-chain-1")
    assert loaded.cert is not None and [c.certificate for c in loaded.additional_certs] == (
        x509.load_pem_x509_certificates(ca.encode())
    )
    assert keystores.keystore_holds(store, "pw-chain-1", cert + ca, key_pem)
    assert not keystores.keystore_holds(store, "pw-chain-1", cert, key_pem)


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0xFFFF, codec="utf-16"), min_size=1, max_size=40))
def test_any_bmp_password_opens_both_stores(password: str) -> None:
    # PBKDF2 takes the password as UTF-8, the MAC key derivation as a BMPString: both as readers expect.
    ca, cert, key = tls_material(0)
    assert keystores.keystore_holds(keystores.build_keystore(cert, key, password).unwrap(), password, cert, key)
    assert keystores.truststore_holds(keystores.build_truststore(ca, password).unwrap(), password, ca)


def test_a_nul_in_an_old_password_is_a_store_to_rebuild_not_a_crash() -> None:
    # cryptography's reader raises a pyo3 PanicException (a BaseException) for such a password.
    ca, cert, key = tls_material(0)
    store = keystores.build_keystore(cert, key, "pass\0word").unwrap()
    assert not keystores.keystore_holds(store, "pass\0word", cert, key)
    assert not keystores.truststore_holds(keystores.build_truststore(ca, "pass\0word").unwrap(), "pass\0word", ca)


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
    # Listing does not decrypt the private key; copying the entry into another store does.
    keytool = shutil.which("keytool")
    assert keytool is not None
    copied = subprocess.run(
        [
            keytool, "-importkeystore", "-noprompt",
            "-srckeystore", str(keystore), "-srcstoretype", "PKCS12", "-srcstorepass", "changeit-x",
            "-destkeystore", str(tmp_path / "copy.p12"), "-deststoretype", "PKCS12", "-deststorepass", "other-pw",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "1 entries successfully imported" in copied.stdout + copied.stderr
    assert "PrivateKeyEntry" in _keytool_list(tmp_path / "copy.p12", "other-pw")
