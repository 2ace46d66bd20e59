"""Masking of credentials in text that may reach a log line, an event or an exception message.

Two layers:

* pattern rules for things that look like secrets whoever produced them (PEM blocks, Aiven
  ``AVNS_`` passwords, ``user:password@`` in URIs, ``"password": "..."`` JSON fields,
  ``Authorization`` values, ``password=...`` pairs);
* a registry of exact secret strings seen at run time (the API token, every service-user
  password and private key the Aiven adapter reads), because a secret without a recognisable
  shape can only be caught by knowing it.

`redact_text` is a plain function; `RedactingProcessor` wraps it as a structlog processor so the
operator's logging setup can add it as one more dict → dict step.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TypeAlias

MASK = "[REDACTED]"

#: Strings shorter than this are never registered: masking every "abc" in every log line would
#: destroy the logs while protecting nothing (Aiven passwords are far longer).
MIN_SECRET_LENGTH = 6
_KEY_LENGTH = 12

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]{1,64})-----.*?-----END \1-----",
    re.DOTALL,
)
# A PEM block cut off by truncation still leaks key material: mask up to the end of its base64.
_PEM_OPEN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----(?:[A-Za-z0-9+/=\s]|\\[nr])*")
_AVNS = re.compile(r"AVNS_[A-Za-z0-9_\-]+")
_URI_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/\s:@\"']*):(?P<pw>[^@\s/\"']+)@"
)
_SECRET_KEYS = (
    r"password|passwd|new_password|[a-z_]*_password|access_key|[a-z_]*_access_key|private_key"
    r"|token|api_token|secret|client_secret|authorization"
)
_JSON_FIELD = re.compile(
    rf"(?P<key>[\"'](?:{_SECRET_KEYS})[\"']\s*:\s*)(?P<q>[\"'])(?P<value>(?:\\.|(?!(?P=q)).)*)(?P=q)",
    re.IGNORECASE,
)
_KV_PAIR = re.compile(rf"(?P<key>\b(?:{_SECRET_KEYS})\s*=\s*)(?P<value>[^\s&,;\"']+)", re.IGNORECASE)
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>aivenv1|Bearer)\s+(?P<value>[A-Za-z0-9+/=._\-~]{4,})")


def _has_secret_key_word(lowered: str) -> bool:
    """Every `_SECRET_KEYS` alternative contains one of these words (in any case), so text
    without any of them cannot match `_JSON_FIELD` or `_KV_PAIR`."""
    return (
        "passw" in lowered
        or "token" in lowered
        or "secret" in lowered
        or "_key" in lowered
        or "authorization" in lowered
    )


class SecretRegistry:
    """Thread-safe set of exact secret strings to mask, bounded (least recently added dropped).

    Fed by the Aiven adapter with the token and every credential it reads; consulted by
    `redact_text` and the structlog processor. Secrets are indexed by their first
    `_KEY_LENGTH` characters (Aiven passwords share the `AVNS_` prefix, so shorter keys would
    crowd into few buckets), so a lookup costs a few dict probes per position of the text, not
    one substring search per known secret (a cluster can have tens of thousands).
    """

    def __init__(self, max_entries: int = 50_000) -> None:
        self._lock = threading.Lock()
        #: Every secret (and its variants), oldest first (a dict keeps insertion order and costs
        #: half an OrderedDict per entry; there is one entry per service user).
        self._entries: dict[str, None] = {}
        #: Index key -> the one secret it leads to, or a set when several share it (rare: a
        #: one-element set costs 216 bytes, a reference 8).
        self._index: dict[str, str | set[str]] = {}
        self._key_lengths: Counter[int] = Counter()
        self._max = max_entries

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            for secret in secrets:
                if not secret or len(secret) < MIN_SECRET_LENGTH:
                    continue
                if _PEM_BLOCK.fullmatch(secret.strip()):
                    # Whole PEM blocks are always masked by the pattern rules; storing every
                    # user's key (about 2 KB each) would only cost memory.
                    continue
                for variant in _variants(secret):
                    if variant in self._entries:
                        del self._entries[variant]  # now the most recently added again
                        self._entries[variant] = None
                        continue
                    self._entries[variant] = None
                    key = _index_key(variant)
                    bucket = self._index.get(key)
                    if bucket is None:
                        self._index[key] = variant
                    elif isinstance(bucket, str):
                        self._index[key] = {bucket, variant}
                    else:
                        bucket.add(variant)
                    self._key_lengths[len(key)] += 1
            while len(self._entries) > self._max:
                oldest = next(iter(self._entries))
                del self._entries[oldest]
                self._unindex(oldest)

    def discard(self, secret: str) -> None:
        with self._lock:
            for variant in _variants(secret):
                if self._entries.pop(variant, 0) is None:
                    self._unindex(variant)

    def _unindex(self, variant: str) -> None:
        key = _index_key(variant)
        bucket = self._index.get(key)
        if bucket is None or (variant != bucket if isinstance(bucket, str) else variant not in bucket):
            return
        if isinstance(bucket, str) or len(bucket) == 1:
            del self._index[key]
        else:
            bucket.discard(variant)
            if len(bucket) == 1:
                self._index[key] = next(iter(bucket))
        self._key_lengths[len(key)] -= 1
        if not self._key_lengths[len(key)]:
            del self._key_lengths[len(key)]

    def found_in(self, text: str) -> list[str]:
        """Known secrets occurring in `text`, longest first (so one containing another wins)."""
        with self._lock:
            if not self._index:
                return []
            candidates: set[str] = set()
            index = self._index
            for length in self._key_lengths:
                for i in range(len(text) - length + 1):
                    bucket = index.get(text[i : i + length])
                    if bucket is None:
                        continue
                    if isinstance(bucket, str):
                        candidates.add(bucket)
                    else:
                        candidates.update(bucket)
        return sorted((c for c in candidates if c in text), key=len, reverse=True)

    def snapshot(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._entries)

    def __bool__(self) -> bool:
        # An empty registry is still a registry (`registry or default` must not replace it).
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, secret: object) -> bool:
        with self._lock:
            return secret in self._entries


def _index_key(secret: str) -> str:
    """A substring of the secret to index it by: any substring finds it, and a distinctive one
    keeps buckets small (PEM keys all start with the same header, so skip past it)."""
    offset = 0
    if secret.startswith("-----"):
        for sep in ("\n", "\\n"):
            at = secret.find(sep, 5)
            if at != -1:
                offset = at + len(sep)
                break
        if len(secret) - offset < MIN_SECRET_LENGTH:
            offset = 0
    return secret[offset : offset + _KEY_LENGTH]


def _variants(secret: str) -> tuple[str, ...]:
    """The secret as it may appear in text: raw, and JSON-escaped (PEM newlines become ``\\n``)."""
    escaped = secret.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return (secret,) if escaped == secret else (secret, escaped)


#: The process-wide registry; the adapter feeds it unless given another one.
default_registry = SecretRegistry()


def redact_text(
    text: str,
    known_secrets: Iterable[str] = (),
    *,
    registry: SecretRegistry | None = None,
) -> str:
    """Return `text` with every credential-looking part and every known secret masked.

    `known_secrets` are extra exact strings for this call; `registry` (default: the process-wide
    one) supplies the secrets seen so far.
    """
    if not text:
        return text
    reg = default_registry if registry is None else registry
    out = text
    # Exact secrets first: once a PEM block is rewritten, an exact key would no longer match.
    found = reg.found_in(out)
    extra = _filtered(known_secrets) if known_secrets else ()
    if found or extra:
        for secret in sorted({*extra, *found}, key=len, reverse=True):
            if secret in out:
                out = out.replace(secret, MASK)
    # Each rule runs only when the literal text it needs is present (most log values, such as
    # names and timestamps, contain none): the same result for a fraction of the regex work.
    if "-----BEGIN " in out:
        out = _PEM_BLOCK.sub(lambda m: f"-----BEGIN {m.group(1)}-----{MASK}-----END {m.group(1)}-----", out)
        out = _PEM_OPEN.sub(lambda m: f"-----BEGIN {m.group(1)}-----{MASK}", out)
    if "AVNS_" in out:
        out = _AVNS.sub(MASK, out)
    if "://" in out and "@" in out:
        out = _URI_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", out)
    if _has_secret_key_word(out.lower()):
        out = _JSON_FIELD.sub(lambda m: f"{m.group('key')}{m.group('q')}{MASK}{m.group('q')}", out)
        out = _KV_PAIR.sub(lambda m: f"{m.group('key')}{MASK}", out)
    if "aivenv1" in out or "Bearer" in out:
        out = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {MASK}", out)
    return out


def _filtered(secrets: Iterable[str]) -> list[str]:
    found: list[str] = []
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            found.extend(_variants(secret))
    return sorted(found, key=len, reverse=True)


#: What `redact_value` returns: scalars kept, text redacted, containers rebuilt of the same.
Redacted: TypeAlias = "bool | int | float | str | dict[object, Redacted] | list[Redacted] | None"


def redact_value(
    value: object, known_secrets: Iterable[str] = (), *, registry: SecretRegistry | None = None
) -> Redacted:
    """Redact strings inside a value (str, bytes, mappings, sequences); others are rendered first.

    Non-container, non-scalar objects (exceptions, dataclasses) are turned into their `str` and
    redacted, since their text is what a renderer would print.
    """
    secrets = tuple(known_secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value, secrets, registry=registry)
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"), secrets, registry=registry)
    if isinstance(value, Mapping):
        return {k: redact_value(v, secrets, registry=registry) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v, secrets, registry=registry) for v in value]
    return redact_text(str(value), secrets, registry=registry)


class RedactingProcessor:
    """structlog processor: redacts every value of the event dict (including `event`).

    Add it last before the renderer, e.g.
    ``structlog.configure(processors=[..., RedactingProcessor(), JSONRenderer()])``.
    Values already rendered by earlier processors (``exception``, ``stack``) are strings and get
    masked too.
    """

    def __init__(self, registry: SecretRegistry | None = None, known_secrets: Iterable[str] = ()) -> None:
        self._registry = registry
        self._known = tuple(known_secrets)

    def __call__(
        self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            event_dict[key] = redact_value(event_dict[key], self._known, registry=self._registry)
        return event_dict
