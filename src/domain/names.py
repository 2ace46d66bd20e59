"""Aiven service-user names (product spec §3) and the ownership predicates built on them.

Compatible formulas, bit-exact with the Go operator:

- ``suffix(generation, name)``: CRC-32 (IEEE, ``zlib.crc32``) of ``f"{generation}{name}"`` as
  4 big-endian bytes, URL-safe base64 without padding, first 3 characters.
- Kafka: ``<short_team>_<short_app>_<hash>_<suffix>`` with ``hash`` = 8 lower-case hex digits
  of CRC-32 of ``f"{namespace}{name}"``, ``short_team = shorten(namespace, "team", 20)`` and
  ``short_app = shorten(name, namespace, 30)``.
- OpenSearch: ``<namespace><access_suffix>-<suffix>``.
- Valkey: ``<app name><access_suffix>-<suffix>``.

Fallback rule (NEW), used only when the compatible name is not a valid Aiven user name
(longer than 64 characters, a character outside ``[A-Za-z0-9_.-]``, or a leading ``-``/``.``):
every name is ``stem + tail`` where ``tail`` carries the rotating part (``_<suffix>`` for
Kafka, ``<access_suffix>-<suffix>`` otherwise) and ``stem`` the owner part. The fallback
name is ``<head>.<tag><tail>`` where ``tag`` is the 8-hex CRC-32 of the untouched stem and
``head`` is the stem with invalid characters replaced by ``_``, cut so the whole name is at
most 64 characters, with leading ``-``/``.`` removed (``<tag><tail>`` when nothing is left).
The ``.`` marks fallback names (compatible stems of real apps never need it) and the tag
keeps different long stems apart. The rule depends only on the stem and the tail's length,
so ownership can be checked for any generation.

Collision rule (NEW): when the chosen name is already taken in the service by a user that is not
this application's (the shell knows: the user exists in Aiven but the app's Secret does not
record it), `username_candidates` offers alternatives that differ only in the 3-character
suffix, computed as CRC-32 of ``f"{generation}{name}.{n}"`` for n = 1, 2, ... Everything before
the suffix is unchanged, so the Kafka topic operator's ACL patterns, `owner_matches` and
`matches_our_scheme` hold for alternatives too. `first_free` picks the first untaken candidate;
`choose_username` is that choice for a section (the reconcile creates it, the sweep expects it).
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass

from aivenator.domain.application import Access
from aivenator.domain.facts import ServiceType

MAX_USERNAME_LENGTH = 64
_VALID_USERNAME = re.compile(r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,63}$")
_INVALID_CHAR = re.compile(r"[^-._A-Za-z0-9]")
_SUFFIX_CHARS = r"[-_A-Za-z0-9]{3}"
#: A stand-in for the 3-character generation suffix when checking ownership.
_PLACEHOLDER_SUFFIX = "AAA"

#: Users Aiven creates itself; never ours, never deleted.
BUILTIN_USERS = frozenset({"avnadmin", "default", "root", "os-sec-admin", "metrics_user_datadog"})

_KAFKA_SCHEME = re.compile(r"^.+[_.][0-9a-f]{8}_" + _SUFFIX_CHARS + r"$")
_DASH_SCHEME = re.compile(r"^.+-" + _SUFFIX_CHARS + r"$")


@dataclass(frozen=True, slots=True)
class NameChoice:
    """A user name and whether it is the compatible formula's (else the fallback rule's)."""

    name: str
    compatible: bool
    reason: str = ""


def crc32(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & 0xFFFFFFFF


def suffix(generation: int, name: str, alternative: int = 0) -> str:
    """The generation suffix; `alternative` > 0 gives the collision-avoiding variants."""
    text = f"{generation}{name}" if alternative == 0 else f"{generation}{name}.{alternative}"
    digest = crc32(text).to_bytes(4, "big")
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:3]


def access_suffix(access: Access | str | None) -> str:
    value = str(access) if access is not None else ""
    if value == Access.ADMIN:
        return ""
    if value == Access.WRITE:
        return "-w"
    if value == Access.READWRITE:
        return "-rw"
    return "-r"


def shorten(s: str, prefix: str, maxlen: int) -> str:
    """Drop `prefix` (unless `s` equals it) and leading dashes, cut to `maxlen`, then drop
    trailing dashes if more than one character is left."""
    if s.startswith(prefix) and s != prefix:
        s = s[len(prefix) :]
    s = s.lstrip("-")
    s = s[:maxlen]
    if len(s) > 1:
        s = s.rstrip("-")
    return s


def is_valid_username(name: str) -> bool:
    return bool(_VALID_USERNAME.match(name))


def _invalid_reason(name: str) -> str:
    if len(name) > MAX_USERNAME_LENGTH:
        return f"compatible name would be {len(name)} characters (Aiven allows {MAX_USERNAME_LENGTH})"
    if not name:
        return "compatible name would be empty"
    if _INVALID_CHAR.search(name):
        return "compatible name would contain characters Aiven rejects"
    return "compatible name would start with a character Aiven rejects"


def _choose(stem: str, tail: str) -> NameChoice:
    candidate = stem + tail
    if is_valid_username(candidate):
        return NameChoice(candidate, True)
    tag = f"{crc32(stem):08x}"
    budget = MAX_USERNAME_LENGTH - len(tail) - len(tag) - 1
    head = _INVALID_CHAR.sub("_", stem)[: max(budget, 0)].lstrip("-.")
    name = f"{head}.{tag}{tail}" if head else f"{tag}{tail}"
    return NameChoice(name, False, _invalid_reason(candidate) + "; used the documented fallback rule")


def _kafka_stem(namespace: str, app_name: str) -> str:
    short_team = shorten(namespace, "team", 20)
    short_app = shorten(app_name, namespace, 30)
    return f"{short_team}_{short_app}_{crc32(namespace + app_name):08x}"


def kafka_username(namespace: str, app_name: str, generation: int, alternative: int = 0) -> NameChoice:
    return _choose(_kafka_stem(namespace, app_name), "_" + suffix(generation, app_name, alternative))


def opensearch_username(
    namespace: str, app_name: str, generation: int, access: Access | None, alternative: int = 0
) -> NameChoice:
    return _choose(namespace, f"{access_suffix(access)}-{suffix(generation, app_name, alternative)}")


def valkey_username(
    app_name: str, generation: int, access: Access | None, alternative: int = 0
) -> NameChoice:
    return _choose(app_name, f"{access_suffix(access)}-{suffix(generation, app_name, alternative)}")


def username_for(
    service_type: ServiceType,
    namespace: str,
    app_name: str,
    generation: int,
    access: Access | None,
    alternative: int = 0,
) -> NameChoice:
    if service_type is ServiceType.KAFKA:
        return kafka_username(namespace, app_name, generation, alternative)
    if service_type is ServiceType.OPENSEARCH:
        return opensearch_username(namespace, app_name, generation, access, alternative)
    return valkey_username(app_name, generation, access, alternative)


def username_candidates(
    service_type: ServiceType,
    namespace: str,
    app_name: str,
    generation: int,
    access: Access | None,
    alternatives: int = 3,
) -> tuple[NameChoice, ...]:
    """The name to use, then `alternatives` collision-avoiding variants (see the module doc)."""
    primary = username_for(service_type, namespace, app_name, generation, access)
    variants = []
    for n in range(1, alternatives + 1):
        variant = username_for(service_type, namespace, app_name, generation, access, n)
        reason = f"user name {primary.name} belongs to another application; using alternative {n}"
        variants.append(NameChoice(variant.name, False, reason))
    return (primary, *variants)


def first_free(candidates: Sequence[NameChoice], taken_by_others: Container[str]) -> NameChoice | None:
    """The first candidate whose name no other application uses; None when all are taken."""
    return next((c for c in candidates if c.name not in taken_by_others), None)


#: How many collision-avoiding variants a section may fall back to.
NAME_ALTERNATIVES = 3


def choose_username(
    service_type: ServiceType,
    namespace: str,
    app_name: str,
    generation: int,
    access: Access | None,
    taken_by_others: Container[str],
    recorded: Container[str],
) -> NameChoice | None:
    """The one name a section uses on a service: the candidate its own Secret already records
    there (`recorded`) if no other Secret records it too, else the first of its candidates (the
    compatible name, then `NAME_ALTERNATIVES` variants) no other Secret records there.

    Keeping the recorded candidate means a section settles on one user: a variant chosen while
    the compatible name was taken stays in use when that name is freed later (switching would
    leave the variant behind). The reconcile provisions this name and the orphan sweep expects
    only this name, so any other variant of ours that no Secret records is swept once past the
    grace period instead of spared forever."""
    candidates = username_candidates(service_type, namespace, app_name, generation, access, NAME_ALTERNATIVES)
    kept = next((c for c in candidates if c.name in recorded and c.name not in taken_by_others), None)
    return kept if kept is not None else first_free(candidates, taken_by_others)


#: Label values of `aivenator_service_users_count{username_convention}`, the Go operator's split of
#: a service's users: exactly three underscores (its Kafka scheme), else any dot, else other.
USERNAME_CONVENTIONS = ("dot", "underscore", "other")


def username_convention(username: str) -> str:
    if username.count("_") == 3:
        return "underscore"
    if "." in username:
        return "dot"
    return "other"


def count_by_convention(usernames: Iterable[str]) -> dict[str, int]:
    """How many of `usernames` follow each convention (every convention present, 0 included)."""
    counts = dict.fromkeys(USERNAME_CONVENTIONS, 0)
    for username in usernames:
        counts[username_convention(username)] += 1
    return counts


def is_builtin(username: str) -> bool:
    return username in BUILTIN_USERS


def matches_our_scheme(service_type: ServiceType, username: str) -> bool:
    """Could this user name have been produced by our naming rules (any app, any generation)?"""
    if is_builtin(username) or not is_valid_username(username):
        return False
    if service_type is ServiceType.KAFKA:
        return bool(_KAFKA_SCHEME.match(username))
    return bool(_DASH_SCHEME.match(username))


def _same_but_suffix(expected_with_placeholder: str, username: str) -> bool:
    head = expected_with_placeholder[: -len(_PLACEHOLDER_SUFFIX)]
    return (
        len(username) == len(expected_with_placeholder)
        and username.startswith(head)
        and bool(re.fullmatch(_SUFFIX_CHARS, username[len(head) :]))
    )


def owner_matches(service_type: ServiceType, username: str, namespace: str, app_name: str) -> bool:
    """Does `username` belong to `namespace`/`app_name` under our rules, for any generation?

    Kafka names embed a hash of namespace and app, so the check is exact. OpenSearch names carry
    only the namespace (any app of the namespace matches) and Valkey names only the app name
    (any namespace matches): for those, the finalizer must also check that the Aiven service is
    owned by the Secret's namespace (`aivenator.domain.actions.RequiredObject`). Built-in users never match.
    """
    if is_builtin(username) or not is_valid_username(username):
        return False
    if service_type is ServiceType.KAFKA:
        expected = _choose(_kafka_stem(namespace, app_name), "_" + _PLACEHOLDER_SUFFIX).name
        return _same_but_suffix(expected, username)
    stem = namespace if service_type is ServiceType.OPENSEARCH else app_name
    return any(
        _same_but_suffix(_choose(stem, f"{access_suffix(a)}-{_PLACEHOLDER_SUFFIX}").name, username)
        for a in Access
    )
