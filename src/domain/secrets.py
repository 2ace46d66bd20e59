"""Desired Secrets and the minimal change that gets an existing Secret there (product spec §4).

`render_secret` combines the keys, labels and annotations common to every managed Secret with
one service handler's content; `diff(desired, existing)` yields Create, Update (a JSON merge
patch touching only our keys, labels, annotations and finalizer, guarded by the existing
resourceVersion) or Unchanged. Everything here is pure: `now` and any new store password are
arguments.

"Last credential change" (`AIVEN_SECRET_UPDATED` and a handler's own timestamp keys such as
`KAFKA_SECRET_UPDATED`) keeps the existing value unless some other data key we own changes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceFacts, ServiceUser
from aivenator.domain.kubernetes_port import ObjectMeta
from aivenator.domain.services import handler_for
from aivenator.domain.services.base import ApplyInput, RenderError, Section
from aivenator.domain.times import format_time as format_time
from returns.result import Failure, Result, Success

AIVEN_SECRET_UPDATED = "AIVEN_SECRET_UPDATED"
AIVEN_CA = "AIVEN_CA"
COMMON_DATA_KEYS = frozenset({AIVEN_SECRET_UPDATED, AIVEN_CA})
COMMON_LABELS = frozenset({L.APP_LABEL, L.TEAM_LABEL, L.TYPE_LABEL, L.SECRET_GENERATION_LABEL, L.PROTECTED})
COMMON_ANNOTATIONS = frozenset({L.CORRELATION_ID, L.PROTECTED, L.WITH_TIME_LIMIT, L.EXPIRES_AT})


@dataclass(frozen=True)
class DesiredSecret:
    """A managed Secret as the operator wants it. `owned_*` name everything the operator manages
    on it: keys in there but absent from `data`/`labels`/`annotations` are removed by `diff`."""

    namespace: str
    name: str
    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    finalizers: tuple[str, ...] = (L.FINALIZER,)
    owned_data_keys: frozenset[str] = frozenset()
    owned_labels: frozenset[str] = COMMON_LABELS
    owned_annotations: frozenset[str] = COMMON_ANNOTATIONS
    #: `Section.key` of the section this Secret serves (`kafka`, `opensearch`, `valkey/<instance>`).
    section_key: str = ""


@dataclass(frozen=True, slots=True)
class SectionInput:
    """What the shell gathered from Aiven for one section."""

    section: Section
    facts: ServiceFacts
    user: ServiceUser
    #: CA (PEM) of `facts.project`.
    project_ca: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Create:
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Update:
    """A JSON merge patch (`application/merge-patch+json`) for the existing Secret."""

    patch: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Unchanged:
    pass


SecretChange = Create | Update | Unchanged


def decode_data(existing: Mapping[str, object] | None) -> dict[str, bytes]:
    """The `data` of a Secret in API shape (base64 strings), decoded; undecodable values are skipped."""
    out: dict[str, bytes] = {}
    for key, value in _mapping((existing or {}).get("data")).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True)
        except ValueError:
            continue
    return out


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def common_labels(app: AivenApplication) -> dict[str, str]:
    return {
        L.APP_LABEL: app.name,
        L.TEAM_LABEL: app.namespace,
        L.TYPE_LABEL: L.TYPE_VALUE,
        L.SECRET_GENERATION_LABEL: app.label(L.SECRET_GENERATION_LABEL, L.SECRET_GENERATION_DEFAULT),
        L.PROTECTED: "true" if app.protected else "false",
    }


def common_annotations(app: AivenApplication) -> dict[str, str]:
    annotations = {L.PROTECTED: "true" if app.protected else "false"}
    correlation_id = app.annotation(L.APP_CORRELATION_ID)
    if correlation_id:
        annotations[L.CORRELATION_ID] = correlation_id
    if app.protected and app.expires_at is not None:
        annotations[L.WITH_TIME_LIMIT] = "true"
        annotations[L.EXPIRES_AT] = format_time(app.expires_at)
    return annotations


def render_secret(
    app: AivenApplication,
    inp: SectionInput,
    existing: Mapping[str, object] | None,
    now: datetime,
    new_password: str,
    main_ca: str,
) -> Result[DesiredSecret, RenderError]:
    """The Secret for one section. `existing` is the Secret as the API returns it (or None)."""
    handler = handler_for(inp.section.service_type)
    existing_data = decode_data(existing)
    applied = handler.apply(
        ApplyInput(app, inp.section, inp.facts, inp.user, inp.project_ca, existing_data, new_password)
    )
    match applied:
        case Failure(error):
            return Failure(error)
        case Success(content):
            pass
    owned_data = COMMON_DATA_KEYS | handler.owned_data_keys(inp.section)
    timestamp_keys = (AIVEN_SECRET_UPDATED, *handler.timestamp_keys(inp.section))
    data: dict[str, bytes] = {**content.data, AIVEN_CA: main_ca.encode()}
    changed = any(existing_data.get(k) != v for k, v in data.items()) or any(
        k in existing_data for k in owned_data - set(data) - set(timestamp_keys)
    )
    stamp = format_time(now).encode()
    for key in timestamp_keys:
        data[key] = stamp if changed or key not in existing_data else existing_data[key]
    return Success(
        DesiredSecret(
            namespace=app.namespace,
            name=inp.section.secret_name,
            data=data,
            labels={**content.labels, **common_labels(app)},
            annotations={**content.annotations, **common_annotations(app)},
            owned_data_keys=owned_data,
            owned_labels=COMMON_LABELS | frozenset(content.labels),
            owned_annotations=COMMON_ANNOTATIONS | handler.owned_annotation_keys(inp.section),
            section_key=inp.section.key,
        )
    )


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _merge(
    desired: Mapping[str, str], owned: Iterable[str], current: Mapping[str, object]
) -> dict[str, str | None]:
    patch: dict[str, str | None] = {k: v for k, v in desired.items() if current.get(k) != v}
    patch.update({k: None for k in owned if k not in desired and k in current})
    return patch


def to_manifest(desired: DesiredSecret) -> dict[str, Any]:
    """The Secret to create (API shape, base64 data)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": desired.name,
            "namespace": desired.namespace,
            "labels": dict(sorted(desired.labels.items())),
            "annotations": dict(sorted(desired.annotations.items())),
            "finalizers": list(desired.finalizers),
        },
        "data": {k: _b64(v) for k, v in sorted(desired.data.items())},
    }


