"""Bulky string members cut out of a JSON body while it streams in, before it is held whole.

A service listing answers with every user's certificate and private key: about 3 KB per user,
tens of MB at 10k users, where the operator reads only the names. Dropping those members while
the body is decoded (`object_pairs_hook`) still holds the whole raw body, its decoded text and
every value at once; the heap that peak leaves behind stayed in the operator's RSS after each
orphan sweep. `MemberElider` replaces the string value of each named member with `null` chunk by
chunk, so only the small remainder is ever held; the caller still drops the members when it
decodes (the elision is only a saving: whatever it cannot recognise passes through unchanged,
and the decoded result is the same either way).

How a member is recognised without tracking the whole document: in valid JSON a `"` preceded by
an even number of backslashes is a real quote, and a real quote followed by `name"` can only open
a string whose text is exactly `name` (a closing quote must be followed by `,:]}` or
whitespace); followed by `:` it is a member's key. Its string value then ends at the next real
quote. A key written with escapes, or with more whitespace around `:` than fits the look-ahead
at a chunk boundary, is simply not elided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WS = rb"[ \t\r\n]*"
#: Whitespace allowed around the `:` when a member straddles two chunks (more is left as is).
_STRADDLE_SLACK = 32


def _backslashes_before(buf: bytes, index: int, floor: int = 0) -> int:
    """How many backslashes immediately precede `buf[index]`, looking no further back than `floor`."""
    count = 0
    i = index - 1
    while i >= floor and buf[i] == 0x5C:
        count += 1
        i -= 1
    return count


class MemberElider:
    """Feed a JSON body in chunks; get back the same body with the string values of the members
    named `keys` replaced by `null`. Not thread-safe: one per body."""

    def __init__(self, keys: Iterable[str]) -> None:
        names = sorted({k.encode() for k in keys}, key=len, reverse=True)
        if not names:
            raise ValueError("no member names to elide")
        alternatives = b"|".join(re.escape(n) for n in names)
        self._pattern = re.compile(b'"(?:' + alternatives + b')"' + _WS + b":" + _WS + b'"')
        self._hold = max(len(n) for n in names) + 4 + _STRADDLE_SLACK
        #: Input not decided yet (only outside a value being cut).
        self._pending = b""
        #: Backslashes of the input immediately before `_pending` (only their parity matters).
        self._backslashes = 0
        #: Inside a string value being cut out.
        self._cutting = False
        #: While cutting: the last byte consumed was an unpaired backslash.
        self._escaped = False

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        if self._cutting:
            end = self._cut(chunk, 0)
            if end < 0:
                return b""
            chunk = chunk[end:]
            self._backslashes = 0  # the byte before is the value's closing quote
        buf = self._pending + chunk
        emitted = 0
        search = 0
        while (match := self._pattern.search(buf, search)) is not None:
            start = match.start()
            if self._backslashes_at(buf, start) % 2 == 1:  # an escaped quote inside some string: not a key
                search = start + 1
                continue
            value_quote = match.end() - 1
            out.append(buf[emitted:value_quote])
            out.append(b"null")
            end = self._cut(buf, match.end())
            if end < 0:
                self._pending = b""
                return b"".join(out)
            emitted = search = end
        keep_from = max(emitted, len(buf) - self._hold)
        out.append(buf[emitted:keep_from])
        self._backslashes = self._backslashes_at(buf, keep_from)
        self._pending = buf[keep_from:]
        return b"".join(out)

    def _backslashes_at(self, buf: bytes, index: int) -> int:
        """The backslashes of the input just before `buf[index]`, counting those before `buf`
        when the run reaches its start. (After a cut-out value the run stops at its closing
        quote, so the run never crosses what was cut.)"""
        count = _backslashes_before(buf, index)
        return count + self._backslashes if count == index else count

    def close(self) -> bytes:
        """The rest of the body (a body cut off inside a value yields invalid JSON, as it was)."""
        rest, self._pending = self._pending, b""
        return b"" if self._cutting else rest

    def _cut(self, buf: bytes, index: int) -> int:
        """Consume a string value from `buf[index]` on: the index just past its closing quote, or
        -1 when `buf` ends first (then the value continues in the next chunk)."""
        self._cutting = True
        if self._escaped:
            if index >= len(buf):
                return -1
            index += 1
            self._escaped = False
        floor = index
        while True:
            quote = buf.find(b'"', index)
            if quote < 0:
                self._escaped = _backslashes_before(buf, len(buf), floor) % 2 == 1
                return -1
            if _backslashes_before(buf, quote, floor) % 2 == 0:
                self._cutting = False
                return quote + 1
            index = quote + 1


def elide_members(chunks: Iterable[bytes], keys: Iterable[str]) -> bytes:
    """The whole body with the string values of the members named `keys` replaced by `null`;
    only the elided remainder is ever held."""
    elider = MemberElider(keys)
    parts = [elider.feed(chunk) for chunk in chunks]
    parts.append(elider.close())
    return b"".join(parts)
