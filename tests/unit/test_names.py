"""Service-user names: the compatible formulas (hand-computed tables) and the NEW guarantees."""

from __future__ import annotations

import re

import pytest
from aivenator.domain.application import Access
from aivenator.domain.facts import ServiceType
from aivenator.domain.names import (
    access_suffix,
    first_free,
    is_valid_username,
    kafka_username,
    matches_our_scheme,
    opensearch_username,
    owner_matches,
    shorten,
    suffix,
    username_candidates,
    valkey_username,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.strategies import app_names, dns_labels

AIVEN_NAME = re.compile(r"^[A-Za-z0-9_][-._A-Za-z0-9]{0,63}$")

# Expected names computed by hand from the formula in product-spec §3; CRC-32 values and
# suffixes were computed separately with zlib/base64 and pasted here.
KAFKA_TABLE = [
    ("teamfoo", "teamfoo-bar", 1, "foo_bar_a450ecaa_XNp"),
    # namespace equal to the prefix is kept; app starting with the namespace loses it and the dash
    ("team", "team-x", 2, "team_x_80fcd861_3pC"),
    ("aura", "myapp", 0, "aura_myapp_b044f677_9AJ"),
    # both parts cut (20 / 30) and the trailing dash of the team part dropped
    (
        "team-very-long-namespace-name-here",
        "team-very-long-namespace-name-here-application-with-a-really-long-name",
        7,
        "very-long-namespace_application-with-a-really-long_7115455a_BQX",
    ),
    # several leading dashes after the prefix are dropped
    ("team--x", "team--x-app", 1, "x_app_664d3d36_NRd"),
    # app equal to the namespace keeps its name
    ("foo", "foo", 5, "foo_foo_647af61e_lYN"),
    ("team-a", "orders", 3, "a_orders_f54c23b8_UAo"),
    (
        "default",
        "default-api-gateway-service-v2-backend",
        12,
        "default_api-gateway-service-v2-backend_8a951b5a_0H5",
    ),
    # app cut at 30 ends in a dash, which is dropped
    ("nais", "application-with-a-name-of-th-x", 1, "nais_application-with-a-name-of-th_de7b56be_5N-"),
    ("team-abcdefghijklmnopqrs-tu", "app", 4, "abcdefghijklmnopqrs_app_7750d9c6_aCI"),
]


@pytest.mark.parametrize(("namespace", "name", "generation", "expected"), KAFKA_TABLE)
def test_kafka_names_match_the_go_operator(namespace: str, name: str, generation: int, expected: str) -> None:
    choice = kafka_username(namespace, name, generation)
    assert choice.name == expected
    assert choice.compatible
    assert owner_matches(ServiceType.KAFKA, expected, namespace, name)
    assert matches_our_scheme(ServiceType.KAFKA, expected)


def test_suffix_is_first_three_chars_of_urlsafe_crc() -> None:
    assert suffix(1, "myapp") == "P16"
    assert suffix(2, "myapp") == "ucr"
    assert suffix(3, "orders") == "UAo"


@pytest.mark.parametrize(
    ("access", "expected"),
    [(Access.ADMIN, ""), (Access.WRITE, "-w"), (Access.READWRITE, "-rw"), (Access.READ, "-r"), (None, "-r")],
)
def test_access_suffix(access: Access | None, expected: str) -> None:
    assert access_suffix(access) == expected


def test_opensearch_and_valkey_names() -> None:
    assert opensearch_username("team-a", "myapp", 1, Access.READWRITE).name == "team-a-rw-P16"
    assert opensearch_username("team-a", "myapp", 1, Access.ADMIN).name == "team-a-P16"
    assert valkey_username("myapp", 2, Access.WRITE).name == "myapp-w-ucr"
    assert valkey_username("myapp", 2, None).name == "myapp-r-ucr"


def test_shorten_rules() -> None:
    assert shorten("team", "team", 20) == "team"
    assert shorten("teamfoo", "team", 20) == "foo"
    assert shorten("team---", "team", 20) == ""
    assert shorten("x-", "y", 2) == "x"
    assert shorten("-", "y", 1) == ""
    assert shorten("ab-cd", "", 3) == "ab"
    assert shorten("a*b", "", 30) == "a*b"


def test_long_valkey_app_name_uses_documented_fallback() -> None:
    app = "a" * 70
    choice = valkey_username(app, 1, Access.READ)
    assert not choice.compatible
    assert len(choice.name) == 64
    assert "64" in choice.reason
    # <head>.<crc32 of stem><tail>: the tail (access + generation suffix) survives intact
    assert choice.name.endswith("-r-" + suffix(1, app))
    assert re.fullmatch(r"a+\.[0-9a-f]{8}-r-.{3}", choice.name)
    assert owner_matches(ServiceType.VALKEY, choice.name, "any-namespace", app)
    assert not owner_matches(ServiceType.VALKEY, choice.name, "any-namespace", "a" * 69)


def test_fallback_replaces_characters_aiven_rejects() -> None:
    choice = valkey_username("bad/name", 1, Access.ADMIN)
    assert not choice.compatible
    assert is_valid_username(choice.name)
    assert choice.name.startswith("bad_name.")


def test_builtin_users_are_never_ours() -> None:
    for user in ("avnadmin", "default", "root"):
        for service in ServiceType:
            assert not matches_our_scheme(service, user)
            assert not owner_matches(service, user, user, user)


def test_name_game_between_namespaces_does_not_confuse_kafka_ownership() -> None:
    first = kafka_username("a", "b-c", 1).name
    second = kafka_username("a-b", "c", 1).name
    assert first != second
    assert owner_matches(ServiceType.KAFKA, first, "a", "b-c")
    assert not owner_matches(ServiceType.KAFKA, first, "a-b", "c")
    assert not owner_matches(ServiceType.KAFKA, second, "a", "b-c")


def test_opensearch_ownership_is_by_namespace_only() -> None:
    name = opensearch_username("team-a", "myapp", 4, Access.WRITE).name
    assert owner_matches(ServiceType.OPENSEARCH, name, "team-a", "other-app")
    assert not owner_matches(ServiceType.OPENSEARCH, name, "team-b", "myapp")


names_and_generations = st.tuples(dns_labels(), st.integers(0, 10**6)).flatmap(
    lambda t: st.tuples(st.just(t[0]), app_names(t[0]), st.just(t[1]))
)


@settings(max_examples=150)
@given(names_and_generations, st.sampled_from([None, *Access]))
def test_names_are_always_valid_and_owned(args: tuple[str, str, int], access: Access | None) -> None:
    namespace, name, generation = args
    for service, choice in (
        (ServiceType.KAFKA, kafka_username(namespace, name, generation)),
        (ServiceType.OPENSEARCH, opensearch_username(namespace, name, generation, access)),
        (ServiceType.VALKEY, valkey_username(name, generation, access)),
    ):
        assert AIVEN_NAME.match(choice.name), choice
        assert choice.compatible == (choice.reason == "")
        assert owner_matches(service, choice.name, namespace, name)
        assert matches_our_scheme(service, choice.name)
        # deterministic
        assert choice == (
            kafka_username(namespace, name, generation)
            if service is ServiceType.KAFKA
            else opensearch_username(namespace, name, generation, access)
            if service is ServiceType.OPENSEARCH
            else valkey_username(name, generation, access)
        )


@settings(max_examples=150)
@given(names_and_generations, names_and_generations)
def test_kafka_names_differ_for_different_apps(a: tuple[str, str, int], b: tuple[str, str, int]) -> None:
    if a == b:
        return
    name_a = kafka_username(*a).name
    name_b = kafka_username(*b).name
    if a[:2] != b[:2]:
        # different apps: the CRC of namespace+name differs unless CRC-32 collides
        from zlib import crc32

        if crc32((a[0] + a[1]).encode()) != crc32((b[0] + b[1]).encode()):
            assert name_a != name_b
            assert not owner_matches(ServiceType.KAFKA, name_a, b[0], b[1])
    else:
        # same app, other generation: only the 3-character suffix may change
        assert name_a[:-3] == name_b[:-3]


def test_collision_alternatives_change_only_the_suffix() -> None:
    for service in ServiceType:
        candidates = username_candidates(service, "team-a", "myapp", 4, Access.WRITE)
        primary, *alternatives = candidates
        assert primary.compatible and len(alternatives) == 3
        assert len({c.name for c in candidates}) == 4
        for alt in alternatives:
            assert not alt.compatible and "another application" in alt.reason
            assert alt.name[:-3] == primary.name[:-3]
            assert owner_matches(service, alt.name, "team-a", "myapp")
            assert matches_our_scheme(service, alt.name)
    # hand-checked: alternative 1 of generation 1 of myapp is CRC-32 of "1myapp.1"
    assert suffix(1, "myapp", 1) == "K0x"
    kafka = username_candidates(ServiceType.KAFKA, "team-a", "myapp", 1, None)
    assert first_free(kafka, set()) == kafka[0]
    assert first_free(kafka, {kafka[0].name}) == kafka[1]
    assert first_free(kafka, {c.name for c in kafka}) is None


def test_a_section_keeps_the_candidate_its_own_secret_records_unless_another_secret_records_it() -> None:
    from aivenator.domain.names import choose_username

    kafka = username_candidates(ServiceType.KAFKA, "team-a", "myapp", 1, None)

    def choose(taken: set[str], recorded: set[str]) -> str | None:
        choice = choose_username(ServiceType.KAFKA, "team-a", "myapp", 1, None, taken, recorded)
        return None if choice is None else choice.name

    assert choose(set(), set()) == kafka[0].name
    # A variant chosen while the compatible name was taken stays when that name is freed.
    assert choose(set(), {kafka[1].name}) == kafka[1].name
    # Another Secret recording it too: not ours alone, the first free candidate instead.
    assert choose({kafka[1].name}, {kafka[1].name}) == kafka[0].name
    # A name that is not a candidate (an older generation's) is not kept.
    old = username_candidates(ServiceType.KAFKA, "team-a", "myapp", 0, None)[0].name
    assert choose(set(), {old}) == kafka[0].name
    assert choose({c.name for c in kafka}, set()) is None


def test_users_are_counted_by_the_go_operators_naming_conventions() -> None:
    from aivenator.domain.names import count_by_convention, username_convention

    assert username_convention("team_app_0a1b2c3d_x9Z") == "underscore"  # exactly three underscores
    assert username_convention("team.app_0a1b2c3d_x9Z") == "dot"
    assert username_convention("app-w-x9Z") == "other"
    assert username_convention("a_b_c_d_e") == "other"
    assert count_by_convention(["avnadmin", "a.b", "t_a_b_c"]) == {"dot": 1, "underscore": 1, "other": 1}
    assert count_by_convention([]) == {"dot": 0, "underscore": 0, "other": 0}
