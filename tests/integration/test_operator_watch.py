"""Informers over the in-memory cluster: list then watch, resume after a broken watch without a
relist, relist after 410 reporting what was missed, write-through never regresses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aivenator.adapters.fakes.kubernetes import FakeKubernetes
from aivenator.domain.kubernetes_port import KubeUnavailable
from aivenator.entrypoints.runtime.packing import PackedObjects
from aivenator.entrypoints.runtime.watch_loop import Codec, Informer, object_key, object_version


@pytest.fixture(params=["as-is", "packed"])
def codec(request: pytest.FixtureRequest) -> Codec[dict[str, Any]] | None:
    """Every informer behaviour holds for objects stored as they are and packed (the caches)."""
    return PackedObjects() if request.param == "packed" else None


def secret(name: str, value: str = "YQ==") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "ns", "labels": {"type": "aivenator.aiven.nais.io"}},
        "data": {"k": value},
    }


def make(
    kube: FakeKubernetes,
    codec: Codec[dict[str, Any]] | None,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[Informer[dict[str, Any]], list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    selector = {"type": "aivenator.aiven.nais.io"}
    informer: Informer[dict[str, Any]] = Informer(
        "Secret",
        lambda: kube.list_secrets(selector),
        lambda rv, t: kube.watch_secrets(selector, rv, t),
        object_key,
        object_version,
        lambda change, old, new: seen.append((change, object_key(new)[1])),
        codec=codec,
        transform=transform,
    )
    return informer, seen


def test_list_then_watch_reports_each_change_once(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    kube.apply(secret("one"))
    informer, seen = make(kube, codec)
    informer.poll()
    assert informer.has_synced and seen == [("ADDED", "one")]
    kube.apply(secret("two"))
    kube.apply(secret("one", "Yg=="))
    kube.delete("Secret", "ns", "two")
    informer.poll()
    assert seen[1:] == [("ADDED", "two"), ("MODIFIED", "one"), ("DELETED", "two")]
    informer.poll()
    assert len(seen) == 4  # nothing new, nothing repeated


def test_a_broken_watch_resumes_from_the_last_version_without_relisting(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen = make(kube, codec)
    informer.poll()
    kube.inject_fault("watch", KubeUnavailable("flaky"), times=1, kind="Secret")
    kube.apply(secret("one"))
    assert informer.watch_round(0.0) == "broken"
    lists_before = kube.calls[("Secret", "list")]
    informer.poll()
    assert seen == [("ADDED", "one")]
    assert kube.calls[("Secret", "list")] == lists_before


def test_relist_after_410_reports_missed_additions_and_deletions(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    kube.apply(secret("stays"))
    kube.apply(secret("goes"))
    informer, seen = make(kube, codec)
    informer.poll()
    kube.expire_watches()
    kube.delete("Secret", "ns", "goes")
    kube.apply(secret("new"))
    informer.poll()
    informer.poll()
    assert ("DELETED", "goes") in seen and ("ADDED", "new") in seen
    assert sorted(k[1] for k in informer.cached_keys()) == ["new", "stays"]
    assert informer.count_in("ns") == 2


def test_write_through_is_not_undone_by_an_older_event(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, _ = make(kube, codec)
    informer.poll()
    kube.apply(secret("one"))
    newer = kube.apply(secret("one", "Yg=="))
    informer.remember(newer)
    informer.poll()  # delivers ADDED (older version) then MODIFIED (the version we hold)
    cached = informer.get(("ns", "one"))
    assert cached is not None and cached["data"]["k"] == "Yg=="
    assert informer.count_in("ns") == 1


def counted(
    kube: FakeKubernetes, codec: Codec[dict[str, Any]] | None
) -> tuple[Informer[dict[str, Any]], list[tuple[str, str]], list[str]]:
    """An informer whose transform records the resourceVersion of every object it is given."""
    transformed: list[str] = []

    def keep(obj: dict[str, Any]) -> dict[str, Any]:
        transformed.append(object_version(obj))
        return {**obj, "data": {k: "sha256:" + v for k, v in obj["data"].items()}}

    informer, seen = make(kube, codec, keep)
    return informer, seen, transformed


def test_the_echo_of_our_own_write_is_skipped_before_the_transform(
    codec: Codec[dict[str, Any]] | None,
) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen, transformed = counted(kube, codec)
    informer.poll()
    written = kube.apply(secret("one"))
    informer.remember(written)
    assert transformed == [object_version(written)]  # the write-through, transformed once
    informer.poll()  # the watch delivers the same version: nothing to transform, nothing new
    assert transformed == [object_version(written)] and seen == []
    cached = informer.get(("ns", "one"))
    assert cached is not None and cached["data"] == {"k": "sha256:YQ=="}
    assert informer.resource_version == kube.resource_version
    kube.apply(secret("one", "Yg=="))  # a later change by someone else is seen as usual
    informer.poll()
    assert seen == [("MODIFIED", "one")]
    cached = informer.get(("ns", "one"))
    assert cached is not None and cached["data"] == {"k": "sha256:Yg=="}


def test_a_change_after_our_write_is_not_dropped_with_its_echo(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen, _ = counted(kube, codec)
    informer.poll()
    written = kube.apply(secret("one"))
    informer.remember(written)
    kube.apply(secret("one", "Yg=="))  # changed by someone else before our echo arrived
    informer.poll()
    assert seen == [("MODIFIED", "one")]
    cached = informer.get(("ns", "one"))
    assert cached is not None and cached["data"] == {"k": "sha256:Yg=="}


def test_a_write_through_after_its_echo_does_not_hide_the_next_change(
    codec: Codec[dict[str, Any]] | None,
) -> None:
    """The watch may deliver our write before we write it through: then no echo follows, and
    the next real change (another version) must still be reported."""
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen, _ = counted(kube, codec)
    informer.poll()
    written = kube.apply(secret("one"))
    informer.poll()  # the event first
    informer.remember(written)  # then our write-through of the same version
    kube.apply(secret("one", "Yg=="))
    kube.delete("Secret", "ns", "one")
    informer.poll()
    assert seen == [("ADDED", "one"), ("MODIFIED", "one"), ("DELETED", "one")]
    assert informer.get(("ns", "one")) is None


def test_a_deletion_right_after_our_write_is_reported(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen, _ = counted(kube, codec)
    informer.poll()
    informer.remember(kube.apply(secret("one")))
    kube.delete("Secret", "ns", "one")
    informer.poll()
    assert seen == [("DELETED", "one")]
    assert informer.get(("ns", "one")) is None and informer.count_in("ns") == 0


def test_a_relist_forgets_the_echoes_it_waited_for(codec: Codec[dict[str, Any]] | None) -> None:
    kube = FakeKubernetes(namespaces=("ns",))
    informer, seen, transformed = counted(kube, codec)
    informer.poll()
    written = kube.apply(secret("one"))
    informer.remember(written)
    kube.expire_watches()
    informer.poll()  # relists: the listed object is taken (and transformed) like any other
    informer.poll()
    assert transformed.count(object_version(written)) == 2
    assert seen == []  # the cache already held that version: no change
    kube.apply(secret("one", "Yg=="))
    informer.poll()
    assert seen == [("MODIFIED", "one")]
