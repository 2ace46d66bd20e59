"""Java key and trust stores for Kafka clients: PKCS#12, written here (DER) with `cryptography`
for the primitives (PBKDF2, AES, HMAC, SHA-256) and for parsing PEM.

Why not `cryptography`'s own `pkcs12.serialize_*`: it derives the MAC key with a fixed 2,048
rounds of the PKCS#12 KDF, which made the two stores cost ~1.1 ms of CPU per Kafka Secret (a
quarter of a new application's whole cold pass) whatever we asked for. The format written here:

* PFX v3, authenticated by HMAC-SHA-256 over the contents, its key from the PKCS#12 KDF
  (RFC 7292 appendix B, SHA-256) with 1 iteration: the MAC key derivation OpenSSL before 3.0
  and go-pkcs12's legacy encoders (what Go tooling, including the Go operator's ecosystem,
  wrote for years) use. The store password is random per Secret (the shell draws at least 24
  bytes) and sits beside the stores in the same Secret, so a work factor adds nothing: brute
  force is bounded by the password's entropy;
* the private key as a PKCS8ShroudedKeyBag: PBES2, PBKDF2-HMAC-SHA-256 with `STORE_KDF_ROUNDS`
  rounds, AES-256-CBC (what Java 12+ keytool and Kafka's Java clients read, as before);
* certificates in plain (unencrypted) bags: they are public, and Java, OpenSSL and
  `cryptography` read unencrypted certificate bags;
* keystore: the client certificate (friendlyName `client`, localKeyId = SHA-256 of the
  certificate) and the key under the same alias and id, then any chain certificates;
  truststore: each CA certificate with Java's trusted-certificate attribute
  (2.16.840.1.113894.746875.1.1 = anyExtendedKeyUsage) under alias `ca`, `ca-1`, ...

The domain draws no randomness: salts and the IV are HMAC-SHA-256 of the (random, per Secret)
password over a label and a digest of the content, so they are unique per password and content,
and building is deterministic. Equality is still defined by decoded content (`keystore_holds`,
`truststore_holds`): the Kafka handler reuses the existing bytes and password when the content
is unchanged, which keeps rendering stable and lets an unchanged Secret diff as Unchanged.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac, padding, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.serialization import pkcs12
from returns.result import Failure, Result, Success

KEYSTORE_ALIAS = "client"
TRUSTSTORE_ALIAS = "ca"

#: PBKDF2 rounds for the private key's encryption (see the module doc for the MAC).
STORE_KDF_ROUNDS = 1000
#: Iterations of the PKCS#12 KDF for the MAC key (the ASN.1 default, so left out of the DER).
STORE_MAC_ITERATIONS = 1


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


def build_keystore(cert_pem: str, key_pem: str, password: str) -> Result[bytes, str]:
    """PKCS#12 keystore with the private key and the certificate (chain) under alias `client`."""
    try:
        certs = _certs(cert_pem)
        key = _key(key_pem)
    except ValueError:
        return Failure("client certificate or private key is not valid PEM")
    if not certs:
        return Failure("client certificate or private key is not valid PEM")
    if not password:
        return Failure("empty store password")
    der = serialization.Encoding.DER
    cert_ders = [c.public_bytes(der) for c in certs]
    key_der = _key_der(key)
    content = _sha256(b"".join(cert_ders) + key_der)
    key_id = _sha256(cert_ders[0])
    named = _attributes(_friendly_name(KEYSTORE_ALIAS), _local_key_id(key_id))
    cert_bags = [_cert_bag(cert_ders[0], named), *(_cert_bag(d, b"") for d in cert_ders[1:])]
    key_bag = _shrouded_key_bag(key_der, password, content, named)
    return Success(_pfx([_data(_seq(*cert_bags)), _data(_seq(key_bag))], password, b"keystore", content))


def build_truststore(ca_pem: str, password: str) -> Result[bytes, str]:
    """PKCS#12 Java truststore: every CA certificate as a trusted-certificate entry."""
    try:
        certs = _certs(ca_pem)
    except ValueError:
        return Failure("CA certificate is not valid PEM")
    if not password:
        return Failure("empty store password")
    der = serialization.Encoding.DER
    cert_ders = [c.public_bytes(der) for c in certs]
    bags = [
        _cert_bag(
            cert_der,
            _attributes(
                _friendly_name(TRUSTSTORE_ALIAS if i == 0 else f"{TRUSTSTORE_ALIAS}-{i}"), _JAVA_TRUSTED
            ),
        )
        for i, cert_der in enumerate(cert_ders)
    ]
    return Success(_pfx([_data(_seq(*bags))], password, b"truststore", _sha256(b"".join(cert_ders))))


def keystore_holds(store: bytes, password: str, cert_pem: str, key_pem: str) -> bool:
    """Does `store` open with `password` and hold exactly this key and certificate (chain)?"""
    if "\0" in password:
        return False  # cryptography's reader panics (not an exception) on a NUL in a password
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
    if "\0" in password:
        return False  # see keystore_holds
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


# --- PKCS#12 structure (RFC 7292) ------------------------------------------------------------------


