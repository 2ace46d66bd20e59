"""An in-memory Kubernetes cluster implementing `aivenator.domain.kubernetes_port.KubernetesPort`.

It behaves like a kube-apiserver where the operator can tell the difference (the contract suite
`tests/integration/test_kubernetes_contract.py` runs the same cases here and against a real
server): one global resourceVersion counter; watches per kind that resume from a resourceVersion,
out of a bounded history (older: 410 Gone), with a way to force 410; 409 on stale
resourceVersion / uid preconditions; equality label selectors; finalizers and deletionTimestamp;
namespaces must exist; the status subresource of custom resources is separate from the main
resource; `metadata.generation` counts spec changes; Secrets keep base64 `data` and fold
`stringData` into it.

For tests, the demo and tooling it also offers direct helpers that bypass the port: `apply`
(create or replace, status included, namespace created on demand), `objects`, `get`, `delete`,
`events`, `expire_watches`, fault injection (`inject_fault`) and request counters (`writes`,
`calls`). Thread-safe: one lock guards everything; watchers wait on a condition.
"""

from __future__ import annotations

import base64
import binascii
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from aivenator.adapters.kubernetes_common import (
    add_finalizer,
    deep_copy,
    format_time,
    labels_match,
    lease_body,
    lease_from,
    merge_patch,
    meta,
    remove_finalizer,
)
from aivenator.domain.kubernetes_port import (
    EventType,
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeObject,
    KubeUnavailable,
    LabelSelector,
    Lease,
    ListResult,
    ObjectRef,
    WatchBookmark,
    WatchBroken,
    WatchEvent,
    WatchEventType,
    WatchExpired,
    WatchItem,
)
from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.references import WORKLOAD_KINDS, WorkloadRefs, workload_refs
from returns.result import Failure, Result, Success

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KindInfo:
    api_version: str
    kind: str
    namespaced: bool = True
    #: Custom resources with a status subresource: main and status writes are separate.
    status_subresource: bool = False
    #: metadata.generation is maintained (counts spec changes).
    generation: bool = False


KINDS: Mapping[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo("aiven.nais.io/v1", "AivenApplication", status_subresource=True, generation=True),
        KindInfo("aiven.io/v1alpha1", "OpenSearch", status_subresource=True, generation=True),
        KindInfo("aiven.io/v1alpha1", "Valkey", status_subresource=True, generation=True),
        KindInfo("v1", "Secret"),
        KindInfo("v1", "Pod"),
        KindInfo("v1", "Event"),
        KindInfo("v1", "Namespace", namespaced=False),
        KindInfo("apps/v1", "ReplicaSet", status_subresource=True, generation=True),
        KindInfo("apps/v1", "Deployment", status_subresource=True, generation=True),
        KindInfo("apps/v1", "StatefulSet", status_subresource=True, generation=True),
        KindInfo("apps/v1", "DaemonSet", status_subresource=True, generation=True),
        KindInfo("batch/v1", "Job", status_subresource=True, generation=True),
        KindInfo("batch/v1", "CronJob", status_subresource=True, generation=True),
        KindInfo("coordination.k8s.io/v1", "Lease"),
    )
}

#: Verbs that change state, as counted in `writes`.
WRITE_VERBS = frozenset({"create", "patch", "patch_status", "update", "delete"})

Key = tuple[str, str]


class WallClock(Protocol):
    """What the fake needs of a clock: the wall time for the timestamps it stamps."""

    def now(self) -> datetime: ...


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Change:
    rv: int
    kind: str
    type: WatchEventType
    obj: KubeObject
    previous: KubeObject | None


@dataclass
class _Fault:
    verb: str
    kind: str | None
    error: KubeError
    remaining: int


