"""Ports: what the operator asks of Kubernetes, one Protocol per role.

Objects cross the port as the plain JSON dicts the API server sends (camelCase keys), never as
the official client's model objects: they are cheap to hold, to diff and to build in tests.
Workloads (Pods and pod templates) cross it already reduced to `WorkloadRefs`, so nobody keeps
whole Pods in memory.

Failures are values: every call returns a `returns` Result whose failure side is one of the
`KubeError` classes below. Watches are iterators that never raise: they end on their timeout, or
after yielding `WatchExpired` (410 Gone: list again) or `WatchBroken` (anything else: back off and
watch again from the last resourceVersion seen).

Both `aivenator.adapters.kubernetes_api.KubernetesApi` (the real API server) and
`aivenator.adapters.fakes.kubernetes.FakeKubernetes` (in memory) implement every role; the contract suite in
`tests/integration/test_kubernetes_contract.py` runs the same cases against both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar

from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.references import WorkloadRefs
from returns.result import Result

#: One Kubernetes object as the API server sends it (JSON decoded, camelCase keys).
KubeObject: TypeAlias = dict[str, Any]


def _str_map(value: object) -> Mapping[str, str]:
    return value if isinstance(value, Mapping) else {}


class ObjectMeta:
    """A typed, read-only view of an object's `metadata` (nothing copied): what callers read
    instead of chains of `get("metadata") or {}`. Absent fields read as "" / empty."""

    __slots__ = ("_meta",)

    def __init__(self, obj: Mapping[str, object] | None) -> None:
        meta = obj.get("metadata") if obj is not None else None
        self._meta: Mapping[str, object] = meta if isinstance(meta, Mapping) else {}

    def _text(self, key: str) -> str:
        value = self._meta.get(key)
        return "" if value is None else str(value)

    @property
    def name(self) -> str:
        return self._text("name")

    @property
    def namespace(self) -> str:
        return self._text("namespace")

    @property
    def resource_version(self) -> str:
        return self._text("resourceVersion")

    @property
    def uid(self) -> str:
        return self._text("uid")

    @property
    def deletion_timestamp(self) -> str:
        return self._text("deletionTimestamp")

    @property
    def deleting(self) -> bool:
        return bool(self._meta.get("deletionTimestamp"))

    @property
    def generation(self) -> int | None:
        value = self._meta.get("generation")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def labels(self) -> Mapping[str, str]:
        return _str_map(self._meta.get("labels"))

    @property
    def annotations(self) -> Mapping[str, str]:
        return _str_map(self._meta.get("annotations"))

    @property
    def finalizers(self) -> tuple[str, ...]:
        value = self._meta.get("finalizers")
        return tuple(str(f) for f in value) if isinstance(value, list) else ()

    def label(self, key: str) -> str:
        return str(self.labels.get(key) or "")

#: Equality-based label selector: every key must carry exactly this value.
LabelSelector: TypeAlias = Mapping[str, str]

#: What the janitor selects managed Secrets by (product spec section 4).
MANAGED_SECRET_LABEL = "type"
MANAGED_SECRET_LABEL_VALUE = "aivenator.aiven.nais.io"
MANAGED_SECRETS: LabelSelector = {MANAGED_SECRET_LABEL: MANAGED_SECRET_LABEL_VALUE}

EventType = Literal["Normal", "Warning"]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED"]


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class KubeNotFound:
    """404: the object (or its namespace) does not exist."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class KubeAlreadyExists:
    """409 AlreadyExists on create: read the existing object instead."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class KubeConflict:
    """409: a resourceVersion or uid precondition did not hold; read again, decide again."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class KubeGone:
    """410: the resourceVersion asked for is too old; list again."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class KubeUnavailable:
    """429, 5xx, timeouts, connection errors: try again later (after `retry_after` if known)."""

    message: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class KubeForbidden:
    """401/403: the operator's identity may not do this (RBAC); retrying will not help."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class KubeInvalid:
    """400/422 and other rejections of the request itself; retrying will not help."""

    message: str = ""


KubeError: TypeAlias = (
    KubeNotFound | KubeAlreadyExists | KubeConflict | KubeGone | KubeUnavailable | KubeForbidden | KubeInvalid
)


