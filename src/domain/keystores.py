"""Java key and trust stores for Kafka clients (PKCS#12, via `cryptography`).

PKCS#12 files are salted randomly, so two stores with the same content differ byte-wise.
Equality is therefore defined by decoded content (`keystore_holds`, `truststore_holds`): the
Kafka handler reuses the existing bytes and password when the content is unchanged, which keeps
rendering stable and lets an unchanged Secret diff as Unchanged.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from returns.result import Failure, Result, Success

KEYSTORE_ALIAS = "client"
TRUSTSTORE_ALIAS = "ca"


def _certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode("utf-8"))


def _key(pem: str) -> pkcs12.PKCS12PrivateKeyTypes:
    key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | dsa.DSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise ValueError("unsupported key type")
    return key


def _key_der(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


#: PBKDF2 rounds for the stores. The store password is random (the shell draws at least 24
#: bytes), so brute force is bounded by its entropy, not by the work factor; the library's
#: default work factor cost ~20 ms of CPU per Kafka Secret and dominated cold convergence.
STORE_KDF_ROUNDS = 1000


def _store_encryption(password: str) -> serialization.KeySerializationEncryption:
    """PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) with an HMAC-SHA256 MAC: what Java 9+ keytool
    and Kafka's Java clients read for PKCS#12 stores."""
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(STORE_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )


def build_keystore(cert_pem: str, key_pem: str, password: str) -> Result[bytes, str]:
    """PKCS#12 keystore with the private key and the certificate (chain) under alias `client`."""
    try:
        certs = _certs(cert_pem)
        key = _key(key_pem)
    except ValueError:
        return Failure("client certificate or private key is not valid PEM")
    if not password:
        return Failure("empty store password")
    return Success(
        pkcs12.serialize_key_and_certificates(
            KEYSTORE_ALIAS.encode(),
            key,
            certs[0],
            certs[1:] or None,
            _store_encryption(password),
        )
    )


def build_truststore(ca_pem: str, password: str) -> Result[bytes, str]:
    """PKCS#12 Java truststore: every CA certificate as a trusted-certificate entry."""
    try:
        certs = _certs(ca_pem)
    except ValueError:
        return Failure("CA certificate is not valid PEM")
    if not password:
        return Failure("empty store password")
    entries = [
        pkcs12.PKCS12Certificate(cert, (TRUSTSTORE_ALIAS if i == 0 else f"{TRUSTSTORE_ALIAS}-{i}").encode())
        for i, cert in enumerate(certs)
    ]
    return Success(pkcs12.serialize_java_truststore(entries, _store_encryption(password)))


def keystore_holds(store: bytes, password: str, cert_pem: str, key_pem: str) -> bool:
    """Does `store` open with `password` and hold exactly this key and certificate (chain)?"""
    try:
        loaded = pkcs12.load_pkcs12(store, password.encode("utf-8"))
        certs = _certs(cert_pem)
        key = _key(key_pem)
    except (ValueError, TypeError):
        return False
    if loaded.key is None or loaded.cert is None:
        return False
    stored_certs = [loaded.cert.certificate, *(c.certificate for c in loaded.additional_certs)]
    return stored_certs == certs and _key_der(loaded.key) == _key_der(key)


def truststore_holds(store: bytes, password: str, ca_pem: str) -> bool:
    """Does `store` open with `password` and hold exactly these CA certificates, and no key?"""
    try:
        loaded = pkcs12.load_pkcs12(store, password.encode("utf-8"))
        certs = _certs(ca_pem)
    except (ValueError, TypeError):
        return False
    stored = [c.certificate for c in loaded.additional_certs]
    if loaded.cert is not None:
        stored.insert(0, loaded.cert.certificate)
    der = serialization.Encoding.DER
    return loaded.key is None and sorted(c.public_bytes(der) for c in stored) == sorted(
        c.public_bytes(der) for c in certs
    )
