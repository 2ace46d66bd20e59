"""The Kubernetes timing wrapper: every call observed once, with the clock it was given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.adapters.kubernetes_timing import TimedKubernetes
from aivenator.domain.kubernetes_port import MANAGED_SECRETS, KubeNotFound, KubeObject
from returns.result import Result

from tests.support.clock import FakeClock

FINALIZER = "aivenator.aiven.nais.io/finalizer"


def timed(step: float = 0.25) -> tuple[TimedKubernetes, FakeKubernetes, list[tuple[str, float]]]:
    inner = FakeKubernetes(namespaces=("team-a",))
    seen: list[tuple[str, float]] = []
    return TimedKubernetes(inner, FakeClock(monotonic=0.0, step=step).monotonic, lambda op, s: seen.append((op, s))), inner, seen


def secret(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a", "labels": {"type": "aivenator.aiven.nais.io"}},
        "stringData": {"A": "1"},
    }


def test_each_call_is_observed_once_under_its_go_operation_name() -> None:
    kube, inner, seen = timed()
    calls: list[tuple[str, Callable[[], Result[Any, Any]]]] = [
        ("Secret_Create", lambda: kube.create_secret(secret("s1"))),
        ("Secret_Get", lambda: kube.get_secret("team-a", "s1")),
        ("Secret_Update", lambda: kube.patch_secret("team-a", "s1", {"stringData": {"B": "2"}})),
        ("Secret_List", lambda: kube.list_secrets(MANAGED_SECRETS)),
        ("Secret_Delete", lambda: kube.delete_secret("team-a", "s1")),
        ("Pod_List", lambda: kube.list_workload_refs("Pod")),
        ("AivenApplication_List", kube.list_applications),
    ]
    for operation, call in calls:
        call().unwrap()
        assert seen[-1] == (operation, 0.25), operation
    assert len(seen) == len(calls)
    assert inner.get("Secret", "team-a", "s1") is None  # the calls really reached the port


def test_failures_are_timed_too_and_pass_through_unchanged() -> None:
    kube, _, seen = timed()
    got: Result[KubeObject, Any] = kube.get_secret("team-a", "absent")
    assert isinstance(got.failure(), KubeNotFound)
    assert seen == [("Secret_Get", 0.25)]


def test_a_finalizer_change_is_one_secret_update() -> None:
    kube, inner, seen = timed()
    kube.create_secret(secret("s1")).unwrap()
    seen.clear()
    kube.add_secret_finalizer("team-a", "s1", FINALIZER).unwrap()
    assert FINALIZER in (inner.get("Secret", "team-a", "s1") or {})["metadata"]["finalizers"]
    kube.remove_secret_finalizer("team-a", "s1", FINALIZER).unwrap()
    assert seen == [("Secret_Update", 0.25), ("Secret_Update", 0.25)]


def test_watches_are_streams_not_timed_calls() -> None:
    kube, _, seen = timed()
    rv = kube.list_applications().unwrap().resource_version
    seen.clear()
    list(kube.watch_applications(rv, 0.01))
    assert seen == []
