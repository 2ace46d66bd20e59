"""Hypothesis strategies for workloads, Secrets and applications as the Kubernetes API sends them.

Names come from small pools on purpose: the interesting cases (the same Secret name in two
namespaces, namespaces that are prefixes of each other such as `a` and `a-b`) must be common.
Every generated workload also returns, next to the object, the Secret names it refers to, built
independently of `aivenator.domain.references`, so tests can use it as an oracle.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aivenator.domain import labels
from aivenator.domain.references import WORKLOAD_KINDS
from aivenator.domain.services.base import ServiceConfig
from aivenator.entrypoints.cli.cmd_render import load_facts, render_documents
from hypothesis import strategies as st

from tests.support.secrets import as_existing

NAMESPACES = ("a", "a-b", "b", "team-x", "teamfoo")
SECRET_NAMES = ("s1", "s2", "aiven-app-kafka", "aiven-app-valkey-x", "shared", "b-s1")
APP_NAMES = ("app", "teamfoo-bar", "orders", "a-b")
INSTANCES = ("logs", "b-c", "c", "cache")

REFERENCE_KINDS = ("volume", "projected", "env", "env_from")
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

namespaces = st.sampled_from(NAMESPACES)
secret_names = st.sampled_from(SECRET_NAMES)
app_names = st.sampled_from(APP_NAMES)
instances = st.sampled_from(INSTANCES)
moments = st.integers(min_value=0, max_value=60 * 24 * 3600).map(lambda s: EPOCH + timedelta(seconds=s))
grace_periods = st.integers(min_value=0, max_value=7 * 24 * 3600).map(lambda s: timedelta(seconds=s))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- pod specs ------------------------------------------------------------------------------------

#: Things in a pod spec that refer to no Secret (the references module must not pick them up).
_NOISE_VOLUMES: tuple[dict[str, Any], ...] = (
    {"name": "cfg", "configMap": {"name": "s1"}},
    {"name": "tmp", "emptyDir": {}},
    {"name": "proj", "projected": {"sources": [{"configMap": {"name": "s2"}}, {"serviceAccountToken": {}}]}},
    {"name": "proj-none", "projected": None},
    {"name": "secret-none", "secret": None},
    {"name": "secret-no-name", "secret": {"optional": True}},
)
_NOISE_ENV: tuple[dict[str, Any], ...] = (
    {"name": "PLAIN", "value": "shared"},
    {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "s1", "key": "k"}}},
    {"name": "FIELD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "NONE", "valueFrom": None},
)
_NOISE_ENV_FROM: tuple[dict[str, Any], ...] = (
    {"configMapRef": {"name": "s2"}},
    {"prefix": "X_", "secretRef": None},
)


@dataclass
class _PodSpecBuilder:
    volumes: list[dict[str, Any]]
    containers: dict[str, list[dict[str, Any]]]

    def container(self, list_key: str, index: int) -> dict[str, Any]:
        items = self.containers.setdefault(list_key, [])
        while len(items) <= index:
            items.append({"name": f"c{len(items)}", "image": "busybox"})
        return items[index]

    def to_dict(self, drop_empty: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.volumes or not drop_empty:
            spec["volumes"] = self.volumes
        for key, items in self.containers.items():
            spec[key] = items
        if not self.containers.get("containers"):
            spec["containers"] = [{"name": "main", "image": "busybox"}]
        return spec


_reference = st.tuples(
    secret_names, st.sampled_from(REFERENCE_KINDS), st.sampled_from(CONTAINER_LISTS), st.integers(0, 2)
)


@st.composite
def pod_specs(draw: st.DrawFn) -> tuple[dict[str, Any], frozenset[str]]:
    """A pod spec (camelCase dict) and the Secret names it refers to, by construction."""
    builder = _PodSpecBuilder(volumes=[], containers={})
    expected: set[str] = set()
    for name, kind, list_key, index in draw(st.lists(_reference, max_size=4)):
        expected.add(name)
        if kind == "volume":
            builder.volumes.append({"name": f"v{len(builder.volumes)}", "secret": {"secretName": name}})
        elif kind == "projected":
            sources: list[Any] = [{"configMap": {"name": "noise"}}, {"secret": {"name": name, "items": []}}]
            builder.volumes.append({"name": f"v{len(builder.volumes)}", "projected": {"sources": sources}})
        else:
            container = builder.container(list_key, index)
            if kind == "env":
                container.setdefault("env", []).append(
                    {
                        "name": f"E{len(container.get('env', []))}",
                        "valueFrom": {"secretKeyRef": {"name": name, "key": "k"}},
                    }
                )
            else:
                container.setdefault("envFrom", []).append({"secretRef": {"name": name}})
    builder.volumes.extend(draw(st.lists(st.sampled_from(_NOISE_VOLUMES), max_size=2)))
    for list_key in draw(st.lists(st.sampled_from(CONTAINER_LISTS), max_size=2)):
        container = builder.container(list_key, 0)
        env = (container.get("env") or []) + draw(st.lists(st.sampled_from(_NOISE_ENV), max_size=2))
        env_from = (container.get("envFrom") or []) + draw(
            st.lists(st.sampled_from(_NOISE_ENV_FROM), max_size=1)
        )
        # An empty list may also arrive as null.
        container["env"] = env if env or draw(st.booleans()) else None
        container["envFrom"] = env_from if env_from or draw(st.booleans()) else None
    return builder.to_dict(drop_empty=draw(st.booleans())), frozenset(expected)


def wrap_pod_spec(kind: str, namespace: str, name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
    """A workload object of `kind` carrying `pod_spec` where that kind keeps it."""
    metadata = {"name": name, "namespace": namespace}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod_spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": pod_spec}
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": kind,
            "metadata": metadata,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    api_version = "batch/v1" if kind == "Job" else "apps/v1"
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": {"template": template}}


@dataclass(frozen=True)
class GeneratedWorkload:
    kind: str
    namespace: str
    name: str
    obj: dict[str, Any]
    expected: frozenset[str]


@st.composite
def workloads(draw: st.DrawFn, namespace: st.SearchStrategy[str] = namespaces) -> GeneratedWorkload:
    kind = draw(st.sampled_from(WORKLOAD_KINDS))
    ns = draw(namespace)
    name = draw(st.sampled_from(("w1", "w2", "web")))
    spec, expected = draw(pod_specs())
    return GeneratedWorkload(kind, ns, name, wrap_pod_spec(kind, ns, name, spec), expected)


# --- Secrets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedSecret:
    raw: dict[str, Any]
    namespace: str
    name: str
    managed: bool
    protected: bool
    with_time_limit: bool
    #: The parsed expires-at, None when missing or unparseable.
    expires_at: datetime | None
    created: datetime | None
    deleting: bool


_expiry_texts = st.one_of(
    moments.map(lambda m: (rfc3339(m), m)),
    st.sampled_from([("", None), ("not-a-date", None), ("2026-13-45T99:00:00Z", None), (None, None)]),
)


@st.composite
def managed_secrets(draw: st.DrawFn, namespace: st.SearchStrategy[str] = namespaces) -> GeneratedSecret:
    ns = draw(namespace)
    name = draw(secret_names)
    managed = draw(st.integers(0, 9)) != 0
    protected = draw(st.booleans())
    protected_in_label_only = protected and draw(st.booleans())
    with_time_limit = draw(st.booleans())
    expiry_text, expires_at = draw(_expiry_texts)
    created = draw(st.one_of(moments, st.none()))
    deleting = draw(st.integers(0, 9)) == 0
    secret_labels = {labels.APP_LABEL: "app", labels.TEAM_LABEL: ns}
    if managed:
        secret_labels[labels.TYPE_LABEL] = labels.TYPE_VALUE
    annotations: dict[str, str] = {}
    if protected_in_label_only:
        secret_labels[labels.PROTECTED] = "true"
    elif protected:
        annotations[labels.PROTECTED] = draw(st.sampled_from(["true", "True", "TRUE"]))
    else:
        annotations[labels.PROTECTED] = draw(st.sampled_from(["false", "", "no"]))
    if with_time_limit:
        annotations[labels.WITH_TIME_LIMIT] = "true"
    if expiry_text is not None:
        annotations[labels.EXPIRES_AT] = expiry_text
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{ns}-{name}",
        "resourceVersion": str(draw(st.integers(1, 1000))),
        "labels": secret_labels,
        "annotations": annotations,
        "finalizers": [labels.FINALIZER],
    }
    if created is not None:
        metadata["creationTimestamp"] = rfc3339(created)
    if deleting:
        metadata["deletionTimestamp"] = rfc3339(EPOCH)
    raw = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": {"AIVEN_CA": "eA=="}}
    return GeneratedSecret(raw, ns, name, managed, protected, with_time_limit, expires_at, created, deleting)


def unique_secrets(max_size: int = 8) -> st.SearchStrategy[list[GeneratedSecret]]:
    """Secrets with distinct (namespace, name), as in a real cluster."""
    return st.lists(managed_secrets(), max_size=max_size, unique_by=lambda s: (s.namespace, s.name))


# --- AivenApplications ---------------------------------------------------------------------------


@st.composite
def raw_applications(draw: st.DrawFn, namespace: st.SearchStrategy[str] = namespaces) -> dict[str, Any]:
    """An AivenApplication dict as the API returns it; valid unless `broken` sections are drawn."""
    ns = draw(namespace)
    name = draw(app_names)
    spec: dict[str, Any] = {}
    used = iter(draw(st.permutations(SECRET_NAMES)))
    if draw(st.booleans()):
        spec["kafka"] = {"pool": "dev-nais-dev", "secretName": next(used)}
    if draw(st.booleans()):
        spec["openSearch"] = {"instance": draw(instances), "access": "readwrite", "secretName": next(used)}
    for instance in draw(st.lists(instances, max_size=2, unique=True)):
        spec.setdefault("valkey", []).append({"instance": instance, "secretName": next(used)})
    if draw(st.booleans()):
        spec["secretName"] = next(used)
    if draw(st.booleans()):
        spec["protected"] = True
    if draw(st.booleans()):
        spec["expiresAt"] = rfc3339(draw(moments))
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "generation": draw(st.integers(1, 50)),
            "resourceVersion": "7",
        },
        "spec": spec,
    }


# --- the shipped examples, rendered by part A's writer (a cross-check of drift and cleanup) -------

EXAMPLES_DIR = "deploy/examples"


def rendered_example(now: datetime = EPOCH) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `all-services.yaml` AivenApplication and the Secrets the operator would write for it
    (API shape, as if freshly created), from the shipped facts file. Fresh copies every call."""
    app, secrets = _rendered_example(now)
    return copy.deepcopy(app), copy.deepcopy(secrets)


@functools.lru_cache(maxsize=8)
def _rendered_example(now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    root = Path(__file__).resolve().parents[2] / EXAMPLES_DIR
    facts, problems = load_facts(yaml.safe_load((root / "facts.yaml").read_text()))
    assert not problems, problems
    (app,) = [d for d in yaml.safe_load_all((root / "all-services.yaml").read_text()) if d]
    result = render_documents(
        [app], facts, frozenset({"dev-nais-dev"}), ServiceConfig("dev-nais-dev"), now, "store-password"
    )
    assert not result.problems, result.problems
    desired = result.secrets
    secrets = []
    for index, d in enumerate(desired):
        body = as_existing(d, resource_version=str(100 + index), uid=f"uid-{d.name}")
        body["metadata"]["creationTimestamp"] = rfc3339(now)
        secrets.append(body)
    return app, secrets
