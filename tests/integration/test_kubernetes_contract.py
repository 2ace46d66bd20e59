"""One contract for the Kubernetes port, run against the in-memory fake and a real API server.

Every case runs three times: `fake` (aivenator.adapters.fakes.kubernetes), `real-admin` (the real adapter
with a system:masters token) and `real-operator` (the real adapter with the operator's service
account token, so deploy/rbac.yaml must grant every verb the port uses). Test setup that the
operator itself never does (namespaces, AivenApplications, workloads, Aiven objects, reading
events) goes through a small admin harness per backend, not through the port.

410 Gone: the fake is forced with `expire_watches()`. On the real server, watches are served
from the API server's watch cache, which for each resource holds the events since the cache was
initialised. A custom resource's cache starts when its CRD is established, long after
resourceVersion "1", so watching AivenApplications from "1" is answered with 410 ("too old
resource version: 1 (N)"), reliably and at once. (Built-in kinds such as Secrets are cached from
server start, so "1" still resumes there; compacting etcd does not change that, since the cache
does not consult etcd's history. Checked against kube-apiserver v1.37.2.)
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import pytest
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.kubernetes_api import KubernetesApi
from aivenator.domain.kubernetes_port import (
    MANAGED_SECRETS,
    KubeAlreadyExists,
    KubeConflict,
    KubeForbidden,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeObject,
    KubernetesPort,
    KubeUnavailable,
    Lease,
    ObjectRef,
    WatchBookmark,
    WatchEvent,
    WatchExpired,
    WatchItem,
)
from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.references import WorkloadRefs
from returns.result import Failure, Success

from tests.integration.real_apiserver import OPERATOR_NAMESPACE, RealApiserver

T = TypeVar("T")

FINALIZER = "aivenator.aiven.nais.io/finalizer"
FOREIGN_FINALIZER = "example.com/someone-else"
#: Setting deletionTimestamp bumps metadata.generation (as kube-apiserver does for custom resources).
GENERATION_AFTER_DELETE_MARK = 2

#: (API path prefix, plural) for the admin harness of the real backend.
PATHS: Mapping[str, tuple[str, str]] = {
    "AivenApplication": ("/apis/aiven.nais.io/v1", "aivenapplications"),
    "OpenSearch": ("/apis/aiven.io/v1alpha1", "opensearches"),
    "Valkey": ("/apis/aiven.io/v1alpha1", "valkeys"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
}
STATUS_SUBRESOURCE = {"AivenApplication", "OpenSearch", "Valkey", "Deployment", "CronJob"}


# --------------------------------------------------------------------------- harness


class Admin(Protocol):
    """What tests need besides the port: cluster-admin powers."""

    def create_namespace(self, name: str) -> None: ...

    def apply(self, obj: Mapping[str, Any]) -> KubeObject:
        """Create the object; a given `status` is written too (through the status subresource)."""
        ...

    def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> KubeObject:
        """Merge patch of the main resource."""
        ...

    def events(self, namespace: str) -> list[KubeObject]: ...

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        """The object as stored (None: not found). The port has no single-object read of an
        AivenApplication: the operator reads them from its watch cache (RBAC grants no get)."""
        ...

    def too_old_resource_version(self) -> str:
        """A resourceVersion an AivenApplication watch can no longer resume from (410 Gone)."""
        ...


class FakeAdmin:
    def __init__(self, kube: FakeKubernetes) -> None:
        self.kube = kube

    def create_namespace(self, name: str) -> None:
        self.kube.create_namespace(name)

    def apply(self, obj: Mapping[str, Any]) -> KubeObject:
        return self.kube.apply(obj)

    def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> KubeObject:
        return self.kube.patch(kind, namespace, name, patch).unwrap()

    def events(self, namespace: str) -> list[KubeObject]:
        return self.kube.events(namespace)

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        return self.kube.get(kind, namespace, name)

    def too_old_resource_version(self) -> str:
        old = self.kube.resource_version
        self.kube.expire_watches()
        return old


class RealAdmin:
    def __init__(self, server: RealApiserver) -> None:
        self.api = server.admin_client()

    def _rest(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        method, url, headers, payload, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, header_params=headers, body=payload, post_params=post)
        data = response.read()  # type: ignore[no-untyped-call]  # the client's RESTResponse is unannotated
        assert 200 <= response.status < 300, f"{method} {path}: HTTP {response.status}: {data[:500]!r}"
        return json.loads(data)

    def _collection(self, kind: str, namespace: str) -> str:
        prefix, plural = PATHS[kind]
        return f"{prefix}/namespaces/{namespace}/{plural}"

    def create_namespace(self, name: str) -> None:
        self._rest(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
        # No controller-manager runs, so nobody creates the default ServiceAccount Pods need.
        self.apply(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
        )

    def apply(self, obj: Mapping[str, Any]) -> KubeObject:
        kind, namespace = obj["kind"], obj["metadata"]["namespace"]
        created: KubeObject = self._rest("POST", self._collection(kind, namespace), dict(obj))
        if "status" in obj and kind in STATUS_SUBRESOURCE:
            path = f"{self._collection(kind, namespace)}/{obj['metadata']['name']}/status"
            created = self._rest("PATCH", path, {"status": obj["status"]}, "application/merge-patch+json")
        return created

    def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> KubeObject:
        path = f"{self._collection(kind, namespace)}/{name}"
        result: KubeObject = self._rest("PATCH", path, dict(patch), "application/merge-patch+json")
        return result

    def events(self, namespace: str) -> list[KubeObject]:
        items: list[KubeObject] = self._rest("GET", self._collection("Event", namespace))["items"]
        return items

    def get(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        path = f"{self._collection(kind, namespace)}/{name}"
        method, url, headers, payload, post = self.api.param_serialize(
            method="GET", resource_path=path, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, header_params=headers, body=payload, post_params=post)
        data = response.read()  # type: ignore[no-untyped-call]  # the client's RESTResponse is unannotated
        if response.status == 404:
            return None
        assert response.status == 200, f"GET {path}: HTTP {response.status}: {data[:500]!r}"
        found: KubeObject = json.loads(data)
        return found

    def too_old_resource_version(self) -> str:
        return "1"


@dataclass
class Backend:
    name: str
    port: KubernetesPort
    admin: Admin
    #: Seconds a watch waits when a case needs "no further events" (the real server needs >= 1).
    quiet_timeout: float
    #: Closes the port (not a port role: lifecycle belongs to the composition root).
    close: Callable[[], None]


@pytest.fixture(
    params=[
        "fake",
        pytest.param("real-admin", marks=pytest.mark.real_apiserver),
        pytest.param("real-operator", marks=pytest.mark.real_apiserver),
    ]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "fake":
        kube = FakeKubernetes(namespaces=(OPERATOR_NAMESPACE,))
        yield Backend("fake", kube, FakeAdmin(kube), quiet_timeout=0.2, close=kube.close)
        kube.close()
        return
    server: RealApiserver = request.getfixturevalue("real_apiserver")
    token = server.admin_token if request.param == "real-admin" else server.operator_token
    port = KubernetesApi.from_token(server.host, token, str(server.ca_file))
    admin = RealAdmin(server)
    yield Backend(request.param, port, admin, quiet_timeout=1.0, close=port.close)
    port.close()
    admin.api.close()  # type: ignore[no-untyped-call]  # the kubernetes ApiClient is unannotated


def stored_app(backend: Backend, namespace: str, name: str) -> KubeObject:
    found = backend.admin.get("AivenApplication", namespace, name)
    assert found is not None, f"AivenApplication {namespace}/{name} not found"
    return found


@pytest.fixture
def ns(backend: Backend) -> str:
    name = f"c-{uuid.uuid4().hex[:10]}"
    backend.admin.create_namespace(name)
    return name


# --------------------------------------------------------------------------- builders


def managed_secret(namespace: str, name: str, **string_data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {**MANAGED_SECRETS, "app": "demo"}},
        "stringData": string_data,
    }


def application(namespace: str, name: str, pool: str = "dev-nais-dev") -> dict[str, Any]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"kafka": {"pool": pool, "secretName": f"{name}-kafka"}},
    }


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def events_of(items: Iterator[WatchItem[T]], count: int, seconds: float = 20.0) -> list[WatchEvent[T]]:
    """The first `count` change events of a watch (stops reading once they are in)."""
    found: list[WatchEvent[T]] = []
    deadline = time.monotonic() + seconds
    try:
        for item in items:
            if isinstance(item, WatchEvent):
                found.append(item)
            elif not isinstance(item, WatchBookmark):
                pytest.fail(f"watch ended with {item!r}")
            if len(found) >= count or time.monotonic() > deadline:
                break
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
    return found


def until(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


# --------------------------------------------------------------------------- Secrets


def test_created_secret_has_identity_and_base64_data_folded_from_string_data(
    backend: Backend, ns: str
) -> None:
    created = backend.port.create_secret(managed_secret(ns, "creds", USER="alice")).unwrap()
    metadata = created["metadata"]
    assert metadata["uid"] and metadata["resourceVersion"] and metadata["creationTimestamp"]
    assert created["data"] == {"USER": b64("alice")}
    assert "stringData" not in created
    assert created["type"] == "Opaque"
    got = backend.port.get_secret(ns, "creds").unwrap()
    assert got["data"] == created["data"]
    assert "managedFields" not in got["metadata"]
    assert got["metadata"]["resourceVersion"] == metadata["resourceVersion"]


def test_creating_an_existing_secret_is_already_exists(backend: Backend, ns: str) -> None:
    backend.port.create_secret(managed_secret(ns, "creds")).unwrap()
    assert isinstance(backend.port.create_secret(managed_secret(ns, "creds")).failure(), KubeAlreadyExists)


def test_missing_things_are_not_found(backend: Backend, ns: str) -> None:
    assert isinstance(backend.port.get_secret(ns, "nope").failure(), KubeNotFound)
    assert isinstance(backend.port.patch_secret(ns, "nope", {"data": {}}).failure(), KubeNotFound)
    assert isinstance(backend.port.delete_secret(ns, "nope").failure(), KubeNotFound)
    absent_namespace = managed_secret(f"absent-{uuid.uuid4().hex[:8]}", "creds")
    assert isinstance(backend.port.create_secret(absent_namespace).failure(), KubeNotFound)


def test_only_secrets_matching_the_selector_are_listed(backend: Backend, ns: str) -> None:
    backend.port.create_secret(managed_secret(ns, "managed")).unwrap()
    unmanaged = {"metadata": {"name": "unmanaged", "namespace": ns, "labels": {"type": "other"}}}
    backend.port.create_secret(unmanaged).unwrap()
    listed = backend.port.list_secrets(MANAGED_SECRETS, namespace=ns).unwrap()
    assert [s["metadata"]["name"] for s in listed.items] == ["managed"]
    assert listed.items[0]["kind"] == "Secret"
    assert listed.resource_version
    everywhere = backend.port.list_secrets(MANAGED_SECRETS).unwrap()
    assert (ns, "managed") in {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in everywhere.items}
    assert all(s["metadata"]["labels"]["type"] == MANAGED_SECRETS["type"] for s in everywhere.items)


def test_lists_are_complete_across_pages(backend: Backend, ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("aivenator.adapters.kubernetes_api.LIST_PAGE_SIZE", 2)
    for i in range(5):
        backend.port.create_secret(managed_secret(ns, f"s{i}")).unwrap()
    listed = backend.port.list_secrets(MANAGED_SECRETS, namespace=ns).unwrap()
    assert sorted(s["metadata"]["name"] for s in listed.items) == [f"s{i}" for i in range(5)]
    backend.port.create_secret(managed_secret(ns, "later")).unwrap()
    seen = events_of(backend.port.watch_secrets(MANAGED_SECRETS, listed.resource_version, 10), 1)
    assert [e.obj["metadata"]["name"] for e in seen] == ["later"]


def test_a_patch_keeps_what_other_controllers_wrote(backend: Backend, ns: str) -> None:
    body = managed_secret(ns, "creds", OURS="1", THEIRS="x")
    body["metadata"]["annotations"] = {"someone/else": "keep"}
    body["metadata"]["labels"]["foreign"] = "keep"
    body["metadata"]["finalizers"] = [FOREIGN_FINALIZER]
    backend.port.create_secret(body).unwrap()
    patched = backend.port.patch_secret(
        ns,
        "creds",
        {
            "metadata": {"labels": {"app": "demo2"}, "annotations": {"ours": "yes"}},
            "data": {"OURS": b64("2"), "GONE": None},
        },
    ).unwrap()
    metadata = patched["metadata"]
    assert metadata["labels"] == {**MANAGED_SECRETS, "app": "demo2", "foreign": "keep"}
    assert metadata["annotations"] == {"someone/else": "keep", "ours": "yes"}
    assert metadata["finalizers"] == [FOREIGN_FINALIZER]
    assert patched["data"] == {"OURS": b64("2"), "THEIRS": b64("x")}
    removed = backend.port.patch_secret(ns, "creds", {"data": {"THEIRS": None}}).unwrap()
    assert removed["data"] == {"OURS": b64("2")}
    backend.port.remove_secret_finalizer(ns, "creds", FOREIGN_FINALIZER).unwrap()


def test_string_data_in_a_patch_is_folded_into_data(backend: Backend, ns: str) -> None:
    backend.port.create_secret(managed_secret(ns, "creds", A="1", B="2")).unwrap()
    patched = backend.port.patch_secret(ns, "creds", {"stringData": {"A": "one", "C": "three"}}).unwrap()
    assert patched["data"] == {"A": b64("one"), "B": b64("2"), "C": b64("three")}
    assert "stringData" not in patched
    assert backend.port.get_secret(ns, "creds").unwrap()["data"] == patched["data"]


def test_a_no_change_patch_does_not_bump_the_resource_version(backend: Backend, ns: str) -> None:
    created = backend.port.create_secret(managed_secret(ns, "creds", A="1")).unwrap()
    same = backend.port.patch_secret(ns, "creds", {"data": {"A": b64("1")}}).unwrap()
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_a_stale_resource_version_is_a_conflict_and_the_current_one_wins(backend: Backend, ns: str) -> None:
    created = backend.port.create_secret(managed_secret(ns, "creds", A="1")).unwrap()
    stale = created["metadata"]["resourceVersion"]
    fresh = backend.port.patch_secret(ns, "creds", {"data": {"A": b64("2")}}, resource_version=stale).unwrap()
    again = backend.port.patch_secret(ns, "creds", {"data": {"A": b64("3")}}, resource_version=stale)
    assert isinstance(again.failure(), KubeConflict)
    assert backend.port.get_secret(ns, "creds").unwrap()["data"]["A"] == b64("2")
    current = fresh["metadata"]["resourceVersion"]
    assert isinstance(backend.port.patch_secret(ns, "creds", {"data": {"A": b64("3")}}, current), Success)


def test_finalizers_are_added_and_removed_without_losing_others(backend: Backend, ns: str) -> None:
    body = managed_secret(ns, "creds")
    body["metadata"]["finalizers"] = [FOREIGN_FINALIZER]
    backend.port.create_secret(body).unwrap()
    added = backend.port.add_secret_finalizer(ns, "creds", FINALIZER).unwrap()
    assert added["metadata"]["finalizers"] == [FOREIGN_FINALIZER, FINALIZER]
    rv = added["metadata"]["resourceVersion"]
    again = backend.port.add_secret_finalizer(ns, "creds", FINALIZER).unwrap()
    assert again["metadata"]["resourceVersion"] == rv
    removed = backend.port.remove_secret_finalizer(ns, "creds", FINALIZER).unwrap()
    assert removed is not None
    assert removed["metadata"]["finalizers"] == [FOREIGN_FINALIZER]
    backend.port.remove_secret_finalizer(ns, "creds", FOREIGN_FINALIZER).unwrap()
    assert "finalizers" not in backend.port.get_secret(ns, "creds").unwrap()["metadata"]
    assert isinstance(backend.port.add_secret_finalizer(ns, "absent", FINALIZER).failure(), KubeNotFound)
    assert backend.port.remove_secret_finalizer(ns, "absent", FINALIZER) == Success(None)


def test_deleting_a_secret_with_a_finalizer_marks_it_and_removing_the_finalizer_removes_it(
    backend: Backend, ns: str
) -> None:
    backend.port.create_secret(managed_secret(ns, "creds")).unwrap()
    backend.port.add_secret_finalizer(ns, "creds", FINALIZER).unwrap()
    assert backend.port.delete_secret(ns, "creds") == Success(None)
    marked = backend.port.get_secret(ns, "creds").unwrap()
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == [FINALIZER]
    assert backend.port.delete_secret(ns, "creds") == Success(None)
    assert backend.port.remove_secret_finalizer(ns, "creds", FINALIZER) == Success(None)
    assert isinstance(backend.port.get_secret(ns, "creds").failure(), KubeNotFound)


def test_delete_preconditions_protect_against_races(backend: Backend, ns: str) -> None:
    created = backend.port.create_secret(managed_secret(ns, "creds")).unwrap()
    uid, rv = created["metadata"]["uid"], created["metadata"]["resourceVersion"]
    assert isinstance(backend.port.delete_secret(ns, "creds", uid=str(uuid.uuid4())).failure(), KubeConflict)
    backend.port.patch_secret(ns, "creds", {"metadata": {"labels": {"touched": "yes"}}}).unwrap()
    assert isinstance(
        backend.port.delete_secret(ns, "creds", uid=uid, resource_version=rv).failure(), KubeConflict
    )
    assert isinstance(backend.port.get_secret(ns, "creds"), Success)
    current = backend.port.get_secret(ns, "creds").unwrap()["metadata"]["resourceVersion"]
    assert backend.port.delete_secret(ns, "creds", uid=uid, resource_version=current) == Success(None)
    assert isinstance(backend.port.get_secret(ns, "creds").failure(), KubeNotFound)


def test_invalid_secret_data_is_invalid_and_the_error_does_not_echo_it(backend: Backend, ns: str) -> None:
    value = "not-base64-" + uuid.uuid4().hex + "!"
    body = {"metadata": {"name": "bad", "namespace": ns}, "data": {"K": value}}
    match backend.port.create_secret(body):
        case Failure(KubeInvalid(message)):
            assert value not in message
        case other:
            pytest.fail(f"expected KubeInvalid, got {other!r}")


def test_an_application_with_a_foreign_finalizer_is_only_marked_when_deleted(
    backend: Backend, ns: str
) -> None:
    body = application(ns, "app1")
    body["metadata"]["finalizers"] = [FOREIGN_FINALIZER]
    created = backend.admin.apply(body)
    assert backend.port.delete_application(ns, "app1") == Success(None)
    marked = stored_app(backend, ns, "app1")
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["uid"] == created["metadata"]["uid"]
    assert marked["metadata"]["generation"] == GENERATION_AFTER_DELETE_MARK
    backend.admin.patch("AivenApplication", ns, "app1", {"metadata": {"finalizers": None}})
    assert backend.admin.get("AivenApplication", ns, "app1") is None


# --------------------------------------------------------------------------- watches


def test_a_watch_resumes_from_a_resource_version(backend: Backend, ns: str) -> None:
    start = backend.port.list_secrets(MANAGED_SECRETS).unwrap().resource_version
    backend.port.create_secret(managed_secret(ns, "w", A="1")).unwrap()
    backend.port.patch_secret(ns, "w", {"data": {"A": b64("2")}}).unwrap()
    backend.port.delete_secret(ns, "w").unwrap()
    seen = [
        e
        for e in events_of(backend.port.watch_secrets(MANAGED_SECRETS, start, 10), 3)
        if e.obj["metadata"]["namespace"] == ns
    ]
    assert [(e.type, e.obj["metadata"]["name"]) for e in seen] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    assert seen[1].obj["data"]["A"] == b64("2")
    assert all(e.resource_version == e.obj["metadata"]["resourceVersion"] for e in seen)
    resumed = events_of(backend.port.watch_secrets(MANAGED_SECRETS, seen[0].resource_version, 10), 2)
    assert [e.type for e in resumed if e.obj["metadata"]["namespace"] == ns] == ["MODIFIED", "DELETED"]


def test_a_watch_ends_quietly_with_a_bookmark_or_nothing_when_nothing_happens(
    backend: Backend, ns: str
) -> None:
    start = backend.port.list_secrets(MANAGED_SECRETS, namespace=ns).unwrap().resource_version
    items = list(backend.port.watch_secrets({**MANAGED_SECRETS, "app": ns}, start, backend.quiet_timeout))
    assert all(isinstance(item, WatchBookmark) for item in items)


def test_a_watch_from_a_too_old_resource_version_is_expired_and_a_fresh_list_recovers(
    backend: Backend, ns: str
) -> None:
    backend.admin.apply(application(ns, "before"))
    old = backend.admin.too_old_resource_version()
    first = list(backend.port.watch_applications(old, 5))
    assert len(first) == 1 and isinstance(first[0], WatchExpired)
    fresh = backend.port.list_applications().unwrap().resource_version
    backend.admin.apply(application(ns, "after"))
    seen = events_of(backend.port.watch_applications(fresh, 10), 1)
    assert [(e.type, e.obj["metadata"]["name"]) for e in seen] == [("ADDED", "after")]


def test_a_selector_watch_shows_objects_entering_and_leaving_the_selection(backend: Backend, ns: str) -> None:
    start = backend.port.list_secrets(MANAGED_SECRETS).unwrap().resource_version
    backend.port.create_secret({"metadata": {"name": "plain", "namespace": ns}}).unwrap()
    backend.port.patch_secret(ns, "plain", {"metadata": {"labels": dict(MANAGED_SECRETS)}}).unwrap()
    backend.port.patch_secret(ns, "plain", {"metadata": {"labels": {"type": None}}}).unwrap()
    seen = [
        e
        for e in events_of(backend.port.watch_secrets(MANAGED_SECRETS, start, 10), 2)
        if e.obj["metadata"]["namespace"] == ns
    ]
    assert [(e.type, e.obj["metadata"]["name"]) for e in seen] == [("ADDED", "plain"), ("DELETED", "plain")]


# --------------------------------------------------------------------------- AivenApplications


def test_applications_are_listed_watched_and_read(backend: Backend, ns: str) -> None:
    start = backend.port.list_applications().unwrap().resource_version
    backend.admin.apply(application(ns, "app1"))
    listed = [a for a in backend.port.list_applications().unwrap().items if a["metadata"]["namespace"] == ns]
    assert [(a["kind"], a["metadata"]["name"]) for a in listed] == [("AivenApplication", "app1")]
    seen = events_of(backend.port.watch_applications(start, 10), 1)
    assert [(e.type, e.obj["metadata"]["name"], e.obj["kind"]) for e in seen] == [
        ("ADDED", "app1", "AivenApplication")
    ]
    got = stored_app(backend, ns, "app1")
    assert got["spec"]["kafka"]["pool"] == "dev-nais-dev"
    assert got["metadata"]["generation"] == 1


def test_status_and_spec_are_written_separately_and_generation_counts_spec_changes(
    backend: Backend, ns: str
) -> None:
    backend.admin.apply(application(ns, "app1"))
    status = {"synchronizationHash": "abc", "conditions": [{"type": "Ready", "status": "True"}]}
    written = backend.port.patch_application_status(ns, "app1", status).unwrap()
    assert written["status"] == status
    assert written["spec"]["kafka"]["pool"] == "dev-nais-dev"
    assert written["metadata"]["generation"] == 1
    # A main-resource patch that also carries status changes the spec only.
    changed = backend.admin.patch(
        "AivenApplication",
        ns,
        "app1",
        {"spec": {"kafka": {"pool": "other"}}, "status": {"synchronizationHash": "x"}},
    )
    assert changed["spec"]["kafka"]["pool"] == "other"
    assert changed["status"]["synchronizationHash"] == "abc"
    assert changed["metadata"]["generation"] == 2
    # A status patch carrying spec changes the status only.
    backend.port.patch_application_status(
        ns, "app1", {"synchronizationHash": None, "observedGeneration": 2}
    ).unwrap()
    got = stored_app(backend, ns, "app1")
    assert got["status"] == {"conditions": [{"type": "Ready", "status": "True"}], "observedGeneration": 2}
    assert got["spec"]["kafka"]["pool"] == "other"
    assert got["metadata"]["generation"] == 2


def test_a_status_patch_with_a_stale_resource_version_is_a_conflict(backend: Backend, ns: str) -> None:
    created = backend.admin.apply(application(ns, "app1"))
    stale = created["metadata"]["resourceVersion"]
    backend.port.patch_application_status(ns, "app1", {"synchronizationHash": "a"}, stale).unwrap()
    again = backend.port.patch_application_status(ns, "app1", {"synchronizationHash": "b"}, stale)
    assert isinstance(again.failure(), KubeConflict)
    assert stored_app(backend, ns, "app1")["status"]["synchronizationHash"] == "a"


def test_an_application_is_deleted_only_when_its_uid_still_matches(backend: Backend, ns: str) -> None:
    created = backend.admin.apply(application(ns, "app1"))
    assert isinstance(
        backend.port.delete_application(ns, "app1", uid=str(uuid.uuid4())).failure(), KubeConflict
    )
    assert backend.port.delete_application(ns, "app1", uid=created["metadata"]["uid"]) == Success(None)
    assert backend.admin.get("AivenApplication", ns, "app1") is None


# --------------------------------------------------------------------------- workloads, Aiven objects


def pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": "example.invalid/app:1",
                    "envFrom": [{"secretRef": {"name": "from-env"}}],
                    "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "from-key", "key": "k"}}}],
                }
            ],
            "volumes": [
                {"name": "v1", "secret": {"secretName": "from-volume"}},
                {"name": "v2", "projected": {"sources": [{"secret": {"name": "from-projected"}}]}},
            ],
        },
    }


def deployment(namespace: str, name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "example.invalid/app:1",
                            "envFrom": [{"secretRef": {"name": secret}}],
                        }
                    ]
                },
            },
        },
    }


def cronjob(namespace: str, name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "example.invalid/job:1"}],
                            "volumes": [{"name": "s", "secret": {"secretName": secret}}],
                        }
                    }
                }
            },
        },
    }


def refs_in(result: list[WorkloadRefs] | tuple[WorkloadRefs, ...], namespace: str) -> set[WorkloadRefs]:
    return {r for r in result if r.namespace == namespace}


def test_workloads_are_seen_as_the_secret_names_they_refer_to(backend: Backend, ns: str) -> None:
    start = backend.port.list_workload_refs("Deployment").unwrap().resource_version
    backend.admin.apply(pod(ns, "p"))
    backend.admin.apply(deployment(ns, "d", "deploy-secret"))
    backend.admin.apply(cronjob(ns, "c", "cron-secret"))
    pods = backend.port.list_workload_refs("Pod").unwrap().items
    assert refs_in(pods, ns) == {
        WorkloadRefs(ns, "Pod", "p", frozenset({"from-env", "from-key", "from-volume", "from-projected"}))
    }
    deployments = backend.port.list_workload_refs("Deployment").unwrap().items
    assert refs_in(deployments, ns) == {WorkloadRefs(ns, "Deployment", "d", frozenset({"deploy-secret"}))}
    cronjobs = backend.port.list_workload_refs("CronJob").unwrap().items
    assert refs_in(cronjobs, ns) == {WorkloadRefs(ns, "CronJob", "c", frozenset({"cron-secret"}))}
    seen = events_of(backend.port.watch_workload_refs("Deployment", start, 10), 1)
    assert [(e.type, e.obj) for e in seen] == [
        ("ADDED", WorkloadRefs(ns, "Deployment", "d", frozenset({"deploy-secret"})))
    ]


def test_aiven_objects_report_their_state(backend: Backend, ns: str) -> None:
    backend.admin.apply(
        {
            "apiVersion": "aiven.io/v1alpha1",
            "kind": "OpenSearch",
            "metadata": {"name": f"opensearch-{ns}-logs", "namespace": ns},
            "spec": {"plan": "startup-4"},
            "status": {"state": "RUNNING"},
        }
    )
    backend.admin.apply(
        {
            "apiVersion": "aiven.io/v1alpha1",
            "kind": "Valkey",
            "metadata": {"name": f"valkey-{ns}-cache", "namespace": ns},
            "spec": {},
        }
    )
    assert backend.port.aiven_object_state(AivenObjectKind.OPENSEARCH, ns, f"opensearch-{ns}-logs") == Success("RUNNING")
    assert backend.port.aiven_object_state(AivenObjectKind.VALKEY, ns, f"valkey-{ns}-cache") == Success("")
    assert backend.port.aiven_object_state(AivenObjectKind.VALKEY, ns, "valkey-elsewhere") == Success(None)
    assert backend.port.aiven_object_state(AivenObjectKind.OPENSEARCH, "default", f"opensearch-{ns}-logs") == Success(None)


# --------------------------------------------------------------------------- events, leases


def test_events_are_recorded_against_the_object(backend: Backend, ns: str) -> None:
    created = backend.admin.apply(application(ns, "app1"))
    ref = ObjectRef("aiven.nais.io/v1", "AivenApplication", ns, "app1", created["metadata"]["uid"])
    assert backend.port.record_event(ref, "Warning", "AivenFailure", "Kafka pool not allowed") == Success(
        None
    )
    assert until(lambda: len(backend.admin.events(ns)) == 1)
    event = backend.admin.events(ns)[0]
    assert (event["type"], event["reason"], event["message"]) == (
        "Warning",
        "AivenFailure",
        "Kafka pool not allowed",
    )
    involved = event["involvedObject"]
    assert (involved["kind"], involved["name"], involved["uid"]) == ("AivenApplication", "app1", ref.uid)


def test_a_lease_is_created_once_and_updated_under_optimistic_locking(backend: Backend) -> None:
    now = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)
    name = f"lease-{uuid.uuid4().hex[:8]}"
    wanted = Lease(OPERATOR_NAMESPACE, name, "replica-a", 15, now, now, 0)
    created = backend.port.create_lease(wanted).unwrap()
    assert created.resource_version
    assert (created.holder_identity, created.lease_duration_seconds, created.renew_time) == (
        "replica-a",
        15,
        now,
    )
    assert isinstance(backend.port.create_lease(wanted).failure(), KubeAlreadyExists)
    later = now + timedelta(seconds=5)
    renewed = backend.port.update_lease(
        Lease(OPERATOR_NAMESPACE, name, "replica-a", 15, now, later, 0, created.resource_version)
    ).unwrap()
    assert renewed.renew_time == later
    assert renewed.resource_version != created.resource_version
    stale = Lease(OPERATOR_NAMESPACE, name, "replica-b", 15, later, later, 1, created.resource_version)
    assert isinstance(backend.port.update_lease(stale).failure(), KubeConflict)
    assert backend.port.get_lease(OPERATOR_NAMESPACE, name).unwrap() == renewed
    assert isinstance(backend.port.get_lease(OPERATOR_NAMESPACE, "absent-lease").failure(), KubeNotFound)


def test_closing_the_port_ends_a_running_watch(backend: Backend, ns: str) -> None:
    start = backend.port.list_applications().unwrap().resource_version
    done = threading.Event()
    seen: list[object] = []

    def consume() -> None:
        seen.extend(backend.port.watch_applications(start, 60))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.5)
    backend.close()
    assert done.wait(10), "watch still running after close()"


# --------------------------------------------------------------------------- RBAC (real only)


@pytest.mark.real_apiserver
def test_the_operator_token_is_refused_what_rbac_does_not_grant(real_apiserver: RealApiserver) -> None:
    port = KubernetesApi.from_token(
        real_apiserver.host, real_apiserver.operator_token, str(real_apiserver.ca_file)
    )
    try:
        outside = Lease("default", "not-ours", "x", 15, None, None, 0)
        assert isinstance(port.create_lease(outside).failure(), KubeForbidden)
        assert isinstance(port.get_lease("default", "not-ours").failure(), KubeForbidden)
    finally:
        port.close()


@pytest.mark.real_apiserver
def test_a_broken_connection_is_unavailable_not_an_exception(real_apiserver: RealApiserver) -> None:
    port = KubernetesApi.from_token(
        "https://127.0.0.1:9", real_apiserver.admin_token, str(real_apiserver.ca_file)
    )
    try:
        match port.get_secret("default", "x"):
            case Failure(error):
                assert type(error).__name__ == "KubeUnavailable"
            case other:
                pytest.fail(f"expected a failure, got {other!r}")
        items = list(port.watch_secrets(MANAGED_SECRETS, "0", 1))
        assert len(items) == 1 and type(items[0]).__name__ == "WatchBroken"
    finally:
        port.close()


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (404, {"reason": "NotFound", "message": "gone"}, {}, KubeNotFound("gone")),
        (409, {"reason": "AlreadyExists", "message": "exists"}, {}, KubeAlreadyExists("exists")),
        (409, {"reason": "Conflict", "message": "stale"}, {}, KubeConflict("stale")),
        (410, {"reason": "Expired", "message": "too old"}, {}, KubeGone("too old")),
        (403, {"reason": "Forbidden", "message": "no"}, {}, KubeForbidden("no")),
        (422, {"reason": "Invalid", "message": "bad"}, {}, KubeInvalid("bad")),
        (
            429,
            {"reason": "TooManyRequests", "message": "slow"},
            {"Retry-After": "7"},
            KubeUnavailable("slow", 7.0),
        ),
        (503, None, {}, KubeUnavailable("HTTP 503", None)),
    ],
)
def test_api_server_answers_are_classified_once(
    status: int, body: dict[str, str] | None, headers: dict[str, str], expected: object
) -> None:
    """No server needed: the real adapter's mapping from HTTP status to error values."""
    from aivenator.adapters.kubernetes_api import _status_error

    data = json.dumps({"kind": "Status", **body}).encode() if body is not None else b"<html>oops</html>"
    assert _status_error(status, data, headers) == expected


