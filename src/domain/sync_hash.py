"""`status.synchronizationHash`, computed exactly as the Go operator computes it.

A purely computational module. The Go operator writes `fmt.Sprintf("%x", h)` where
`h = hashstructure.Hash(json.Marshal(spec), nil)` (github.com/mitchellh/hashstructure v1.1.0)
and `spec` is its v1 spec struct. Writing the same value means an application the Go operator
synchronized is not resynchronized when we take over, and the Go operator (on a rollback)
does not resynchronize ours.

Three layers, each reproducing one piece of Go:

- `go_spec_json(spec)`: the bytes `encoding/json` produces for the upstream struct after
  decoding `spec` into it: field order secretName, protected, expiresAt, kafka{pool,
  secretName}, openSearch{instance, access, secretName}, valkey[{instance, access,
  secretName}]; every field `omitempty` except `kafka.pool`; unknown keys dropped (the struct
  has no place for them); `expiresAt` re-encoded as RFC 3339 in UTC with whole seconds
  (metav1.Time); strings escaped as Go escapes them (`<`, `>`, `&`, U+2028 and U+2029 as
  `\\u00XX`/`\\u20XX`, control characters as `\\n`, `\\r`, `\\t`, `\\b`, `\\f` or `\\u00xx`, a lone
  surrogate as U+FFFD, everything else as UTF-8).
- `hashstructure_bytes(data)`: hashstructure v1.1.0 over a `[]byte`: its default hasher is
  FNV-1 64 (`hash/fnv.New64`, not FNV-1a); each byte is hashed alone, and a slice folds its
  elements in order with `h = fnv1_64(le64(h) || le64(element))` starting from 0.
- `synchronization_hash(spec)`: lower-case hex of that number without leading zeros (`%x`).

Only specs that parse are hashed (`aivenator.domain.parse`); for those the Go decoder accepts
the same object. The reference values in `tests/unit/test_sync_hash.py` were computed with the
Go code itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1_64(data: bytes) -> int:
    """FNV-1 (multiply, then xor) over 64 bits: Go's `hash/fnv.New64`."""
    h = _FNV64_OFFSET
    for byte in data:
        h = ((h * _FNV64_PRIME) & _MASK64) ^ byte
    return h


_BYTE_HASH = tuple(fnv1_64(bytes([b])) for b in range(256))
#: `le64(_BYTE_HASH[b])` for every byte value b, as the 8 byte values FNV folds in.
_ELEMENT_BYTES = tuple(tuple(h.to_bytes(8, "little")) for h in _BYTE_HASH)


def hashstructure_bytes(data: bytes) -> int:
    """hashstructure v1.1.0 `Hash(data, nil)` for a Go `[]byte` (a slice of uint8).

    Per element: `h = fnv1_64(le64(h) || le64(_BYTE_HASH[byte]))`, with FNV-1 inlined. Masking
    to 64 bits only after each run of 8 steps gives the same value (xor with a byte touches the
    low bits only, and products agree modulo 2**64) for fewer operations per byte.
    """
    h = 0
    for byte in data:
        x = _FNV64_OFFSET
        for value in h.to_bytes(8, "little"):
            x = (x * _FNV64_PRIME) ^ value
        x &= _MASK64
        for value in _ELEMENT_BYTES[byte]:
            x = (x * _FNV64_PRIME) ^ value
        h = x & _MASK64
    return h


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


#: Every character `_go_string` does not copy as it is.
_SPECIAL = re.compile(r'[\x00-\x1f"\\<>&\u2028\u2029\ud800-\udfff]')


def _go_string(value: str) -> str:
    if _SPECIAL.search(value) is None:
        return f'"{value}"'  # names and keys: nothing to escape (the common case)
    out: list[str] = ['"']
    for ch in value:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            out.append("\ufffd")  # not valid UTF-8: Go's decoder already replaced it
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _string_field(section: Mapping[str, object], key: str) -> str:
    value = section.get(key)
    return value if isinstance(value, str) else ""


def _object(fields: Sequence[tuple[str, str | None]]) -> str:
    """A JSON object of the fields whose value is not None, in the given order (values pre-encoded)."""
    return "{" + ",".join(f"{_go_string(k)}:{v}" for k, v in fields if v is not None) + "}"


def _omitempty(value: str) -> str | None:
    return _go_string(value) if value else None


def _instance_section(section: Mapping[str, object]) -> str:
    return _object(
        [
            ("instance", _omitempty(_string_field(section, "instance"))),
            ("access", _omitempty(_string_field(section, "access"))),
            ("secretName", _omitempty(_string_field(section, "secretName"))),
        ]
    )


def _metav1_time(value: object) -> str | None:
    """metav1.Time as Go writes it (UTC, whole seconds), or None when Go would leave it out."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return '"' + parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + '"'


def go_spec_json(spec: Mapping[str, object] | None) -> bytes:
    """`json.Marshal` of the upstream v1 spec struct decoded from `spec` (see the module doc)."""
    raw = spec or {}
    kafka = raw.get("kafka")
    opensearch = raw.get("openSearch")
    valkey = raw.get("valkey")
    kafka_json = (
        _object(
            [
                ("pool", _go_string(_string_field(kafka, "pool"))),
                ("secretName", _omitempty(_string_field(kafka, "secretName"))),
            ]
        )
        if isinstance(kafka, Mapping)
        else None
    )
    valkey_json = (
        "[" + ",".join(_instance_section(v) if isinstance(v, Mapping) else "null" for v in valkey) + "]"
        if isinstance(valkey, list) and valkey
        else None
    )
    text = _object(
        [
            ("secretName", _omitempty(_string_field(raw, "secretName"))),
            ("protected", "true" if raw.get("protected") is True else None),
            ("expiresAt", _metav1_time(raw.get("expiresAt"))),
            ("kafka", kafka_json),
            ("openSearch", _instance_section(opensearch) if isinstance(opensearch, Mapping) else None),
            ("valkey", valkey_json),
        ]
    )
    return text.encode("utf-8")


def synchronization_hash(spec: Mapping[str, object] | None) -> str:
    """The Go operator's `status.synchronizationHash` for this spec (lower-case hex, no padding)."""
    return _hash_of_json(go_spec_json(spec))


@lru_cache(maxsize=1024)
def _hash_of_json(data: bytes) -> str:
    # Memoized (a pure function of the bytes): every parse hashes the spec, and the same specs
    # come back on each pass of an application and on every janitor run over its namespace,
    # while the hash costs ~1 us per byte in Python. 1,024 entries of ~100-byte specs: ~0.3 MiB.
    return format(hashstructure_bytes(data), "x")
