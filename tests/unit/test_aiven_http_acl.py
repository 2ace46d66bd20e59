"""The shared OpenSearch ACL document: verified read-modify-write (sequential cases, fake clock)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from aivenator.adapters.aiven_http import RetryPolicy
from aivenator.adapters.fakes.aiven.core import FakeAiven
from aivenator.domain.facts import OpenSearchAcl, OpenSearchRule, Rejected
from returns.result import Failure, Success

from tests.support.clock import FakeClock
from tests.unit.test_aiven_http import PROJECT, TOKEN, make_adapter, make_fake

RW = (OpenSearchRule("_*", "readwrite"), OpenSearchRule("*", "readwrite"))
R = (OpenSearchRule("*", "read"),)
ACL_PATH = f"/v1/project/{PROJECT}/service/os/opensearch/acl"


def set_doc(fake: FakeAiven, doc: dict[str, Any]) -> None:
    body = json.dumps({"opensearch_acl_config": doc}).encode()
    reply = fake.process("POST", ACL_PATH, {"authorization": f"aivenv1 {TOKEN}"}, body)
    assert getattr(reply, "status", None) == 200


def entries(fake: FakeAiven) -> dict[str, list[tuple[str, str]]]:
    doc = fake.opensearch_acl(PROJECT, "os")
    return {e["username"]: [(r["index"], r["permission"]) for r in e["rules"]] for e in doc["acls"]}


def test_put_adds_entry_enables_and_keeps_others_and_unknown_fields() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    set_doc(
        fake,
        {
            "acls": [{"username": "other", "rules": [{"index": "x", "permission": "read"}]}],
            "enabled": False,
            "extendedAcl": True,
        },
    )
    aiven = make_adapter(fake, clock)
    assert aiven.put_user_rules(PROJECT, "os", "team-rw-abc", RW) == Success(None)
    doc = fake.opensearch_acl(PROJECT, "os")
    assert doc["enabled"] is True and doc["extendedAcl"] is True
    assert entries(fake) == {
        "other": [("x", "read")],
        "team-rw-abc": [("_*", "readwrite"), ("*", "readwrite")],
    }
    config = aiven.get_acl_config(PROJECT, "os").unwrap()
    assert config.enabled
    assert OpenSearchAcl("team-rw-abc", RW) in config.acls


def test_put_is_a_no_op_when_already_right_and_replaces_changed_rules() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    aiven = make_adapter(fake, clock)
    aiven.put_user_rules(PROJECT, "os", "u-r", R).unwrap()
    posts = len(fake.requests_matching("POST", "/opensearch/acl"))
    aiven.put_user_rules(PROJECT, "os", "u-r", R).unwrap()
    assert len(fake.requests_matching("POST", "/opensearch/acl")) == posts
    aiven.put_user_rules(PROJECT, "os", "u-r", RW).unwrap()
    assert entries(fake)["u-r"] == [("_*", "readwrite"), ("*", "readwrite")]
    assert len(fake.requests_matching("POST", "/opensearch/acl")) == posts + 1


def test_remove_drops_only_our_entry_and_absent_is_success_without_write() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    aiven = make_adapter(fake, clock)
    aiven.put_user_rules(PROJECT, "os", "keep", R).unwrap()
    aiven.put_user_rules(PROJECT, "os", "drop", RW).unwrap()
    assert aiven.remove_user_rules(PROJECT, "os", "drop") == Success(None)
    assert entries(fake) == {"keep": [("*", "read")]}
    assert fake.opensearch_acl(PROJECT, "os")["enabled"] is True
    posts = len(fake.requests_matching("POST", "/opensearch/acl"))
    assert aiven.remove_user_rules(PROJECT, "os", "drop") == Success(None)
    assert len(fake.requests_matching("POST", "/opensearch/acl")) == posts


def test_a_concurrent_writer_with_a_stale_snapshot_is_detected_and_repaired() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    set_doc(
        fake,
        {"acls": [{"username": "old", "rules": [{"index": "*", "permission": "read"}]}], "enabled": True},
    )
    stale = fake.opensearch_acl(PROJECT, "os")
    state = {"clobbered": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method == "POST" and state["clobbered"] == 0:
            # another process that read before our write now writes its own stale view
            state["clobbered"] += 1
            stale["acls"].append({"username": "theirs", "rules": [{"index": "t", "permission": "write"}]})
            set_doc(fake, stale)
        return response

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    assert aiven.put_user_rules(PROJECT, "os", "mine", R) == Success(None)
    assert set(entries(fake)) == {"old", "theirs", "mine"}
    assert aiven.request_counts()["ServiceOpenSearchAclSet"] == 2


def test_a_late_overwrite_during_the_settle_time_is_caught_by_the_second_check() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    snapshot = fake.opensearch_acl(PROJECT, "os")
    gets_after_post = {"n": 0, "armed": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            gets_after_post["n"] = 0
        elif gets_after_post["armed"] and fake.requests_matching("POST", "/opensearch/acl"):
            gets_after_post["n"] += 1
            if gets_after_post["n"] == 2:  # after our first check passed, before the second
                gets_after_post["armed"] = False
                set_doc(fake, snapshot)
        return fake.handle(request)

    aiven = make_adapter(None, clock, transport=httpx.MockTransport(handler))
    assert aiven.put_user_rules(PROJECT, "os", "mine", R) == Success(None)
    assert "mine" in entries(fake)
    assert aiven.request_counts()["ServiceOpenSearchAclSet"] == 2


def test_writers_that_keep_winning_exhaust_the_attempts() -> None:
    clock = FakeClock()
    fake = make_fake(clock)

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if request.method == "POST":
            set_doc(fake, {"acls": [], "enabled": True})
        return response

    aiven = make_adapter(
        None, clock, transport=httpx.MockTransport(handler), retry=RetryPolicy(acl_attempts=3)
    )
    result = aiven.put_user_rules(PROJECT, "os", "mine", R)
    assert isinstance(result, Failure)
    assert aiven.request_counts()["ServiceOpenSearchAclSet"] == 3


def test_acl_on_a_non_opensearch_service_is_rejected() -> None:
    clock = FakeClock()
    aiven = make_adapter(make_fake(clock), clock)
    result = aiven.put_user_rules(PROJECT, "kafka", "u", R)
    assert isinstance(result, Failure) and isinstance(result.failure(), Rejected)


def test_acl_write_failure_is_retried_by_reading_again() -> None:
    clock = FakeClock()
    fake = make_fake(clock)
    fake.faults.commit_then_fail(method="POST", path="/opensearch/acl", times=1, drop=True)
    aiven = make_adapter(fake, clock)
    assert aiven.put_user_rules(PROJECT, "os", "mine", R) == Success(None)
    assert entries(fake) == {"mine": [("*", "read")]}
