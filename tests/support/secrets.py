"""Builders over `aivenator.domain.secrets` that only tests need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aivenator.domain.application import AivenApplication
from aivenator.domain.secrets import DesiredSecret, SectionInput, render_secret, to_manifest


def as_existing(desired: DesiredSecret, resource_version: str = "1", uid: str = "") -> dict[str, Any]:
    """What the API server returns after creating `desired`."""
    body = to_manifest(desired)
    body["metadata"]["resourceVersion"] = resource_version
    if uid:
        body["metadata"]["uid"] = uid
    return body


def render_all(
    app: AivenApplication,
    inputs: Sequence[SectionInput],
    existing: Mapping[str, Mapping[str, Any]],
    now: datetime,
    new_password: str,
    main_ca: str,
) -> list[DesiredSecret]:
    """Every section rendered, as the reconciler renders them one by one; fails on a render error."""
    out: list[DesiredSecret] = []
    for inp in inputs:
        rendered = render_secret(app, inp, existing.get(inp.section.secret_name), now, new_password, main_ca)
        out.append(rendered.unwrap())
    return out