# --------------------------------------------------------------------------- field manager


def managers(obj: Mapping[str, Any], subresource: str = "") -> set[str]:
    """Field managers named in `managedFields` for the main resource or one subresource."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return {str(e.get("manager")) for e in entries if str(e.get("subresource") or "") == subresource}


def test_every_write_names_the_field_manager_aivenator(real_apiserver: RealApiserver) -> None:
    """managedFields tell a reader which fields this operator wrote: every create, patch and
    replace of the real adapter (operator token, so RBAC too) names `aivenator`, never the
    client's default `OpenAPI-Generator`."""
    port = KubernetesApi.from_token(
        real_apiserver.host, real_apiserver.operator_token, str(real_apiserver.ca_file)
    )
    admin = RealAdmin(real_apiserver)
    try:
        ns = f"fm-{uuid.uuid4().hex[:10]}"
        admin.create_namespace(ns)
        port.create_secret(managed_secret(ns, "s1", A="1")).unwrap()
        port.patch_secret(ns, "s1", {"stringData": {"B": "2"}}).unwrap()
        port.add_secret_finalizer(ns, "s1", FINALIZER).unwrap()
        secret = admin._rest("GET", f"/api/v1/namespaces/{ns}/secrets/s1")
        assert managers(secret) == {"aivenator"}, secret["metadata"]["managedFields"]

        created = admin.apply(application(ns, "app1"))
        port.patch_application_status(ns, "app1", {"synchronizationHash": "abc"}).unwrap()
        app = admin._rest("GET", f"/apis/aiven.nais.io/v1/namespaces/{ns}/aivenapplications/app1")
        assert managers(app, "status") == {"aivenator"}, app["metadata"]["managedFields"]

        ref = ObjectRef("aiven.nais.io/v1", "AivenApplication", ns, "app1", created["metadata"]["uid"])
        port.record_event(ref, "Normal", "Synchronized", "done").unwrap()
        assert until(lambda: len(admin.events(ns)) == 1)
        assert managers(admin.events(ns)[0]) == {"aivenator"}

        now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
        name = f"lease-{uuid.uuid4().hex[:8]}"
        lease = port.create_lease(Lease(OPERATOR_NAMESPACE, name, "replica-a", 15, now, now, 0)).unwrap()
        later = now + timedelta(seconds=5)
        port.update_lease(
            Lease(OPERATOR_NAMESPACE, name, "replica-a", 15, now, later, 0, lease.resource_version)
        ).unwrap()
        raw_lease = admin._rest(
            "GET", f"/apis/coordination.k8s.io/v1/namespaces/{OPERATOR_NAMESPACE}/leases/{name}"
        )
        assert managers(raw_lease) == {"aivenator"}, raw_lease["metadata"]["managedFields"]
        # Leave nothing a later test's operator (the server is shared) would pick up.
        port.remove_secret_finalizer(ns, "s1", FINALIZER).unwrap()
        port.delete_secret(ns, "s1").unwrap()
        port.delete_application(ns, "app1").unwrap()
    finally:
        port.close()
        admin.api.close()  # type: ignore[no-untyped-call]  # the kubernetes ApiClient is unannotated