class FakeKubernetes:
    """In-memory cluster. `clock` has `now() -> datetime` (timestamps only; watch timeouts use
    real time). `history` bounds the events kept for resuming watches.
    """

    def __init__(
        self, clock: WallClock | None = None, history: int = 10_000, namespaces: tuple[str, ...] = ("default",)
    ) -> None:
        self._clock: WallClock = clock if clock is not None else _SystemClock()
        self._lock = threading.RLock()
        self._uids = random.Random()  # seeded from the OS once (uids only; nothing secret)
        # One condition per kind (all on the one lock): a change wakes only the watches of its
        # kind, as a real API server sends each watch only its own events. One condition for
        # all woke every informer thread (nine of them) on every write, and each rescanned the
        # history since its last own event: rig CPU and GIL traffic production does not have.
        self._changed: dict[str, threading.Condition] = {kind: threading.Condition(self._lock) for kind in KINDS}
        self._objects: dict[str, dict[Key, KubeObject]] = {kind: {} for kind in KINDS}
        self._rv = 0
        self._history: deque[_Change] = deque()
        #: The same changes per kind (a watch scans only its own kind's).
        self._history_by_kind: dict[str, deque[_Change]] = {kind: deque() for kind in KINDS}
        self._history_limit = history
        #: Watching from a resourceVersion below this is 410 Gone.
        self._oldest_watchable = 0
        #: Bumped by `expire_watches`: running watches end with WatchExpired.
        self._epoch = 0
        self._closed = False
        self._faults: list[_Fault] = []
        #: Every port request by (kind, verb); `writes` holds the state-changing ones.
        self.calls: Counter[tuple[str, str]] = Counter()
        self.writes: Counter[tuple[str, str]] = Counter()
        for namespace in namespaces:
            self.create_namespace(namespace)

    # ------------------------------------------------------------------ test helpers

    def create_namespace(self, name: str) -> None:
        with self._lock:
            if ("", name) not in self._objects["Namespace"]:
                self._store_new(
                    "Namespace", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                )

    def apply(self, obj: Mapping[str, object]) -> KubeObject:
        """Create or replace `obj` as given (status too), like `kubectl apply` for test setup.

        The namespace is created if missing; uid/creationTimestamp survive a replace; generation
        follows spec changes. Not counted as a port request.
        """
        kind = str(obj["kind"])
        info = KINDS[kind]
        body = deep_copy(obj)
        body.setdefault("apiVersion", info.api_version)
        with self._lock:
            namespace = str(meta(body).get("namespace") or ("default" if info.namespaced else ""))
            if info.namespaced:
                body["metadata"]["namespace"] = namespace
                self.create_namespace(namespace)
            key = (namespace, str(body["metadata"]["name"]))
            old = self._objects[kind].get(key)
            if old is None:
                validated = self._validate(kind, body, None)
                if isinstance(validated, Failure):
                    raise ValueError(f"invalid {kind}: {validated.failure()}")
                return deep_copy(self._store_new(kind, validated.unwrap()))
            candidate = deep_copy(body)
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if field in old["metadata"]:
                    candidate["metadata"][field] = old["metadata"][field]
                else:
                    candidate["metadata"].pop(field, None)
            candidate["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            match self._replace(kind, old, candidate):
                case Failure(error):
                    raise ValueError(f"invalid {kind}: {error}")
                case Success(stored):
                    return deep_copy(stored) if stored is not None else deep_copy(candidate)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        with self._lock:
            obj = self._objects[kind].get((namespace if KINDS[kind].namespaced else "", name))
            return deep_copy(obj) if obj is not None else None

    def objects(self, kind: str, namespace: str | None = None) -> list[KubeObject]:
        with self._lock:
            return [
                deep_copy(obj)
                for (ns, _), obj in sorted(self._objects[kind].items())
                if namespace is None or ns == namespace
            ]

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete like `kubectl delete` (finalizers honoured). False if there was nothing."""
        with self._lock:
            return isinstance(self._delete(kind, namespace, name, None, None), Success)

    def patch(
        self, kind: str, namespace: str, name: str, merge_patch: Mapping[str, object], *, status: bool = False
    ) -> Result[KubeObject, KubeError]:
        """A merge patch of any kind, like `kubectl patch --type merge [--subresource status]`.

        Same rules as the port's patches (and counted like them).
        """
        return self._patch(
            kind, namespace if KINDS[kind].namespaced else "", name, merge_patch, None, status=status
        )

    def events(self, namespace: str | None = None) -> list[KubeObject]:
        return self.objects("Event", namespace)

    def expire_watches(self) -> None:
        """Force 410 Gone: running watches end with WatchExpired and no older resourceVersion can be
        resumed; a fresh list gives a resourceVersion that can be watched again.
        """
        with self._lock:
            self._rv += 1
            self._oldest_watchable = self._rv
            self._history.clear()
            for changes in self._history_by_kind.values():
                changes.clear()
            self._epoch += 1
            self._notify_every_watch()

    def inject_fault(self, verb: str, error: KubeError, times: int = 1, kind: str | None = None) -> None:
        """The next `times` port requests with this verb (and kind, if given) fail with `error`.

        Verbs: get, list, watch, create, patch, patch_status, update, delete. A watch fault makes
        the watch yield WatchBroken(error) (WatchExpired for KubeGone) and end.
        """
        with self._lock:
            self._faults.append(_Fault(verb, kind, error, times))

    def write_count(self, kind: str | None = None, verb: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (k, v), n in self.writes.items()
                if (kind is None or k == kind) and (verb is None or v == verb)
            )

    def reset_counters(self) -> None:
        with self._lock:
            self.calls.clear()
            self.writes.clear()

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def close(self) -> None:
        """End every running watch, and every later one at once, with WatchBroken (as a dropped
        connection would); for shutting down threads in tests. Other calls keep working.
        """
        with self._lock:
            self._closed = True
            self._notify_every_watch()

    def _notify_every_watch(self) -> None:
        for changed in self._changed.values():
            changed.notify_all()

    # ------------------------------------------------------------------ Applications

    def list_applications(self) -> Result[ListResult[KubeObject], KubeError]:
        return self._list("AivenApplication", {}, None, lambda o: o)

    def watch_applications(
        self, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self._watch("AivenApplication", {}, resource_version, timeout_seconds, lambda o: o)

    def patch_application_status(
        self,
        namespace: str,
        name: str,
        status_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        return self._patch(
            "AivenApplication", namespace, name, {"status": dict(status_patch)}, resource_version, status=True
        )

    def delete_application(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._request_delete("AivenApplication", namespace, name, uid, resource_version)

    # ------------------------------------------------------------------ Secrets

    def list_secrets(
        self, label_selector: LabelSelector, namespace: str | None = None
    ) -> Result[ListResult[KubeObject], KubeError]:
        return self._list("Secret", label_selector, namespace, lambda o: o)

    def watch_secrets(
        self, label_selector: LabelSelector, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self._watch("Secret", label_selector, resource_version, timeout_seconds, lambda o: o)

    def get_secret(self, namespace: str, name: str) -> Result[KubeObject, KubeError]:
        return self._get("Secret", namespace, name)

    def create_secret(self, body: Mapping[str, object]) -> Result[KubeObject, KubeError]:
        return self._create("Secret", body)

    def patch_secret(
        self,
        namespace: str,
        name: str,
        merge_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        return self._patch("Secret", namespace, name, merge_patch, resource_version, status=False)

    def delete_secret(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._request_delete("Secret", namespace, name, uid, resource_version)

    def add_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject, KubeError]:
        return add_finalizer(
            self.get_secret, self.patch_secret, namespace, name, finalizer, f"secrets {name!r} not found"
        )

    def remove_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject | None, KubeError]:
        return remove_finalizer(self.get_secret, self.patch_secret, namespace, name, finalizer)

    # ------------------------------------------------------------------ Workloads

    def list_workload_refs(self, kind: str) -> Result[ListResult[WorkloadRefs], KubeError]:
        if kind not in WORKLOAD_KINDS:
            return Failure(KubeInvalid(f"not a workload kind: {kind}"))
        return self._list(kind, {}, None, lambda o: workload_refs(kind, o))

    def watch_workload_refs(
        self, kind: str, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[WorkloadRefs]]:
        if kind not in WORKLOAD_KINDS:
            return iter([WatchBroken(KubeInvalid(f"not a workload kind: {kind}"))])
        return self._watch(kind, {}, resource_version, timeout_seconds, lambda o: workload_refs(kind, o))

    # ------------------------------------------------------------------ AivenObjects

    def aiven_object_state(
        self, kind: AivenObjectKind, namespace: str, name: str
    ) -> Result[str | None, KubeError]:
        match self._get(kind, namespace, name):
            case Success(obj):
                state = (obj.get("status") or {}).get("state")
                return Success(str(state) if state is not None else "")
            case Failure(KubeNotFound()):
                return Success(None)
            case Failure(error):
                return Failure(error)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ Events

    def record_event(
        self, involved: ObjectRef, type: EventType, reason: str, message: str
    ) -> Result[None, KubeError]:
        now = format_time(self._clock.now())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{involved.name}.{self._new_uid().hex[:16]}", "namespace": involved.namespace},
            "involvedObject": {
                "apiVersion": involved.api_version,
                "kind": involved.kind,
                "namespace": involved.namespace,
                "name": involved.name,
                "uid": involved.uid,
            },
            "type": type,
            "reason": reason,
            "message": message,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "aivenator"},
            "reportingComponent": "aivenator",
        }
        return self._create("Event", body).map(lambda _: None)

    # ------------------------------------------------------------------ Leases

    def get_lease(self, namespace: str, name: str) -> Result[Lease, KubeError]:
        return self._get("Lease", namespace, name).map(lease_from)

    def create_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        body = lease_body(lease)
        body["metadata"].pop("resourceVersion", None)
        return self._create("Lease", body).map(lease_from)

    def update_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        """A whole-object replace (PUT), as leader election does; guarded by resourceVersion."""
        with self._lock:
            self._count("Lease", "update")
            if (fault := self._take_fault("update", "Lease")) is not None:
                return Failure(fault)
            old = self._objects["Lease"].get((lease.namespace, lease.name))
            if old is None:
                return Failure(KubeNotFound(f'leases.coordination.k8s.io "{lease.name}" not found'))
            if not lease.resource_version:
                return Failure(KubeInvalid("metadata.resourceVersion: must be specified for an update"))
            if lease.resource_version != old["metadata"]["resourceVersion"]:
                return Failure(_stale("leases.coordination.k8s.io", lease.name))
            candidate = lease_body(lease)
            for field in ("uid", "creationTimestamp"):
                candidate["metadata"][field] = old["metadata"][field]
            return self._replace("Lease", old, candidate).map(
                lambda stored: lease_from(stored if stored is not None else candidate)
            )

    # ------------------------------------------------------------------ machinery

    def _count(self, kind: str, verb: str) -> None:
        self.calls[(kind, verb)] += 1
        if verb in WRITE_VERBS:
            self.writes[(kind, verb)] += 1

    def _take_fault(self, verb: str, kind: str) -> KubeError | None:
        for fault in self._faults:
            if fault.verb == verb and fault.kind in (None, kind) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault.error
        return None

    def _new_uid(self) -> uuid.UUID:
        """A random (version 4) UUID from a generator seeded once: `uuid4()` asks the OS for
        randomness on every call, a system call that also hands the GIL to another thread."""
        return uuid.UUID(int=self._uids.getrandbits(128), version=4)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _record(self, kind: str, type: WatchEventType, obj: KubeObject, previous: KubeObject | None) -> None:
        change = _Change(int(obj["metadata"]["resourceVersion"]), kind, type, obj, previous)
        self._history.append(change)
        self._history_by_kind[kind].append(change)
        while len(self._history) > self._history_limit:
            dropped = self._history.popleft()
            self._history_by_kind[dropped.kind].popleft()  # the oldest overall is its kind's oldest
            self._oldest_watchable = dropped.rv
        self._changed[kind].notify_all()

    def _store_new(self, kind: str, body: KubeObject) -> KubeObject:
        info = KINDS[kind]
        metadata = body.setdefault("metadata", {})
        metadata["uid"] = str(self._new_uid())
        metadata["creationTimestamp"] = format_time(self._clock.now())
        metadata["resourceVersion"] = self._next_rv()
        if info.generation:
            metadata["generation"] = 1
        body["apiVersion"] = info.api_version
        body["kind"] = kind
        key = (str(metadata.get("namespace", "")) if info.namespaced else "", str(metadata["name"]))
        self._objects[kind][key] = body
        self._record(kind, "ADDED", body, None)
        return body

    def _validate(self, kind: str, body: KubeObject, old: KubeObject | None) -> Result[KubeObject, KubeError]:
        """Server-side defaulting and validation for the few rules the operator can hit."""
        metadata = body.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            return Failure(KubeInvalid(f"{kind}: metadata.name: Required value"))
        if kind == "Secret":
            data = dict(body.get("data") or {})
            for key, value in data.items():
                if not isinstance(value, str):
                    return Failure(KubeInvalid(f"Secret data[{key}]: must be a base64 string"))
                try:
                    base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    return Failure(KubeInvalid(f"Secret data[{key}]: illegal base64 data"))
            for key, text in (body.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(text).encode()).decode()
            body["data"] = data
            if not data:
                body.pop("data")
            body.setdefault("type", "Opaque")
            if old is not None and body["type"] != old.get("type", "Opaque"):
                return Failure(KubeInvalid("Secret type: Invalid value: field is immutable"))
        if old is not None:
            before = set(old["metadata"].get("finalizers") or [])
            after = set(metadata.get("finalizers") or [])
            if old["metadata"].get("deletionTimestamp") and after - before:
                return Failure(
                    KubeInvalid(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"
                    )
                )
        return Success(body)

    def _get(self, kind: str, namespace: str, name: str) -> Result[KubeObject, KubeError]:
        with self._lock:
            self._count(kind, "get")
            if (fault := self._take_fault("get", kind)) is not None:
                return Failure(fault)
            obj = self._objects[kind].get((namespace, name))
            if obj is None:
                return Failure(KubeNotFound(f"{kind} {namespace}/{name} not found"))
            return Success(deep_copy(obj))

    def _list(
        self,
        kind: str,
        selector: LabelSelector,
        namespace: str | None,
        transform: Callable[[KubeObject], T],
    ) -> Result[ListResult[T], KubeError]:
        with self._lock:
            self._count(kind, "list")
            if (fault := self._take_fault("list", kind)) is not None:
                return Failure(fault)
            items = tuple(
                transform(deep_copy(obj))
                for (ns, _), obj in sorted(self._objects[kind].items())
                if (namespace is None or ns == namespace) and labels_match(obj, selector)
            )
            return Success(ListResult(items, str(self._rv)))

    def _create(self, kind: str, body: Mapping[str, object]) -> Result[KubeObject, KubeError]:
        with self._lock:
            self._count(kind, "create")
            if (fault := self._take_fault("create", kind)) is not None:
                return Failure(fault)
            candidate = deep_copy(body)
            metadata = candidate.get("metadata") or {}
            namespace = str(metadata.get("namespace") or "")
            if not namespace:
                return Failure(KubeInvalid(f"{kind}: metadata.namespace: Required value"))
            if ("", namespace) not in self._objects["Namespace"]:
                return Failure(KubeNotFound(f'namespaces "{namespace}" not found'))
            if metadata.get("resourceVersion"):
                return Failure(KubeInvalid("metadata.resourceVersion: must be empty on create"))
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                metadata.pop(field, None)
            if KINDS[kind].status_subresource:
                candidate.pop("status", None)
            if (namespace, str(metadata.get("name"))) in self._objects[kind]:
                return Failure(KubeAlreadyExists(f"{kind} {namespace}/{metadata.get('name')} already exists"))
            match self._validate(kind, candidate, None):
                case Failure(error):
                    return Failure(error)
                case Success(valid):
                    return Success(deep_copy(self._store_new(kind, valid)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        resource_version: str | None,
        *,
        status: bool,
    ) -> Result[KubeObject, KubeError]:
        verb = "patch_status" if status else "patch"
        with self._lock:
            self._count(kind, verb)
            if (fault := self._take_fault(verb, kind)) is not None:
                return Failure(fault)
            old = self._objects[kind].get((namespace, name))
            if old is None:
                return Failure(KubeNotFound(f"{kind} {namespace}/{name} not found"))
            patch_meta = patch.get("metadata") or {}
            wanted_rv = resource_version or patch_meta.get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                return Failure(_stale(kind, name))
            if patch_meta.get("uid") and patch_meta["uid"] != old["metadata"]["uid"]:
                return Failure(KubeConflict(f"Precondition failed: UID in precondition: {patch_meta['uid']}"))
            merged = merge_patch(deep_copy(old), patch)
            info = KINDS[kind]
            if status:
                candidate = deep_copy(old)
                if "status" in merged:
                    candidate["status"] = merged["status"]
                else:
                    candidate.pop("status", None)
            else:
                candidate = merged
                if info.status_subresource:
                    if "status" in old:
                        candidate["status"] = deep_copy(old["status"])
                    else:
                        candidate.pop("status", None)
                # Identity and server-owned metadata cannot be patched.
                for field in (
                    "name",
                    "namespace",
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "generation",
                ):
                    if field in old["metadata"]:
                        candidate["metadata"][field] = old["metadata"][field]
                    else:
                        candidate["metadata"].pop(field, None)
                candidate["apiVersion"], candidate["kind"] = old["apiVersion"], old["kind"]
            candidate["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            match self._replace(kind, old, candidate):
                case Failure(error):
                    return Failure(error)
                case Success(stored):
                    return Success(deep_copy(stored if stored is not None else candidate))
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(
        self, kind: str, old: KubeObject, candidate: KubeObject
    ) -> Result[KubeObject | None, KubeError]:
        """Store `candidate` in place of `old` (lock held). None: the object went away (its last
        finalizer was removed while it was being deleted). No-op writes change nothing.
        """
        match self._validate(kind, candidate, old):
            case Failure(error):
                return Failure(error)
            case Success(valid):
                candidate = valid
        if candidate == old:
            return Success(old)
        info = KINDS[kind]
        if info.generation and _spec_of(candidate) != _spec_of(old):
            candidate["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        key = (str(old["metadata"].get("namespace", "")), str(old["metadata"]["name"]))
        candidate["metadata"]["resourceVersion"] = self._next_rv()
        if candidate["metadata"].get("deletionTimestamp") and not candidate["metadata"].get("finalizers"):
            del self._objects[kind][key]
            self._record(kind, "DELETED", candidate, old)
            return Success(None)
        self._objects[kind][key] = candidate
        self._record(kind, "MODIFIED", candidate, old)
        return Success(candidate)

    def _request_delete(
        self, kind: str, namespace: str, name: str, uid: str | None, resource_version: str | None
    ) -> Result[None, KubeError]:
        with self._lock:
            self._count(kind, "delete")
            if (fault := self._take_fault("delete", kind)) is not None:
                return Failure(fault)
            return self._delete(kind, namespace, name, uid, resource_version)

    def _delete(
        self, kind: str, namespace: str, name: str, uid: str | None, resource_version: str | None
    ) -> Result[None, KubeError]:
        key = (namespace if KINDS[kind].namespaced else "", name)
        old = self._objects[kind].get(key)
        if old is None:
            return Failure(KubeNotFound(f"{kind} {namespace}/{name} not found"))
        metadata = old["metadata"]
        if uid is not None and uid != metadata["uid"]:
            return Failure(
                KubeConflict(
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {metadata['uid']}"
                )
            )
        if resource_version is not None and resource_version != metadata["resourceVersion"]:
            return Failure(
                KubeConflict(
                    f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                    f"ResourceVersion in object meta: {metadata['resourceVersion']}"
                )
            )
        if metadata.get("finalizers"):
            if metadata.get("deletionTimestamp"):
                return Success(None)
            candidate = deep_copy(old)
            candidate["metadata"]["deletionTimestamp"] = format_time(self._clock.now())
            candidate["metadata"]["deletionGracePeriodSeconds"] = 0
            if KINDS[kind].generation:
                candidate["metadata"]["generation"] = int(metadata.get("generation", 1)) + 1
            candidate["metadata"]["resourceVersion"] = self._next_rv()
            self._objects[kind][key] = candidate
            self._record(kind, "MODIFIED", candidate, old)
            return Success(None)
        gone = deep_copy(old)
        gone["metadata"]["resourceVersion"] = self._next_rv()
        del self._objects[kind][key]
        self._record(kind, "DELETED", gone, old)
        return Success(None)

    def _watch(
        self,
        kind: str,
        selector: LabelSelector,
        resource_version: str,
        timeout_seconds: float,
        transform: Callable[[KubeObject], T],
    ) -> Iterator[WatchItem[T]]:
        """Generator: events after `resource_version` ("" or "0": current objects as ADDED first)."""
        deadline = time.monotonic() + timeout_seconds
        with self._lock:
            self._count(kind, "watch")
            fault = self._take_fault("watch", kind)
            epoch = self._epoch
            pending: list[WatchItem[T]] = []
            if fault is None and resource_version in ("", "0"):
                cursor = self._rv
                pending = [
                    WatchEvent("ADDED", transform(deep_copy(obj)), obj["metadata"]["resourceVersion"])
                    for obj in self._objects[kind].values()
                    if labels_match(obj, selector)
                ]
            elif fault is None:
                try:
                    cursor = int(resource_version)
                except ValueError:
                    fault = KubeInvalid(f"invalid resourceVersion {resource_version!r}")
                    cursor = 0
                if fault is None and cursor < self._oldest_watchable:
                    fault = KubeGone(f"too old resource version: {cursor} ({self._oldest_watchable})")
        if fault is not None:
            yield WatchExpired(fault.message) if isinstance(fault, KubeGone) else WatchBroken(fault)
            return
        yield from pending
        while True:
            with self._lock:
                while True:
                    if self._epoch != epoch or cursor < self._oldest_watchable:
                        expired = True
                        break
                    expired = False
                    changes = self._changes_after(kind, cursor)
                    remaining = deadline - time.monotonic()
                    if changes or remaining <= 0 or self._closed:
                        break
                    self._changed[kind].wait(remaining)
                if not expired:
                    items = [
                        item for change in changes if (item := _as_watch_item(change, selector, transform))
                    ]
                    if changes:
                        cursor = changes[-1].rv
                    finished = not changes
                    bookmark = str(self._rv)
            if expired:
                yield WatchExpired("too old resource version")
                return
            yield from items
            if finished and self._closed:
                # Like a dropped connection, so a watch loop backs off instead of spinning.
                yield WatchBroken(KubeUnavailable("the in-memory cluster was closed"))
                return
            if finished:
                yield WatchBookmark(bookmark)
                return

    def _changes_after(self, kind: str, cursor: int) -> list[_Change]:
        found: list[_Change] = []
        for change in reversed(self._history_by_kind[kind]):
            if change.rv <= cursor:
                break
            found.append(change)
        found.reverse()
        return found


def _as_watch_item(
    change: _Change, selector: LabelSelector, transform: Callable[[KubeObject], T]
) -> WatchEvent[T] | None:
    """What a selector-filtered watch shows: objects entering the selection are ADDED, leaving it
    DELETED, as the API server reports them.
    """
    now_in = labels_match(change.obj, selector)
    was_in = change.previous is not None and labels_match(change.previous, selector)
    rv = str(change.rv)
    if change.type == "ADDED":
        return WatchEvent("ADDED", transform(deep_copy(change.obj)), rv) if now_in else None
    if change.type == "DELETED":
        return WatchEvent("DELETED", transform(deep_copy(change.obj)), rv) if was_in or now_in else None
    if now_in and was_in:
        return WatchEvent("MODIFIED", transform(deep_copy(change.obj)), rv)
    if now_in:
        return WatchEvent("ADDED", transform(deep_copy(change.obj)), rv)
    if was_in:
        return WatchEvent("DELETED", transform(deep_copy(change.obj)), rv)
    return None


def _spec_of(obj: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _stale(kind: str, name: str) -> KubeConflict:
    return KubeConflict(
        f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