def _pfx(safes: list[bytes], password: str, store: bytes, content: bytes) -> bytes:
    """PFX { version 3, authSafe ContentInfo(data, AuthenticatedSafe), macData }."""
    auth_safe = _seq(*safes)
    salt = _derive(password, store + b" mac salt", content)[:16]
    mac_key = _pkcs12_kdf(password, salt, 3, STORE_MAC_ITERATIONS)
    mac = hmac.HMAC(mac_key, hashes.SHA256())
    mac.update(auth_safe)
    iterations = b"" if STORE_MAC_ITERATIONS == 1 else _int(STORE_MAC_ITERATIONS)
    mac_data = _seq(_seq(_algorithm(_OID_SHA256, _NULL), _octets(mac.finalize())), _octets(salt), iterations)
    return _seq(_int(3), _data(auth_safe), mac_data)


def _data(content: bytes) -> bytes:
    """ContentInfo { data, [0] EXPLICIT OCTET STRING }."""
    return _seq(_OID_DATA, _explicit0(_octets(content)))


def _cert_bag(cert_der: bytes, attributes: bytes) -> bytes:
    """SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING }, attributes }."""
    return _seq(_OID_CERT_BAG, _explicit0(_seq(_OID_X509_CERT, _explicit0(_octets(cert_der)))), attributes)


def _shrouded_key_bag(key_der: bytes, password: str, content: bytes, attributes: bytes) -> bytes:
    """SafeBag { pkcs8ShroudedKeyBag, [0] EncryptedPrivateKeyInfo (PBES2), attributes }."""
    salt = _derive(password, b"keystore key salt", content)[:16]
    iv = _derive(password, b"keystore key iv", content)[:16]
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, STORE_KDF_ROUNDS).derive(password.encode("utf-8"))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(key_der) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    pbkdf2 = _seq(_octets(salt), _int(STORE_KDF_ROUNDS), _algorithm(_OID_HMAC_SHA256, _NULL))
    pbes2 = _seq(_algorithm(_OID_PBKDF2, pbkdf2), _algorithm(_OID_AES256_CBC, _octets(iv)))
    encrypted = _seq(_algorithm(_OID_PBES2, pbes2), _octets(ciphertext))
    return _seq(_OID_SHROUDED_KEY_BAG, _explicit0(encrypted), attributes)


def _attributes(*attributes: bytes) -> bytes:
    """SET OF PKCS12Attribute, in DER order."""
    return _tlv(0x31, b"".join(sorted(attributes)))


def _friendly_name(alias: str) -> bytes:
    return _seq(_OID_FRIENDLY_NAME, _tlv(0x31, _tlv(0x1E, alias.encode("utf-16-be"))))


def _local_key_id(key_id: bytes) -> bytes:
    return _seq(_OID_LOCAL_KEY_ID, _tlv(0x31, _octets(key_id)))


def _pkcs12_kdf(password: str, salt: bytes, purpose: int, iterations: int) -> bytes:
    """RFC 7292 B.2 with SHA-256 (u = 32, v = 64) for a 32-byte key: one block suffices."""
    secret = (password + "\0").encode("utf-16-be")  # BMPString with its terminating NUL
    diversifier = bytes([purpose]) * 64
    value = diversifier + _fill(salt) + _fill(secret)
    for _ in range(iterations):
        value = _sha256(value)
    return value


def _fill(data: bytes) -> bytes:
    """`data` repeated to the next multiple of 64 bytes (empty stays empty)."""
    if not data:
        return b""
    length = 64 * -(-len(data) // 64)
    return (data * (length // len(data) + 1))[:length]


def _derive(password: str, label: bytes, content: bytes) -> bytes:
    mac = hmac.HMAC(password.encode("utf-8"), hashes.SHA256())
    mac.update(label + b"\0" + content)
    return mac.finalize()


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


# --- DER --------------------------------------------------------------------------------------------


def _tlv(tag: int, value: bytes) -> bytes:
    length = len(value)
    if length < 0x80:
        return bytes((tag, length)) + value
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + value


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _octets(value: bytes) -> bytes:
    return _tlv(0x04, value)


def _explicit0(value: bytes) -> bytes:
    return _tlv(0xA0, value)


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _algorithm(oid: bytes, parameters: bytes) -> bytes:
    return _seq(oid, parameters)


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


_NULL = b"\x05\x00"
_OID_DATA = _oid("1.2.840.113549.1.7.1")
_OID_CERT_BAG = _oid("1.2.840.113549.1.12.10.1.3")
_OID_SHROUDED_KEY_BAG = _oid("1.2.840.113549.1.12.10.1.2")
_OID_X509_CERT = _oid("1.2.840.113549.1.9.22.1")
_OID_FRIENDLY_NAME = _oid("1.2.840.113549.1.9.20")
_OID_LOCAL_KEY_ID = _oid("1.2.840.113549.1.9.21")
_OID_PBES2 = _oid("1.2.840.113549.1.5.13")
_OID_PBKDF2 = _oid("1.2.840.113549.1.5.12")
_OID_HMAC_SHA256 = _oid("1.2.840.113549.2.9")
_OID_AES256_CBC = _oid("2.16.840.1.101.3.4.1.42")
_OID_SHA256 = _oid("2.16.840.1.101.3.4.2.1")
#: Java's trusted-certificate attribute (Oracle's arc), valued anyExtendedKeyUsage.
_JAVA_TRUSTED = _seq(_oid("2.16.840.1.113894.746875.1.1"), _tlv(0x31, _oid("2.5.29.37.0")))
