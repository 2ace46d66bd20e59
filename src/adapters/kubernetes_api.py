"""The Kubernetes port over a real API server, with the official `kubernetes` client.

This is the only module that imports `kubernetes`. It uses the client for what it is good at
(configuration from a kubeconfig or the in-cluster service account, authentication, TLS, the
connection pool) and talks JSON to the REST paths itself: the client's model classes are slow to
build and heavy to keep, and the operator works on plain dicts anyway. Lists are paged so a large
cluster's Pods never sit in memory at once; workloads are reduced to `WorkloadRefs` page by page.

Writes are JSON merge patches of the operator's own fields (or creates), never whole-object
replaces, except the Lease, which the operator owns outright. Every write names the field
manager `aivenator` (query parameter `fieldManager`), so `metadata.managedFields` say which
fields this operator set instead of the client's default `OpenAPI-Generator`. Every failure
becomes a `KubeError` value once, here; error messages are the API server's `Status.message`,
cut short, and never a request body (which may hold Secret data).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import urllib3
from aivenator.domain.kubernetes_port import (
    EventType,
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeForbidden,
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
    WatchExpired,
    WatchItem,
)
from aivenator.domain.labels import AivenObjectKind
from aivenator.domain.references import WORKLOAD_KINDS, WorkloadRefs, workload_refs
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from returns.result import Failure, Result, Success
from urllib3 import BaseHTTPResponse

from .kubernetes_common import (
    add_finalizer,
    deep_copy,
    format_micro_time,
    format_time,
    lease_body,
    lease_from,
    remove_finalizer,
    selector_string,
)

T = TypeVar("T")
_log = logging.getLogger("aivenator.kubernetes")

MERGE_PATCH = "application/merge-patch+json"
JSON = "application/json"

#: `fieldManager` of every create, patch and replace: how `managedFields` name this operator.
FIELD_MANAGER = "aivenator"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

#: Page size for lists: bounds the JSON held at once while listing a large cluster.
LIST_PAGE_SIZE = 500
#: Longest error message kept from an API server answer.
MESSAGE_LIMIT = 300

APPLICATIONS = "/apis/aiven.nais.io/v1"
#: (API path prefix, plural) per workload kind.
WORKLOAD_PATHS: Mapping[str, tuple[str, str]] = {
    "Pod": ("/api/v1", "pods"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "Job": ("/apis/batch/v1", "jobs"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
}
#: Plurals of Aiven's own operator's resources (aiven.io/v1alpha1).
AIVEN_PLURALS: Mapping[str, str] = {"OpenSearch": "opensearches", "Valkey": "valkeys"}


class KubernetesApi:
    """`KubernetesPort` over HTTPS. Thread-safe: share one instance between workers and watches.

    Build with `from_kubeconfig`, `in_cluster` or `from_token`; nothing is requested until a
    method is called. `close()` also ends running watches.
    """

    def __init__(self, api_client: k8s.ApiClient, request_timeout: float = 30.0) -> None:
        self._api = api_client
        self._timeout = request_timeout
        self._watches_lock = threading.Lock()
        self._watches: set[BaseHTTPResponse] = set()

    @classmethod
    def from_kubeconfig(
        cls, path: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubernetesApi:
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]  # kubernetes.config is unannotated
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
        return cls(_client(configuration), **kwargs)

    @classmethod
    def in_cluster(cls, **kwargs: Any) -> KubernetesApi:
        configuration = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # unannotated
        return cls(_client(configuration), **kwargs)

    @classmethod
    def from_token(cls, host: str, token: str, ca_file: str, **kwargs: Any) -> KubernetesApi:
        configuration = k8s.Configuration()
        configuration.host = host
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.ssl_ca_cert = ca_file
        configuration.verify_ssl = True
        return cls(_client(configuration), **kwargs)

    def close(self) -> None:
        with self._watches_lock:
            watches = list(self._watches)
        for response in watches:
            _shutdown(response)
        self._api.close()  # type: ignore[no-untyped-call]  # the kubernetes ApiClient is unannotated

    # ------------------------------------------------------------------ Applications

    def list_applications(self) -> Result[ListResult[KubeObject], KubeError]:
        return self._list(
            f"{APPLICATIONS}/aivenapplications", {}, _with_kind("aiven.nais.io/v1", "AivenApplication")
        )

    def watch_applications(
        self, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self._watch(f"{APPLICATIONS}/aivenapplications", {}, resource_version, timeout_seconds, _same)

    def patch_application_status(
        self,
        namespace: str,
        name: str,
        status_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        body: dict[str, object] = {"status": dict(status_patch)}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._json("PATCH", _app_path(namespace, name) + "/status", body, MERGE_PATCH)

    def delete_application(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._delete(_app_path(namespace, name), uid, resource_version)

    # ------------------------------------------------------------------ Secrets

    def list_secrets(
        self, label_selector: LabelSelector, namespace: str | None = None
    ) -> Result[ListResult[KubeObject], KubeError]:
        path = f"/api/v1/namespaces/{_q(namespace)}/secrets" if namespace else "/api/v1/secrets"
        return self._list(path, _selector(label_selector), _with_kind("v1", "Secret"))

    def watch_secrets(
        self, label_selector: LabelSelector, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[KubeObject]]:
        return self._watch(
            "/api/v1/secrets", _selector(label_selector), resource_version, timeout_seconds, _same
        )

    def get_secret(self, namespace: str, name: str) -> Result[KubeObject, KubeError]:
        return self._json("GET", _secret_path(namespace, name))

    def create_secret(self, body: Mapping[str, Any]) -> Result[KubeObject, KubeError]:
        namespace = str((body.get("metadata") or {}).get("namespace") or "")
        if not namespace:
            return Failure(KubeInvalid("Secret: metadata.namespace: Required value"))
        payload = {"apiVersion": "v1", "kind": "Secret", **body}
        return self._json("POST", f"/api/v1/namespaces/{_q(namespace)}/secrets", payload, JSON)

    def patch_secret(
        self,
        namespace: str,
        name: str,
        merge_patch: Mapping[str, object],
        resource_version: str | None = None,
    ) -> Result[KubeObject, KubeError]:
        body = deep_copy(merge_patch)
        if resource_version:
            metadata = body.get("metadata")
            body["metadata"] = {
                **(metadata if isinstance(metadata, dict) else {}),
                "resourceVersion": resource_version,
            }
        return self._json("PATCH", _secret_path(namespace, name), body, MERGE_PATCH)

    def delete_secret(
        self, namespace: str, name: str, uid: str | None = None, resource_version: str | None = None
    ) -> Result[None, KubeError]:
        return self._delete(_secret_path(namespace, name), uid, resource_version)

    def add_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject, KubeError]:
        return add_finalizer(
            self.get_secret, self.patch_secret, namespace, name, finalizer, f'secrets "{name}" not found'
        )

    def remove_secret_finalizer(
        self, namespace: str, name: str, finalizer: str
    ) -> Result[KubeObject | None, KubeError]:
        return remove_finalizer(self.get_secret, self.patch_secret, namespace, name, finalizer)

    # ------------------------------------------------------------------ Workloads

    def list_workload_refs(self, kind: str) -> Result[ListResult[WorkloadRefs], KubeError]:
        if kind not in WORKLOAD_KINDS or kind not in WORKLOAD_PATHS:
            return Failure(KubeInvalid(f"not a workload kind: {kind}"))
        prefix, plural = WORKLOAD_PATHS[kind]
        return self._list(f"{prefix}/{plural}", {}, lambda obj: workload_refs(kind, obj))

    def watch_workload_refs(
        self, kind: str, resource_version: str, timeout_seconds: float
    ) -> Iterator[WatchItem[WorkloadRefs]]:
        if kind not in WORKLOAD_KINDS or kind not in WORKLOAD_PATHS:
            return iter([WatchBroken(KubeInvalid(f"not a workload kind: {kind}"))])
        prefix, plural = WORKLOAD_PATHS[kind]
        return self._watch(
            f"{prefix}/{plural}", {}, resource_version, timeout_seconds, lambda obj: workload_refs(kind, obj)
        )

    # ------------------------------------------------------------------ AivenObjects

    def aiven_object_state(
        self, kind: AivenObjectKind, namespace: str, name: str
    ) -> Result[str | None, KubeError]:
        plural = AIVEN_PLURALS.get(kind)
        if plural is None:
            return Failure(KubeInvalid(f"not an Aiven object kind: {kind}"))
        match self._json("GET", f"/apis/aiven.io/v1alpha1/namespaces/{_q(namespace)}/{plural}/{_q(name)}"):
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
        now = datetime.now(UTC)
        stamp = format_time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved.name[:200]}.", "namespace": involved.namespace},
            "involvedObject": {
                "apiVersion": involved.api_version,
                "kind": involved.kind,
                "namespace": involved.namespace,
                "name": involved.name,
                **({"uid": involved.uid} if involved.uid else {}),
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": format_micro_time(now),
            "count": 1,
            "source": {"component": "aivenator"},
            "reportingComponent": "aivenator",
            "reportingInstance": "aivenator",
            "action": reason,
        }
        return self._json("POST", f"/api/v1/namespaces/{_q(involved.namespace)}/events", body, JSON).map(
            lambda _: None
        )

    # ------------------------------------------------------------------ Leases

    def get_lease(self, namespace: str, name: str) -> Result[Lease, KubeError]:
        return self._json("GET", _lease_path(namespace, name)).map(lease_from)

    def create_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        body = lease_body(lease)
        body["metadata"].pop("resourceVersion", None)
        path = f"/apis/coordination.k8s.io/v1/namespaces/{_q(lease.namespace)}/leases"
        return self._json("POST", path, body, JSON).map(lease_from)

    def update_lease(self, lease: Lease) -> Result[Lease, KubeError]:
        if not lease.resource_version:
            return Failure(KubeInvalid("metadata.resourceVersion: must be specified for an update"))
        return self._json("PUT", _lease_path(lease.namespace, lease.name), lease_body(lease), JSON).map(
            lease_from
        )

    # ------------------------------------------------------------------ HTTP

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> BaseHTTPResponse:
        """Send one request; returns the streaming urllib3 response. Raises transport errors."""
        headers = {"Accept": JSON}
        if content_type:
            headers["Content-Type"] = content_type
        if method in WRITE_METHODS:
            query = {**(query or {}), "fieldManager": FIELD_MANAGER}
        url_path = path + ("?" + urlencode(dict(query)) if query else "")
        method, url, header_params, serialized, post_params = self._api.param_serialize(
            method=method,
            resource_path=url_path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(
            method,
            url,
            header_params=header_params,
            body=serialized,
            post_params=post_params,
            _request_timeout=timeout if timeout is not None else self._timeout,
        )
        raw: BaseHTTPResponse = response.response  # the client's RESTResponse wraps urllib3's response
        return raw

    def _json(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Result[KubeObject, KubeError]:
        try:
            response = self._request(method, path, query, body, content_type)
            try:
                data = response.data
            finally:
                response.release_conn()
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            return Failure(_transport_error(exc))
        if not 200 <= response.status < 300:
            _note_denied(method, path, response.status)
            return Failure(_status_error(response.status, data, response.headers))
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            return Failure(KubeUnavailable("unparseable response from the API server"))
        return Success(_trim(decoded) if isinstance(decoded, dict) else {})

    def _delete(self, path: str, uid: str | None, resource_version: str | None) -> Result[None, KubeError]:
        preconditions = {
            key: value
            for key, value in (("uid", uid), ("resourceVersion", resource_version))
            if value is not None
        }
        body: dict[str, object] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if preconditions:
            body["preconditions"] = preconditions
        return self._json("DELETE", path, body, JSON).map(lambda _: None)

    def _list(
        self, path: str, query: Mapping[str, str], transform: Callable[[KubeObject], T]
    ) -> Result[ListResult[T], KubeError]:
        items: list[T] = []
        token = ""
        while True:
            page_query = {**query, "limit": str(LIST_PAGE_SIZE)}
            if token:
                page_query["continue"] = token
            match self._json("GET", path, query=page_query):
                case Failure(error):
                    return Failure(error)
                case Success(page):
                    pass
            for item in page.get("items") or []:
                items.append(transform(_trim(item)))
            metadata = page.get("metadata") or {}
            token = str(metadata.get("continue") or "")
            if not token:
                return Success(ListResult(tuple(items), str(metadata.get("resourceVersion", ""))))

    def _watch(
        self,
        path: str,
        query: Mapping[str, str],
        resource_version: str,
        timeout_seconds: float,
        transform: Callable[[KubeObject], T],
    ) -> Iterator[WatchItem[T]]:
        """One watch request; see the port for what its items mean. Never raises."""
        server_timeout = max(1, int(timeout_seconds))
        watch_query = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(server_timeout),
        }
        if resource_version:
            watch_query["resourceVersion"] = resource_version
        try:
            response = self._request("GET", path, watch_query, timeout=(10.0, server_timeout + 30.0))
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            yield WatchBroken(_transport_error(exc))
            return
        with self._watches_lock:
            self._watches.add(response)
        try:
            if response.status != 200:
                _note_denied("WATCH", path, response.status)
                error = _status_error(response.status, response.data, response.headers)
                yield WatchExpired(error.message) if isinstance(error, KubeGone) else WatchBroken(error)
                return
            for line in _lines(response):
                event = json.loads(line)
                kind = event.get("type")
                obj = event.get("object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    yield WatchEvent(kind, transform(_trim(obj)), rv)
                elif kind == "BOOKMARK":
                    yield WatchBookmark(rv)
                elif kind == "ERROR":
                    error = _status_error(int(obj.get("code") or 500), json.dumps(obj).encode(), {})
                    yield WatchExpired(error.message) if isinstance(error, KubeGone) else WatchBroken(error)
                    return
        except (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            yield WatchBroken(_transport_error(exc))
        finally:
            with self._watches_lock:
                self._watches.discard(response)
            _shutdown(response)


# --------------------------------------------------------------------------- helpers


def _client(configuration: k8s.Configuration) -> k8s.ApiClient:
    # Enough connections for the workers plus one long-lived watch per kind.
    configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, 32)
    return k8s.ApiClient(configuration=configuration)


def _trim(obj: KubeObject) -> KubeObject:
    """Drop server-side-apply bookkeeping: the operator never reads it, and informers cache objects."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


