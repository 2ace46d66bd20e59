"""Expiry of the Kafka client certificate held in a cached Secret (no Aiven request needed).

Parsed once per Secret resourceVersion; an unparseable certificate counts as unknown expiry.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from aivenator.domain.kubernetes_port import KubeObject, ObjectMeta
from cryptography import x509

CERT_KEY = "KAFKA_CERTIFICATE"
#: Prefix of a digest standing in for a `data` value in the cache; base64 never contains ":".
DIGEST_PREFIX = "sha256:"


def certificate_not_after(pem: bytes) -> datetime | None:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    return cert.not_valid_after_utc.astimezone(UTC)


class CertCache:
    def __init__(self, max_entries: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str], tuple[str, datetime | None]] = {}
        self._max = max_entries

    def not_after(self, secret: KubeObject) -> datetime | None:
        meta = ObjectMeta(secret)
        key = (sys.intern(meta.namespace), sys.intern(meta.name))  # the names the caches share
        version = meta.resource_version
        with self._lock:
            hit = self._by_key.get(key)
        if hit is not None and hit[0] == version and version:
            return hit[1]
        raw = (secret.get("data") or {}).get(CERT_KEY)
        value: datetime | None = None
        if isinstance(raw, str) and raw.startswith(DIGEST_PREFIX):
            # A slimmed Secret whose expiry was forgotten (cache cleared): unknown, not cached.
            return None
        if isinstance(raw, str) and raw:
            try:
                value = certificate_not_after(base64.b64decode(raw, validate=True))
            except ValueError:
                value = None
        with self._lock:
            if len(self._by_key) >= self._max:
                self._by_key.clear()
            self._by_key[key] = (version, value)
        return value


def _digest(value: object) -> str:
    return DIGEST_PREFIX + hashlib.sha256(str(value).encode()).hexdigest()[:16]


def slim_secret(secret: KubeObject, certs: CertCache) -> KubeObject:
    """The Secret as the cache keeps it: no credential values (see the module docstring)."""
    data = secret.get("data")
    if not isinstance(data, Mapping) or not data or is_slim(secret):
        return secret
    certs.not_after(secret)  # parsed while the value is at hand, remembered per resourceVersion
    slim = {k: v for k, v in secret.items() if k not in ("data", "stringData")}
    metadata = secret.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        slim["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    slim["data"] = {str(k): _digest(v) for k, v in data.items()}
    return slim


def is_slim(secret: KubeObject) -> bool:
    """Whether `secret` is a cache entry without values (read it in full before writing it)."""
    data = secret.get("data")
    if not isinstance(data, Mapping):
        return False
    return any(isinstance(v, str) and v.startswith(DIGEST_PREFIX) for v in data.values())
