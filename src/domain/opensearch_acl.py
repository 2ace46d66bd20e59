"""Per-user edits of the shared OpenSearch ACL document (product spec section 4.2), as values.

A purely computational module. The document holds one entry per user
(`{"username": ..., "rules": [{"index": ..., "permission": ...}, ...]}`), shared by every
application using the service; the adapter reads it, applies one of these edits, writes the whole
document back and re-reads it to check the edit held (`*_holds`). Entries of other users are
kept exactly as read, in their order. `rules_of` decodes an entry's rules to (index, permission)
pairs (wire decoding stays in the adapter).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

Entry = dict[str, object]
RulesOf = Callable[[Mapping[str, object]], list[tuple[str, str]]]


def with_user_rules(
    entries: Sequence[Entry], username: str, rules: list[dict[str, str]], rules_of: RulesOf
) -> list[Entry]:
    """`entries` with exactly one entry for `username`, holding `rules` (an entry already holding
    them is kept as it is, duplicates of it are dropped, a missing one is appended)."""
    want = [(r["index"], r["permission"]) for r in rules]
    out: list[Entry] = []
    found = False
    for entry in entries:
        if entry.get("username") != username:
            out.append(entry)
            continue
        if found:
            continue
        found = True
        out.append(entry if rules_of(entry) == want else {**entry, "rules": rules})
    if not found:
        out.append({"username": username, "rules": rules})
    return out


def user_rules_hold(
    entries: Sequence[Mapping[str, object]], username: str, rules: list[dict[str, str]], rules_of: RulesOf
) -> bool:
    """Does the document hold exactly one entry for `username`, with `rules`?"""
    mine = [e for e in entries if e.get("username") == username]
    return len(mine) == 1 and rules_of(mine[0]) == [(r["index"], r["permission"]) for r in rules]


def without_user(entries: Sequence[Entry], username: str) -> list[Entry]:
    """`entries` without any entry for `username`."""
    return [e for e in entries if e.get("username") != username]


def user_absent(entries: Sequence[Mapping[str, object]], username: str) -> bool:
    return all(e.get("username") != username for e in entries)
