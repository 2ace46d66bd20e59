"""`KubernetesPort` timing wrapper: how long each Kubernetes API call took, per operation.

Wraps any `KubernetesPort` (the real `KubernetesApi` in production, the in-memory fake in the
harness) and reports `(operation, seconds)` for every request-response call to `observe`; the
composition root points `observe` at the `aivenator_kubernetes_latency` histogram. The clock is
passed in (a monotonic one), so a fake clock makes the observations deterministic.

Operation names follow the Go operator's `<Kind>_<Verb>` values (`Secret_Get`, `Secret_Create`,
`Secret_Update`, `AivenApplication_Update` for the status write), with the same scheme for the
calls it does not make (`Secret_List`, `Event_Create`, `Lease_Update`, ...). Watches are not
timed: a watch is a stream held open for minutes, not a call with a latency. Adding or removing
a finalizer is one `Secret_Update` observation (the port's read and guarded patch together).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from aivenator.domain.kubernetes_port import (
    EventType,
    KubeError,
    KubeObject,
    KubernetesPort,
    LabelSelector,
    Lease,
    ListResult,
    ObjectRef,
    WatchItem,
)
from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.references import WorkloadRefs
from returns.result import Result

T = TypeVar("T")

#: `observe(operation, seconds)`.
Observe = Callable[[str, float], None]


class TimedKubernetes:
    """A `KubernetesPort` that times every call of `inner` with `clock` and reports it."""

    def __init__(self, inner: KubernetesPort, clock: Callable[[], float], observe: Observe) -> None:
        self.inner = inner
        self._clock = clock
        self._observe = observe

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        start = self._clock()
        try:
            return call()
        finally:
            self._observe(operation, max(0.0, self._clock() - start))

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------------ Applications

    def list_applications(self) -> Result[ListResult[KubeObject], KubeError]:
        return self._timed("AivenApplication_List", self.inner.list_applications)

    def watch_applications(
        self, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self.inner.watch_applications(resource_version, timeout_seconds)

    def patch_application_status(
        self,
        namespace: str,
        name: str,
        status_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        return self._timed(
            "AivenApplication_Update",
            lambda: self.inner.patch_application_status(namespace, name, status_patch, resource_version),
        )

    def delete_application(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._timed(
            "AivenApplication_Delete",
            lambda: self.inner.delete_application(namespace, name, uid, resource_version),
        )

    # ------------------------------------------------------------------ Secrets

    def list_secrets(
        self, label_selector: LabelSelector, namespace: str | None = None
    ) -> Result[ListResult[KubeObject], KubeError]:
        return self._timed("Secret_List", lambda: self.inner.list_secrets(label_selector, namespace))

    def watch_secrets(
        self, label_selector: LabelSelector, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self.inner.watch_secrets(label_selector, resource_version, timeout_seconds)

    def get_secret(self, namespace: str, name: str) -> Result[KubeObject, KubeError]:
        return self._timed("Secret_Get", lambda: self.inner.get_secret(namespace, name))

    def create_secret(self, body: Mapping[str, object]) -> Result[KubeObject, KubeError]:
        return self._timed("Secret_Create", lambda: self.inner.create_secret(body))

    def patch_secret(
        self,
        namespace: str,
        name: str,
        merge_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        return self._timed(
            "Secret_Update",
            lambda: self.inner.patch_secret(namespace, name, merge_patch, resource_version),
        )

    def delete_secret(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._timed(
            "Secret_Delete", lambda: self.inner.delete_secret(namespace, name, uid, resource_version)
        )

    def add_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject, KubeError]:
        return self._timed(
            "Secret_Update", lambda: self.inner.add_secret_finalizer(namespace, name, finalizer)
        )

    def remove_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject | None, KubeError]:
        return self._timed(
            "Secret_Update", lambda: self.inner.remove_secret_finalizer(namespace, name, finalizer)
        )

    # ------------------------------------------------------------------ Workloads

    def list_workload_refs(self, kind: str) -> Result[ListResult[WorkloadRefs], KubeError]:
        return self._timed(f"{kind}_List", lambda: self.inner.list_workload_refs(kind))

    def watch_workload_refs(
        self, kind: str, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[WorkloadRefs]]:
        return self.inner.watch_workload_refs(kind, resource_version, timeout_seconds)

    # ------------------------------------------------------------------ AivenObjects

    def aiven_object_state(
        self, kind: AivenObjectKind, namespace: str, name: str
    ) -> Result[str | None, KubeError]:
        return self._timed(f"{kind}_Get", lambda: self.inner.aiven_object_state(kind, namespace, name))

    # ------------------------------------------------------------------ Events

    def record_event(
        self, involved: ObjectRef, type: EventType, reason: str, message: str
    ) -> Result[None, KubeError]:
        return self._timed("Event_Create", lambda: self.inner.record_event(involved, type, reason, message))

    # ------------------------------------------------------------------ Leases

    def get_lease(self, namespace: str, name: str) -> Result[Lease, KubeError]:
        return self._timed("Lease_Get", lambda: self.inner.get_lease(namespace, name))

    def create_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        return self._timed("Lease_Create", lambda: self.inner.create_lease(lease))

    def update_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        return self._timed("Lease_Update", lambda: self.inner.update_lease(lease))


__all__ = ["Observe", "TimedKubernetes"]
