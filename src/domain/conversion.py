"""Conversion between the served versions of AivenApplication (`aiven.nais.io/v1` and `v2`).

v1 is the storage version; v2 has no top-level `spec.secretName` and every section names its
own Secret. The apiserver asks the conversion webhook (`/convert`, ConversionReview v1) to
translate whenever a client reads or writes a version other than the stored one; the webhook
calls `review` and nothing else, so every rule lives here:

* v1 -> v2 removes `spec.secretName` and, when it was a non-empty string, copies it into the
  `kafka` and `openSearch` sections that have no `secretName` of their own. It never creates a
  section and never touches `valkey` (upstream behaviour: a v1 Valkey entry without a Secret
  name stays without one).
* v2 -> v1 changes only `apiVersion`.
* Converting to the version an object already has returns it unchanged.

Everything else (metadata, status, unknown fields) is carried over untouched, as the apiserver
requires (it refuses a conversion that changes metadata other than labels and annotations).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from aivenator.domain.kubernetes_port import KubeObject

GROUP = "aiven.nais.io"
KIND = "AivenApplication"
V1 = f"{GROUP}/v1"
V2 = f"{GROUP}/v2"
VERSIONS = (V1, V2)
#: Sections that inherit v1's top-level `spec.secretName` on the way to v2.
INHERITING_SECTIONS = ("kafka", "openSearch")
REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
REVIEW_KIND = "ConversionReview"




class ConversionError(ValueError):
    """An object this function cannot convert; the message names the object and the reason."""


def _has_name(value: object) -> bool:
    return isinstance(value, str) and value != ""


def effective_secret_names(obj: Mapping[str, object]) -> dict[str, str | None]:
    """The Secret name each section ends up with, keyed `kafka`, `openSearch`, `valkey[i]`.

    A v1 `kafka` or `openSearch` section without its own name inherits `spec.secretName` (what
    conversion to v2 makes explicit); a Valkey entry never inherits. Absent sections are left
    out. This is the quantity conversion must preserve.
    """
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return {}
    top = spec.get("secretName") if obj.get("apiVersion") == V1 else None
    out: dict[str, str | None] = {}
    for section in INHERITING_SECTIONS:
        value = spec.get(section)
        if isinstance(value, Mapping):
            own = value.get("secretName")
            out[section] = own if _has_name(own) else (top if _has_name(top) else None)
    valkey = spec.get("valkey")
    if isinstance(valkey, list):
        for i, item in enumerate(valkey):
            if isinstance(item, Mapping):
                own = item.get("secretName")
                out[f"valkey[{i}]"] = own if _has_name(own) else None
    return out


def v1_to_v2(obj: Mapping[str, object]) -> KubeObject:
    """A v1 object as v2: `spec.secretName` moved into the sections that lack a name."""
    out = copy.deepcopy(dict(obj))
    out["apiVersion"] = V2
    spec = out.get("spec")
    if not isinstance(spec, dict):
        return out
    top = spec.pop("secretName", None)
    if not _has_name(top):
        return out
    for section in INHERITING_SECTIONS:
        value = spec.get(section)
        if isinstance(value, dict) and not _has_name(value.get("secretName")):
            value["secretName"] = top
    return out


def v2_to_v1(obj: Mapping[str, object]) -> KubeObject:
    """A v2 object as v1: only `apiVersion` changes."""
    out = copy.deepcopy(dict(obj))
    out["apiVersion"] = V1
    return out


def convert(obj: object, desired: str) -> KubeObject:
    """`obj` as `desired` (`aiven.nais.io/v1` or `/v2`), or ConversionError saying why not."""
    if desired not in VERSIONS:
        raise ConversionError(f"cannot convert to {desired!r}: served versions are {', '.join(VERSIONS)}")
    if not isinstance(obj, Mapping):
        raise ConversionError(f"object is a {type(obj).__name__}, not a JSON object")
    name = _describe(obj)
    if obj.get("kind") != KIND:
        raise ConversionError(f"{name}: kind is {obj.get('kind')!r}, not {KIND}")
    source = obj.get("apiVersion")
    if source not in VERSIONS:
        raise ConversionError(f"{name}: apiVersion {source!r} is not one of {', '.join(VERSIONS)}")
    spec = obj.get("spec")
    if spec is not None and not isinstance(spec, Mapping):
        raise ConversionError(f"{name}: spec is a {type(spec).__name__}, not an object")
    if source == desired:
        return copy.deepcopy(dict(obj))
    return v1_to_v2(obj) if desired == V2 else v2_to_v1(obj)


def _describe(obj: Mapping[str, object]) -> str:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        namespace, name = meta.get("namespace"), meta.get("name")
        if isinstance(name, str) and name:
            return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name
    return "object"


def review(body: object) -> KubeObject:
    """Answer a ConversionReview (apiextensions.k8s.io/v1) request.

    The response echoes the request's `uid` and holds every object converted to
    `desiredAPIVersion` in request order, with `result.status: Success`; when any object cannot
    be converted the response holds no objects, `result.status: Failure` and a message naming
    the object and the reason (the apiserver then fails the client's request with it). A body
    that is not a ConversionReview request at all raises ConversionError (the HTTP layer
    answers 400).
    """
    if not isinstance(body, Mapping):
        raise ConversionError("request body is not a JSON object")
    if body.get("apiVersion") != REVIEW_API_VERSION or body.get("kind") != REVIEW_KIND:
        raise ConversionError(
            f"expected {REVIEW_KIND} {REVIEW_API_VERSION}, got {body.get('kind')!r} {body.get('apiVersion')!r}"
        )
    request = body.get("request")
    if not isinstance(request, Mapping):
        raise ConversionError("ConversionReview has no request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ConversionError("ConversionReview request has no uid")
    desired = request.get("desiredAPIVersion")
    objects = request.get("objects")
    response: KubeObject = {"uid": uid}
    try:
        if not isinstance(desired, str):
            raise ConversionError("request has no desiredAPIVersion")
        if not isinstance(objects, list):
            raise ConversionError("request has no objects list")
        converted = [convert(obj, desired) for obj in objects]
    except ConversionError as exc:
        response["convertedObjects"] = []
        response["result"] = {"status": "Failure", "message": str(exc)}
    else:
        response["convertedObjects"] = converted
        response["result"] = {"status": "Success"}
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response}
