"""Which Secrets a workload refers to, read from the plain dicts the Kubernetes API returns.

A purely computational module: no I/O. The janitor must never delete a Secret that is in use, so
this errs on the side of finding references: every reference kind the product promises to honour
(secret volumes, projected volume sources, `env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`)
in every container list (containers, init containers, ephemeral containers), in Pods and in the
pod templates of every workload kind that creates Pods. Missing or `None` fields are tolerated
everywhere; a malformed value is skipped rather than raising.

Keys are camelCase, as the API server sends them (`secretName`, `secretKeyRef`). The adapter
must hand in the raw JSON (for example `ApiClient().sanitize_for_serialization(obj)` or a
`_preload_content=False` response), not the client's snake_case model objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

#: Workload kinds whose objects carry a pod spec, and the path to it from the object root.
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "ReplicaSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

WORKLOAD_KINDS: tuple[str, ...] = tuple(POD_SPEC_PATHS)

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class WorkloadRefs:
    """The Secret names one workload object refers to, in its own namespace."""

    namespace: str
    kind: str
    name: str
    secret_names: frozenset[str]


def _mapping(value: object) -> Mapping[str, object] | None:
    return value if isinstance(value, Mapping) else None


def _mappings(value: object) -> Iterator[Mapping[str, object]]:
    """The mapping items of a list-ish value; anything else yields nothing."""
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, Mapping):
                yield item


def _name(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(obj: Mapping[str, object] | None, *path: str) -> Mapping[str, object] | None:
    current = obj
    for key in path:
        if current is None:
            return None
        current = _mapping(current.get(key))
    return current


def _volume_secret_names(pod_spec: Mapping[str, object]) -> Iterator[str | None]:
    for volume in _mappings(pod_spec.get("volumes")):
        secret = _mapping(volume.get("secret"))
        if secret is not None:
            yield _name(secret.get("secretName"))
        projected = _mapping(volume.get("projected"))
        if projected is not None:
            for source in _mappings(projected.get("sources")):
                projected_secret = _mapping(source.get("secret"))
                if projected_secret is not None:
                    yield _name(projected_secret.get("name"))


def _container_secret_names(container: Mapping[str, object]) -> Iterator[str | None]:
    for env in _mappings(container.get("env")):
        ref = _get(env, "valueFrom", "secretKeyRef")
        if ref is not None:
            yield _name(ref.get("name"))
    for env_from in _mappings(container.get("envFrom")):
        ref = _mapping(env_from.get("secretRef"))
        if ref is not None:
            yield _name(ref.get("name"))


def secret_names_in_pod_spec(pod_spec: Mapping[str, object] | None) -> frozenset[str]:
    """Every Secret name referenced by a pod spec (camelCase dict as the API returns it)."""
    if not isinstance(pod_spec, Mapping):
        return frozenset()
    names: list[str | None] = list(_volume_secret_names(pod_spec))
    for list_key in _CONTAINER_LISTS:
        for container in _mappings(pod_spec.get(list_key)):
            names.extend(_container_secret_names(container))
    return frozenset(n for n in names if n is not None)


def pod_spec_of(kind: str, obj: Mapping[str, object] | None) -> Mapping[str, object] | None:
    """The pod spec inside a workload object of `kind`, or None (unknown kind, missing fields)."""
    path = POD_SPEC_PATHS.get(kind)
    if path is None or not isinstance(obj, Mapping):
        return None
    return _get(obj, *path)


def workload_refs(kind: str, obj: Mapping[str, object]) -> WorkloadRefs:
    """The references of one workload object; an unknown kind or missing spec refers to nothing."""
    metadata = _mapping(obj.get("metadata")) if isinstance(obj, Mapping) else None
    namespace = _name(metadata.get("namespace")) if metadata is not None else None
    name = _name(metadata.get("name")) if metadata is not None else None
    return WorkloadRefs(
        namespace=namespace or "",
        kind=kind,
        name=name or "",
        secret_names=secret_names_in_pod_spec(pod_spec_of(kind, obj)),
    )

