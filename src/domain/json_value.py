"""The type of a decoded JSON document (what `json.loads` returns and `json.dumps` accepts)."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
