"""Compact informer entries: each cached object is stored as one small bytes value.

A decoded Kubernetes object costs about 3-4 KiB of Python dicts and strings; at 10k
AivenApplications plus 10k managed Secrets that is most of the operator's memory. The caches
keep each object as `marshal` bytes deflated against a preset dictionary of what every such
object repeats (API versions, our label and annotation keys, condition types, Secret key
names), about 100-250 bytes each, and decode it on every read (a few microseconds; each read
gets its own copy, so a caller may change it freely).

`marshal` is the interpreter's own format for plain values (dict, list, str, int, float, bool,
None): it only lives inside this process, never on disk or the wire, so its per-version format
does not matter. Anything else in an object is refused with `ValueError` at `pack` time.
"""

from __future__ import annotations

import marshal
import sys
import zlib
from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.kubernetes_port import KubeObject
from aivenator.domain.references import WorkloadRefs

#: Raw deflate (no header or checksum: the bytes never leave the process).
_WBITS = -15
_LEVEL = 1


def _template() -> bytes:
    """What the cached objects have in common, as `marshal` writes it (the preset dictionary)."""
    time = "2026-01-01T00:00:00Z"
    labels = {
        L.SECRET_GENERATION_LABEL: "1", L.PROTECTED: "false", L.APP_LABEL: "", L.TEAM_LABEL: "",
        L.TYPE_LABEL: L.TYPE_VALUE,
    }
    annotations = {
        L.PROTECTED: "false", L.KAFKA_POOL: "", L.KAFKA_SERVICE_NAME: "", L.KAFKA_SERVICE_USER: "",
        L.OPENSEARCH_PROJECT: "", L.OPENSEARCH_SERVICE_NAME: "", L.OPENSEARCH_SERVICE_USER: "",
        L.VALKEY_PROJECT: "", "x" + L.VALKEY_SERVICE_NAME_SUFFIX: "",
        "x" + L.VALKEY_SERVICE_USER_SUFFIX: "", L.CORRELATION_ID: "", L.WITH_TIME_LIMIT: "",
        L.EXPIRES_AT: "", "kubectl.kubernetes.io/last-applied-configuration": "",
    }
    metadata = {
        "name": "", "namespace": "", "labels": labels, "annotations": annotations,
        "finalizers": [L.FINALIZER], "uid": "", "creationTimestamp": time,
        "resourceVersion": "", "generation": 1, "ownerReferences": [
            {"apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication", "name": "", "uid": "",
             "controller": True, "blockOwnerDeletion": True},
        ],
    }
    conditions = [
        {"type": kind, "status": "True", "lastUpdateTime": time, "lastTransitionTime": time,
         "reason": "", "message": ""}
        for kind in ("Succeeded", "Ready", "AivenFailure", "LocalFailure", "KafkaReady",
                     "OpenSearchReady", "ValkeyReady", "CertificateRenewal", "SecretConflict")
    ]
    application: dict[str, Any] = {
        "apiVersion": "aiven.nais.io/v1", "kind": "AivenApplication", "metadata": metadata,
        "spec": {
            "secretName": "", "protected": False, "expiresAt": time,
            "kafka": {"pool": "", "secretName": "", "streams": False},
            "openSearch": {"instance": "", "access": "read", "secretName": ""},
            "valkey": [{"instance": "", "access": "readwrite", "secretName": ""}],
        },
        "status": {
            "synchronizationHash": "", "synchronizationState": "RolloutComplete",
            "synchronizationTime": time, "synchronizedGeneration": 1, "observedGeneration": 1,
            "conditions": conditions,
        },
    }
    keys = (
        "AIVEN_CA", "AIVEN_SECRET_UPDATED", "KAFKA_BROKERS", "KAFKA_CA", "KAFKA_CERTIFICATE",
        "KAFKA_CREDSTORE_PASSWORD", "KAFKA_PRIVATE_KEY", "KAFKA_SCHEMA_REGISTRY",
        "KAFKA_SCHEMA_REGISTRY_PASSWORD", "KAFKA_SCHEMA_REGISTRY_USER", "KAFKA_SECRET_UPDATED",
        "client.keystore.p12", "client.truststore.jks", "OPEN_SEARCH_USERNAME",
        "OPEN_SEARCH_PASSWORD", "OPEN_SEARCH_URI", "OPEN_SEARCH_HOST", "OPEN_SEARCH_PORT",
        "OPEN_SEARCH_DASHBOARD_URI", "OPEN_SEARCH_DASHBOARD_HOST", "OPEN_SEARCH_DASHBOARD_PORT",
    )
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata,
        "data": dict.fromkeys(keys, "sha256:"),
    }
    return marshal.dumps(secret) + marshal.dumps(application)


_ZDICT = _template()


class PackedObjects:
    """The informers' `Codec` for API objects (AivenApplications, slim managed Secrets)."""

    def pack(self, obj: KubeObject) -> object:
        deflate = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WBITS, zdict=_ZDICT)
        return deflate.compress(marshal.dumps(obj)) + deflate.flush()

    def unpack(self, packed: object) -> KubeObject:
        if not isinstance(packed, bytes):
            raise TypeError(f"not a packed object: {type(packed).__name__}")
        inflate = zlib.decompressobj(_WBITS, zdict=_ZDICT)
        obj = marshal.loads(inflate.decompress(packed) + inflate.flush())
        if not isinstance(obj, dict):
            raise TypeError(f"not a packed object: {type(obj).__name__}")
        return obj


class CompactRefs:
    """The informers' `Codec` for workload references: a tuple of shared strings.

    Three Pods of one app refer to the same Secret names in the same namespace; interning them
    stores each name once, and a tuple costs a quarter of a one-element frozenset."""

    def pack(self, refs: WorkloadRefs) -> object:
        return (
            sys.intern(refs.namespace),
            sys.intern(refs.kind),
            refs.name,
            *sorted(sys.intern(name) for name in refs.secret_names),
        )

    def unpack(self, packed: object) -> WorkloadRefs:
        if not isinstance(packed, tuple) or len(packed) < 3:
            raise TypeError(f"not packed workload references: {type(packed).__name__}")
        namespace, kind, name, *names = packed
        return WorkloadRefs(namespace, kind, name, frozenset(names))
