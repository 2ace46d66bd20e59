"""Properties of the per-user ACL edits (`aivenator.domain.opensearch_acl`)."""

from __future__ import annotations

from collections.abc import Mapping

from aivenator.domain.opensearch_acl import user_absent, user_rules_hold, with_user_rules, without_user
from hypothesis import given
from hypothesis import strategies as st

USERS = ("a-r-AAA", "b-rw-BBB", "c-w-CCC")
rules = st.lists(
    st.fixed_dictionaries(
        {"index": st.sampled_from(["_*", "*", "logs-*"]), "permission": st.sampled_from(["read", "admin"])}
    ),
    max_size=3,
)
entries = st.lists(
    st.fixed_dictionaries(
        {"username": st.sampled_from(USERS), "rules": rules},
        optional={"extra": st.just("kept")},
    ),
    max_size=6,
)


def rules_of(entry: Mapping[str, object]) -> list[tuple[str, str]]:
    raw = entry.get("rules")
    assert isinstance(raw, list)
    return [(str(r["index"]), str(r["permission"])) for r in raw]


@given(entries, st.sampled_from(USERS), rules)
def test_setting_a_users_rules_leaves_one_entry_and_everyone_else_as_read(
    doc: list[dict[str, object]], username: str, want: list[dict[str, str]]
) -> None:
    edited = with_user_rules(doc, username, want, rules_of)
    assert user_rules_hold(edited, username, want, rules_of)
    assert [e for e in edited if e["username"] != username] == [e for e in doc if e["username"] != username]
    assert with_user_rules(edited, username, want, rules_of) == edited  # idempotent


@given(entries, st.sampled_from(USERS))
def test_removing_a_user_removes_only_that_user(doc: list[dict[str, object]], username: str) -> None:
    edited = without_user(doc, username)
    assert user_absent(edited, username)
    assert edited == [e for e in doc if e["username"] != username]


def test_an_entry_holding_the_rules_is_kept_as_it_was() -> None:
    entry: dict[str, object] = {"username": "a-r-AAA", "rules": [{"index": "*", "permission": "read"}], "x": 1}
    assert with_user_rules([entry], "a-r-AAA", [{"index": "*", "permission": "read"}], rules_of)[0] is entry