def diff(desired: DesiredSecret, existing: Mapping[str, object] | None) -> SecretChange:
    """Create, a minimal merge patch, or Unchanged. Foreign data keys, labels, annotations and
    finalizers are never touched; the patch carries the existing resourceVersion so a concurrent
    write makes it fail with 409 instead of being overwritten."""
    if existing is None:
        return Create(to_manifest(desired))
    meta = ObjectMeta(existing)
    current_data = _mapping(existing.get("data"))
    data_patch = _merge({k: _b64(v) for k, v in desired.data.items()}, desired.owned_data_keys, current_data)
    label_patch = _merge(desired.labels, desired.owned_labels, meta.labels)
    annotation_patch = _merge(desired.annotations, desired.owned_annotations, meta.annotations)
    current_finalizers = list(meta.finalizers)
    # The API refuses new finalizers on an object that is being deleted.
    terminating = meta.deleting
    missing_finalizers = [] if terminating else [f for f in desired.finalizers if f not in current_finalizers]

    metadata_patch: dict[str, Any] = {}
    if label_patch:
        metadata_patch["labels"] = label_patch
    if annotation_patch:
        metadata_patch["annotations"] = annotation_patch
    if missing_finalizers:
        # A merge patch replaces lists whole: keep everyone else's finalizers.
        metadata_patch["finalizers"] = current_finalizers + missing_finalizers
    if not (metadata_patch or data_patch):
        return Unchanged()
    if meta.resource_version:
        metadata_patch["resourceVersion"] = meta.resource_version
    patch: dict[str, Any] = {"metadata": metadata_patch}
    if data_patch:
        patch["data"] = data_patch
    return Update(patch)