# --------------------------------------------------------------------------- values

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListResult(Generic[T]):
    """A consistent list and the resourceVersion to watch from afterwards."""

    items: tuple[T, ...]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    """One change. For DELETED, `obj` is the last state of the object."""

    type: WatchEventType
    obj: T
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchBookmark:
    """Nothing changed up to `resource_version`: resume the next watch from there."""

    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchExpired:
    """410 Gone: the resourceVersion left the server's history. List again, then watch."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class WatchBroken:
    """The watch failed for another reason; back off, then watch again from the last version."""

    error: KubeError


WatchItem: TypeAlias = WatchEvent[T] | WatchBookmark | WatchExpired | WatchBroken


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Enough to point an Event at an object."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""


@dataclass(frozen=True, slots=True)
class Lease:
    """A `coordination.k8s.io/v1` Lease, the fields leader election needs.

    `resource_version` is empty for a Lease not yet created; `update_lease` uses it as the
    optimistic-lock precondition.
    """

    namespace: str
    name: str
    holder_identity: str | None
    lease_duration_seconds: int | None
    acquire_time: datetime | None
    renew_time: datetime | None
    lease_transitions: int = 0
    resource_version: str = ""
    uid: str = field(default="", compare=False)


# --------------------------------------------------------------------------- roles


class Applications(Protocol):
    """AivenApplications (aiven.nais.io/v1), in every namespace."""

    def list_applications(self) -> Result[ListResult[KubeObject], KubeError]: ...

    def watch_applications(
        self, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]: ...

    def patch_application_status(
        self,
        namespace: str,
        name: str,
        status_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        """JSON merge patch of `status` through the status subresource; spec is untouched.

        With `resource_version`, a stale object is a `KubeConflict` instead of a lost update.
        """
        ...

    def delete_application(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        """Delete, with optional uid/resourceVersion preconditions (`KubeConflict` on mismatch)."""
        ...


class Secrets(Protocol):
    """Secrets. Listing and watching take a label selector; `get` reads any Secret by name."""

    def list_secrets(
        self, label_selector: LabelSelector, namespace: str | None = None
    ) -> Result[ListResult[KubeObject], KubeError]: ...

    def watch_secrets(
        self, label_selector: LabelSelector, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]: ...

    def get_secret(self, namespace: str, name: str) -> Result[KubeObject, KubeError]: ...

    def create_secret(self, body: Mapping[str, object]) -> Result[KubeObject, KubeError]:
        """Create; `stringData` is folded into base64 `data` by the server. Exists: `KubeAlreadyExists`."""
        ...

    def patch_secret(
        self,
        namespace: str,
        name: str,
        merge_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        """JSON merge patch (RFC 7386): keys not in the patch, including other controllers'
        labels, annotations and data keys, are kept; `None` removes a key; lists (finalizers)
        are replaced whole. With `resource_version`, a stale object is a `KubeConflict`.
        """
        ...

    def delete_secret(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        """Delete with optional preconditions. With finalizers present the Secret only gets a
        deletionTimestamp; it disappears when the last finalizer is removed.
        """
        ...

    def add_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject, KubeError]:
        """Add `finalizer`, keeping everyone else's; no write if already present."""
        ...

    def remove_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject | None, KubeError]:
        """Remove `finalizer`, keeping everyone else's; no write if absent.

        Read-modify-write guarded by the resourceVersion, so a finalizer another controller adds
        meanwhile is never lost. Returns the object, or None if removing the last finalizer of a
        deleted Secret made it disappear (or it was already gone).
        """
        ...


class Workloads(Protocol):
    """Pods and the pod templates of ReplicaSets, Deployments, StatefulSets, DaemonSets, Jobs
    and CronJobs, reduced to the Secret names they refer to (kinds: `references.WORKLOAD_KINDS`).
    """

    def list_workload_refs(self, kind: str) -> Result[ListResult[WorkloadRefs], KubeError]: ...

    def watch_workload_refs(
        self, kind: str, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[WorkloadRefs]]: ...


class AivenObjects(Protocol):
    """`aiven.io/v1alpha1` OpenSearch / Valkey objects, owned by Aiven's own operator."""

    def aiven_object_state(
        self, kind: AivenObjectKind, namespace: str, name: str
    ) -> Result[str | None, KubeError]:
        """`status.state` of the object ("" if it has none), or None if there is no such object."""
        ...


class Events(Protocol):
    def record_event(
        self, involved: ObjectRef, type: EventType, reason: str, message: str
    ) -> Result[None, KubeError]:
        """Best effort: callers may ignore the result. The message must hold no credential."""
        ...


class Leases(Protocol):
    def get_lease(self, namespace: str, name: str) -> Result[Lease, KubeError]: ...

    def create_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        """Create; `KubeAlreadyExists` if someone else was first."""
        ...

    def update_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        """Replace, guarded by `lease.resource_version` (`KubeConflict` if stale)."""
        ...


class KubernetesPort(Applications, Secrets, Workloads, AivenObjects, Events, Leases, Protocol):
    """Everything the operator asks of Kubernetes."""
