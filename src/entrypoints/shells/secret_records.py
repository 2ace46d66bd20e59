"""The ownership record of one Secret, wherever it has to come from (one place for the shells)."""

from __future__ import annotations

from aivenator.domain.kubernetes_port import KubeError, KubeNotFound, KubernetesPort
from aivenator.domain.ownership import OwnershipIndex, SecretRecord, secret_record
from returns.result import Failure, Result, Success


def secret_record_of(
    ownership: OwnershipIndex, kube: KubernetesPort, namespace: str, name: str
) -> Result[SecretRecord | None, KubeError]:
    """The record of Secret `namespace/name` (None: there is no such Secret). Managed Secrets are
    answered by the index; one it does not hold may still exist unmanaged (only managed Secrets
    are watched), which only the API server can tell: one read, only while it is not ours."""
    record = ownership.record(namespace, name)
    if record is not None:
        return Success(record)
    match kube.get_secret(namespace, name):
        case Success(found):
            return Success(secret_record(found))
        case Failure(KubeNotFound()):
            return Success(None)
        case Failure(error):
            return Failure(error)
    raise AssertionError("unreachable")  # pragma: no cover
