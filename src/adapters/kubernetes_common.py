"""Plain helpers shared by the real Kubernetes adapter and the in-memory fake.

Sharing them keeps the two backends agreeing on the small rules (merge patch, label matching,
the finalizer read-modify-write, Lease <-> JSON) that the contract suite checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aivenator.domain.kubernetes_port import (
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeObject,
    LabelSelector,
    Lease,
)
from aivenator.domain.times import format_time as format_time
from aivenator.domain.times import parse_time as parse_time
from returns.result import Failure, Result, Success

#: How often a finalizer edit re-reads after losing an optimistic-lock race before giving up.
FINALIZER_EDIT_ATTEMPTS = 5

_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, returning a new value (inputs untouched)."""
    if not isinstance(patch, Mapping):
        return _copy(patch)
    result: dict[str, object] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _copy(value: Any) -> Any:
    # Exact JSON types first: an ABC isinstance check costs several times a type comparison,
    # and a copied object is almost all plain dicts, lists and strings.
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def deep_copy(obj: Mapping[str, object]) -> KubeObject:
    """A copy of a JSON-ish dict (faster than copy.deepcopy for plain JSON)."""
    copied: KubeObject = _copy(obj)
    return copied


def labels_match(obj: Mapping[str, Any], selector: LabelSelector) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def selector_string(selector: LabelSelector) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def format_micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_MICROTIME)


def lease_body(lease: Lease) -> KubeObject:
    metadata: dict[str, object] = {"name": lease.name, "namespace": lease.namespace}
    if lease.resource_version:
        metadata["resourceVersion"] = lease.resource_version
    spec: dict[str, object] = {"leaseTransitions": lease.lease_transitions}
    if lease.holder_identity is not None:
        spec["holderIdentity"] = lease.holder_identity
    if lease.lease_duration_seconds is not None:
        spec["leaseDurationSeconds"] = lease.lease_duration_seconds
    if lease.acquire_time is not None:
        spec["acquireTime"] = format_micro_time(lease.acquire_time)
    if lease.renew_time is not None:
        spec["renewTime"] = format_micro_time(lease.renew_time)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}


def lease_from(obj: Mapping[str, Any]) -> Lease:
    metadata = meta(obj)
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    return Lease(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        holder_identity=spec.get("holderIdentity"),
        lease_duration_seconds=int(duration) if duration is not None else None,
        acquire_time=parse_time(spec.get("acquireTime")),
        renew_time=parse_time(spec.get("renewTime")),
        lease_transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(metadata.get("resourceVersion", "")),
        uid=str(metadata.get("uid", "")),
    )


Getter = Callable[[str, str], Result[KubeObject, KubeError]]
Patcher = Callable[[str, str, Mapping[str, object], str | None], Result[KubeObject, KubeError]]


def edit_finalizers(
    get: Getter,
    patch: Patcher,
    namespace: str,
    name: str,
    edit: Callable[[list[str]], list[str]],
) -> Result[KubeObject | None, KubeError]:
    """Read, edit the finalizer list, write it back guarded by the resourceVersion.

    A merge patch replaces the whole list, so the resourceVersion precondition is what keeps a
    finalizer added by someone else in between from being dropped: on a conflict, read again.
    No write when the edit changes nothing. None: the object is gone (or went on this write).
    """
    last: KubeError = KubeConflict("finalizer edit kept conflicting")
    for _ in range(FINALIZER_EDIT_ATTEMPTS):
        match get(namespace, name):
            case Failure(KubeNotFound()):
                return Success(None)
            case Failure(error):
                return Failure(error)
            case Success(obj):
                pass
        metadata = meta(obj)
        current = [str(f) for f in (metadata.get("finalizers") or [])]
        wanted = edit(list(current))
        if wanted == current:
            return Success(obj)
        rv = str(metadata.get("resourceVersion", ""))
        match patch(namespace, name, {"metadata": {"finalizers": wanted or None}}, rv):
            case Success(updated):
                gone = not wanted and bool(metadata.get("deletionTimestamp"))
                return Success(None if gone else updated)
            case Failure(KubeNotFound()):
                return Success(None)
            case Failure(KubeConflict() as conflict):
                last = conflict
                continue
            case Failure(error):
                return Failure(error)
    return Failure(last)


def add_finalizer(
    get: Getter, patch: Patcher, namespace: str, name: str, finalizer: str, not_found: str
) -> Result[KubeObject, KubeError]:
    """Add ``finalizer`` if missing; a gone object is KubeNotFound(``not_found``)."""
    result = edit_finalizers(
        get,
        patch,
        namespace,
        name,
        lambda current: current if finalizer in current else [*current, finalizer],
    )
    match result:
        case Success(None):
            return Failure(KubeNotFound(not_found))
        case Success(obj) if obj is not None:
            return Success(obj)
        case Failure(error):
            return Failure(error)
    raise AssertionError("unreachable")  # pragma: no cover


def remove_finalizer(
    get: Getter, patch: Patcher, namespace: str, name: str, finalizer: str
) -> Result[KubeObject | None, KubeError]:
    """Drop ``finalizer``; None: the object is gone (or went on this write)."""
    return edit_finalizers(
        get, patch, namespace, name, lambda current: [f for f in current if f != finalizer]
    )
