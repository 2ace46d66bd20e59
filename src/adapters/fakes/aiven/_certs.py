"""Certificate material for the simulator: one CA per project, client certs for Kafka users.

EC P-256 keys keep generation in the low milliseconds, so creating many Kafka users in a test
stays cheap; clients only need to trust the CA and present the client cert, which works the same
for EC and RSA.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class ProjectCA:
    certificate_pem: str
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)


@dataclass(frozen=True)
class ClientCert:
    certificate_pem: str
    key_pem: str = field(repr=False)
    not_valid_after: datetime


def ca_builder(
    name: x509.Name, key: ec.EllipticCurvePrivateKey, now: datetime, validity: timedelta
) -> x509.CertificateBuilder:
    """A self-signed CA certificate, not yet signed: valid from five minutes before ``now``
    (clock skew) for ``validity``, marked CA and allowed to sign certificates and CRLs only."""
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )


def make_project_ca(project: str, now: datetime, validity: timedelta = timedelta(days=3650)) -> ProjectCA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fake Aiven"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{project} Project CA"),
        ]
    )
    cert = (
        ca_builder(name, key, now, validity)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return ProjectCA(certificate_pem=pem, key=key, certificate=cert)


def issue_client_cert(ca: ProjectCA, common_name: str, now: datetime, validity: timedelta) -> ClientCert:
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = (now + validity).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return ClientCert(
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        key_pem=key_pem,
        not_valid_after=not_after,
    )
