"""Expiry of the Kafka client certificate held in a cached Secret (no Aiven request needed).

Parsed once per Secret resourceVersion; an unparseable certificate counts as unknown expiry.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime

from aivenator.domain.kubernetes_port import KubeObject, ObjectMeta
from cryptography import x509

CERT_KEY = "KAFKA_CERTIFICATE"


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
        key = (meta.namespace, meta.name)
        version = meta.resource_version
        with self._lock:
            hit = self._by_key.get(key)
        if hit is not None and hit[0] == version and version:
            return hit[1]
        raw = (secret.get("data") or {}).get(CERT_KEY)
        value: datetime | None = None
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
