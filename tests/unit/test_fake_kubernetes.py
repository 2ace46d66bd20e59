"""The in-memory cluster's own features: those the real API server has no equivalent for (forced
410, fault injection, counters, injectable clock, `apply`) and a few rules cheaper to pin here.
The behaviour shared with a real server is checked by tests/integration/test_kubernetes_contract.py.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime

from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.kubernetes_common import merge_patch
from aivenator.domain.kubernetes_port import (
    MANAGED_SECRETS,
    KubeConflict,
    KubeGone,
    KubeInvalid,
    KubeNotFound,
    KubeUnavailable,
    WatchBookmark,
    WatchBroken,
    WatchEvent,
    WatchExpired,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from tests.support.clock import FakeClock


def secret(name: str, namespace: str = "team-a", **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_SECRETS)},
        "stringData": data,
    }


def app(name: str, namespace: str = "team-a", pool: str = "dev") -> dict[str, object]:
    return {
        "apiVersion": "aiven.nais.io/v1",
        "kind": "AivenApplication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"kafka": {"pool": pool, "secretName": f"{name}-kafka"}},
    }


def test_timestamps_come_from_the_injected_clock() -> None:
    clock = FakeClock(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    kube = FakeKubernetes(clock=clock, namespaces=("team-a",))
    created = kube.create_secret(secret("s")).unwrap()
    assert created["metadata"]["creationTimestamp"] == "2030-01-02T03:04:05Z"
    kube.add_secret_finalizer("team-a", "s", "x/y").unwrap()
    clock.advance(3600)
    kube.delete_secret("team-a", "s").unwrap()
    assert kube.get_secret("team-a", "s").unwrap()["metadata"]["deletionTimestamp"] == "2030-01-02T04:04:05Z"


def test_write_counters_count_requests_by_kind_and_verb_and_reads_are_not_writes() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("s", a="1")).unwrap()
    kube.patch_secret("team-a", "s", {"stringData": {"a": "2"}}).unwrap()
    kube.get_secret("team-a", "s").unwrap()
    kube.list_secrets(MANAGED_SECRETS).unwrap()
    assert kube.write_count("Secret") == 2
    assert kube.write_count("Secret", "patch") == 1
    assert kube.calls[("Secret", "get")] == 1
    kube.reset_counters()
    assert kube.write_count() == 0


def test_a_no_op_patch_keeps_the_resource_version_and_emits_no_event() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    created = kube.create_secret(secret("s", a="1")).unwrap()
    rv = created["metadata"]["resourceVersion"]
    same = kube.patch_secret("team-a", "s", {"data": {"a": base64.b64encode(b"1").decode()}}).unwrap()
    assert same["metadata"]["resourceVersion"] == rv
    items = list(kube.watch_secrets(MANAGED_SECRETS, rv, timeout_seconds=0.05))
    assert [type(i) for i in items] == [WatchBookmark]


def test_injected_faults_hit_the_next_calls_of_that_verb_then_stop() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("s")).unwrap()
    kube.inject_fault("patch", KubeConflict("injected"), times=2, kind="Secret")
    kube.inject_fault("get", KubeUnavailable("down", retry_after=3.0))
    assert kube.get_secret("team-a", "s") == Failure(KubeUnavailable("down", retry_after=3.0))
    assert kube.get_secret("team-a", "s").unwrap()["metadata"]["name"] == "s"
    assert kube.patch_secret("team-a", "s", {"metadata": {"labels": {"x": "1"}}}) == Failure(
        KubeConflict("injected")
    )
    assert isinstance(kube.patch_secret("team-a", "s", {}), Failure)
    assert isinstance(kube.patch_secret("team-a", "s", {"metadata": {"labels": {"x": "1"}}}), Success)


def test_a_watch_fault_ends_the_watch_with_a_value_not_an_exception() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    rv = kube.list_secrets(MANAGED_SECRETS).unwrap().resource_version
    kube.inject_fault("watch", KubeUnavailable("reset"))
    assert list(kube.watch_secrets(MANAGED_SECRETS, rv, 1.0)) == [WatchBroken(KubeUnavailable("reset"))]
    kube.inject_fault("watch", KubeGone("compacted"))
    assert list(kube.watch_secrets(MANAGED_SECRETS, rv, 1.0)) == [WatchExpired("compacted")]


def test_forced_expiry_ends_running_watches_and_a_fresh_list_can_be_watched_again() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    rv = kube.list_applications().unwrap().resource_version
    seen: list[object] = []
    watcher = threading.Thread(target=lambda: seen.extend(kube.watch_applications(rv, timeout_seconds=5)))
    watcher.start()
    kube.expire_watches()
    watcher.join(timeout=5)
    assert not watcher.is_alive()
    assert seen == [WatchExpired("too old resource version")]
    assert isinstance(next(iter(kube.watch_applications(rv, 1))), WatchExpired)
    fresh = kube.list_applications().unwrap().resource_version
    kube.apply(app("a"))
    events = list(kube.watch_applications(fresh, timeout_seconds=0.05))
    assert [e.type for e in events if isinstance(e, WatchEvent)] == ["ADDED"]


def test_history_is_bounded_and_older_resource_versions_are_gone() -> None:
    kube = FakeKubernetes(history=3, namespaces=("team-a",))
    start = kube.list_secrets(MANAGED_SECRETS).unwrap().resource_version
    for i in range(5):
        kube.create_secret(secret(f"s{i}")).unwrap()
    assert isinstance(next(iter(kube.watch_secrets(MANAGED_SECRETS, start, 1))), WatchExpired)
    recent = str(int(kube.resource_version) - 1)
    items = list(kube.watch_secrets(MANAGED_SECRETS, recent, 0.05))
    assert [(i.type, i.obj["metadata"]["name"]) for i in items if isinstance(i, WatchEvent)] == [
        ("ADDED", "s4")
    ]


def test_a_watch_wakes_up_for_a_write_from_another_thread() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    rv = kube.list_secrets(MANAGED_SECRETS).unwrap().resource_version
    timer = threading.Timer(0.05, lambda: kube.create_secret(secret("late")))
    timer.start()
    events = []
    for item in kube.watch_secrets(MANAGED_SECRETS, rv, timeout_seconds=5):
        events.append(item)
        if isinstance(item, WatchEvent):
            break
    timer.join()
    assert isinstance(events[-1], WatchEvent)
    assert events[-1].obj["metadata"]["name"] == "late"


def test_close_ends_running_watches() -> None:
    kube = FakeKubernetes()
    rv = kube.resource_version
    done = threading.Event()

    seen: list[object] = []

    def consume() -> None:
        seen.extend(kube.watch_applications(rv, timeout_seconds=30))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    kube.close()
    assert done.wait(5)
    assert isinstance(seen[-1], WatchBroken)
    assert isinstance(list(kube.watch_applications(rv, timeout_seconds=30))[-1], WatchBroken)


def test_watch_from_zero_starts_with_the_current_objects() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.apply(app("one"))
    kube.apply(app("two"))
    items = list(kube.watch_applications("0", timeout_seconds=0.05))
    assert sorted(i.obj["metadata"]["name"] for i in items if isinstance(i, WatchEvent)) == ["one", "two"]


def test_apply_creates_namespaces_keeps_identity_and_sets_status_verbatim() -> None:
    kube = FakeKubernetes(namespaces=())
    first = kube.apply({**app("a", namespace="fresh"), "status": {"synchronizationHash": "h"}})
    assert first["status"] == {"synchronizationHash": "h"}
    assert kube.objects("Namespace")[0]["metadata"]["name"] == "fresh"
    second = kube.apply({**app("a", namespace="fresh", pool="other")})
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert second["metadata"]["generation"] == 2
    assert "status" not in second
    assert kube.write_count() == 0


def test_creating_in_a_missing_namespace_is_not_found() -> None:
    kube = FakeKubernetes(namespaces=())
    assert isinstance(kube.create_secret(secret("s", namespace="nowhere")), Failure)
    assert isinstance(kube.create_secret(secret("s", namespace="nowhere")).failure(), KubeNotFound)


def test_invalid_base64_data_is_rejected_and_string_data_is_folded() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    bad = {"metadata": {"name": "s", "namespace": "team-a"}, "data": {"k": "not base64!"}}
    assert isinstance(kube.create_secret(bad).failure(), KubeInvalid)
    created = kube.create_secret(secret("s", k="v")).unwrap()
    assert created["data"] == {"k": base64.b64encode(b"v").decode()}
    assert "stringData" not in created


def test_adding_a_finalizer_to_an_object_being_deleted_is_invalid() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("s")).unwrap()
    kube.add_secret_finalizer("team-a", "s", "a/b").unwrap()
    kube.delete_secret("team-a", "s").unwrap()
    assert isinstance(kube.add_secret_finalizer("team-a", "s", "c/d").failure(), KubeInvalid)


def test_a_workload_kind_outside_the_list_is_invalid() -> None:
    kube = FakeKubernetes()
    assert isinstance(kube.list_workload_refs("Service").failure(), KubeInvalid)
    assert isinstance(next(iter(kube.watch_workload_refs("Service", "0", 1))), WatchBroken)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(target=json_values, patch=json_values)
def test_merge_patch_does_not_mutate_its_inputs_and_is_idempotent(target: object, patch: object) -> None:
    import copy

    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge_patch(target, patch)
    assert target == target_before and patch == patch_before
    assert merge_patch(once, patch) == once


@settings(max_examples=100, deadline=None)
@given(
    target=st.dictionaries(st.text(max_size=2), json_values, max_size=4),
    patch=st.dictionaries(st.text(max_size=2), json_values, max_size=4),
)
def test_merge_patch_keeps_keys_the_patch_does_not_mention(
    target: dict[str, object], patch: dict[str, object]
) -> None:
    merged = merge_patch(target, patch)
    for key, value in target.items():
        if key not in patch:
            assert merged[key] == value
    for key, value in patch.items():
        if value is None:
            assert key not in merged


def test_concurrent_guarded_writes_never_lose_an_update() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("counter", n="0")).unwrap()

    def increment() -> None:
        for _ in range(25):
            while True:
                current = kube.get_secret("team-a", "counter").unwrap()
                n = int(base64.b64decode(current["data"]["n"]))
                patch = {"data": {"n": base64.b64encode(str(n + 1).encode()).decode()}}
                rv = current["metadata"]["resourceVersion"]
                if isinstance(kube.patch_secret("team-a", "counter", patch, resource_version=rv), Success):
                    break

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = kube.get_secret("team-a", "counter").unwrap()
    assert base64.b64decode(final["data"]["n"]) == b"100"


def test_a_finalizer_edit_retries_when_it_loses_a_race() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("s")).unwrap()
    kube.inject_fault("patch", KubeConflict("raced"), times=2, kind="Secret")
    added = kube.add_secret_finalizer("team-a", "s", "a/b").unwrap()
    assert added["metadata"]["finalizers"] == ["a/b"]
    kube.inject_fault("patch", KubeConflict("raced"), times=10, kind="Secret")
    assert isinstance(kube.remove_secret_finalizer("team-a", "s", "a/b").failure(), KubeConflict)


def test_a_selector_watch_sees_a_secret_leave_the_selection_as_deleted() -> None:
    kube = FakeKubernetes(namespaces=("team-a",))
    kube.create_secret(secret("s")).unwrap()
    rv = kube.resource_version
    kube.patch_secret("team-a", "s", {"metadata": {"labels": {"type": None}}}).unwrap()
    kube.patch_secret("team-a", "s", {"metadata": {"labels": {"other": "x"}}}).unwrap()
    items = [i for i in kube.watch_secrets(MANAGED_SECRETS, rv, 0.05) if isinstance(i, WatchEvent)]
    assert [i.type for i in items] == ["DELETED"]