def _same(obj: KubeObject) -> KubeObject:
    return obj


def _with_kind(api_version: str, kind: str) -> Callable[[KubeObject], KubeObject]:
    """List items come without apiVersion/kind; give them back so items look like a get's."""

    def fill(obj: KubeObject) -> KubeObject:
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj

    return fill


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _app_path(namespace: str, name: str) -> str:
    return f"{APPLICATIONS}/namespaces/{_q(namespace)}/aivenapplications/{_q(name)}"


def _secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{_q(namespace)}/secrets/{_q(name)}"


def _lease_path(namespace: str, name: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{_q(namespace)}/leases/{_q(name)}"


def _selector(selector: LabelSelector) -> dict[str, str]:
    return {"labelSelector": selector_string(selector)} if selector else {}


def _lines(response: BaseHTTPResponse) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _shutdown(response: BaseHTTPResponse) -> None:
    # Best effort: the connection is being thrown away.
    with contextlib.suppress(Exception):
        response.shutdown()
    with contextlib.suppress(Exception):
        response.release_conn()


def _message(text: str) -> str:
    return text[:MESSAGE_LIMIT]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status_error(status: int, data: bytes | None, headers: Mapping[str, str]) -> KubeError:
    """Classify a non-2xx answer once. The message is the server's Status.message, cut short."""
    reason, message = "", ""
    try:
        decoded = json.loads(data) if data else {}
        if isinstance(decoded, dict):
            reason = str(decoded.get("reason") or "")
            message = _message(str(decoded.get("message") or ""))
    except ValueError:
        pass
    message = message or f"HTTP {status}"
    if status == 404:
        return KubeNotFound(message)
    if status == 409:
        return KubeAlreadyExists(message) if reason == "AlreadyExists" else KubeConflict(message)
    if status == 410:
        return KubeGone(message)
    if status in (401, 403):
        return KubeForbidden(message)
    if status == 429 or status >= 500:
        return KubeUnavailable(message, _retry_after(headers))
    return KubeInvalid(message)


def _note_denied(method: str, path: str, status: int) -> None:
    """Log every 401/403: callers may ignore a failure (events are best effort), RBAC gaps must
    still show (the real-apiserver tests fail on this line). Path only, never a body."""
    if status in (401, 403):
        _log.warning("kubernetes_forbidden: %s %s answered %d (RBAC or credentials)", method, path, status)


def _transport_error(exc: Exception) -> KubeError:
    if isinstance(exc, ApiException) and exc.status:
        return _status_error(
            int(exc.status), exc.body if isinstance(exc.body, bytes) else None, exc.headers or {}
        )
    return KubeUnavailable(_message(f"{type(exc).__name__}: {exc}"))
