"""Metrics parity with the Go operator, and counts that are right, not merely present.

* `test_counts_through_a_lifecycle`: the fully faked world (deterministic, one replica) drives
  one application through create, an unchanged periodic resync, an update, drift (a Valkey
  user's access control changed in Aiven and a Secret deleted) and delete, and checks what every
  counting series added at each step.
* `test_running_operator_exposes_every_go_series`: a running operator (threads, HTTP server)
  serves /metrics; every series of the checked-in list `docs/go-operator-metrics.json` (taken
  from the Go operator's source, commit named there) must be there with its name, type, label
  names and buckets, or differ exactly as that list records under `ours`.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from aivenator.adapters.fakes.aiven import FakeAiven
from aivenator.entrypoints.config import Address
from aivenator.entrypoints.shells.metrics import Metrics
from dependency_injector import providers

from tests.support.harness import (
    KAFKA_SERVICE,
    NAMESPACE,
    OPENSEARCH_SERVICE,
    PROJECT,
    TOKEN,
    VALKEY_SERVICE,
    World,
    application,
    build,
    decoded,
    make_config,
    seed_aiven_objects,
)

REPO = Path(__file__).resolve().parents[2]
GO_SERIES = REPO / "docs" / "go-operator-metrics.json"

Sample = tuple[str, tuple[tuple[str, str], ...]]

#: The series whose values the lifecycle test follows (histograms by their `_count`).
COUNTED = (
    "aivenator_processing_reason",
    "aivenator_aiven_handler_processing_time_seconds_count",
    "aivenator_service_users_created",
    "aivenator_service_users_updated",
    "aivenator_service_users_deleted",
    "aivenator_kubernetes_resources_written",
    "aivenator_kubernetes_resources_not_written",
    "aivenator_kubernetes_resources_deleted",
    "aivenator_kubernetes_latency_count",
)
#: Kubernetes operations that write; reads (lists at start-up) are not part of the lifecycle.
WRITE_OPERATIONS = (
    "Secret_Create",
    "Secret_Update",
    "Secret_Delete",
    "AivenApplication_Update",
    "AivenApplication_Delete",
    "Event_Create",
)
SERVICES = {"kafka": KAFKA_SERVICE, "opensearch": OPENSEARCH_SERVICE, "valkey": VALKEY_SERVICE}


def full_app(tag: str) -> dict[str, Any]:
    return application(
        "alpha",
        kafka={"pool": PROJECT, "secretName": f"alpha-kafka-{tag}"},
        opensearch={"instance": "logs", "access": "readwrite", "secretName": f"alpha-os-{tag}"},
        valkey=[{"instance": "cache", "access": "write", "secretName": f"alpha-valkey-{tag}"}],
    )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """`# TYPE` lines and samples of the text format, names exactly as written (the
    prometheus_client parser renames counter samples to `<name>_total`, which is the very
    thing under test)."""
    types: dict[str, str] = {}
    found: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match is not None, line
            name, labels, value = match.groups()
            found.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return types, found


def samples(metrics: Metrics) -> dict[Sample, float]:
    """The followed samples, by name and labels (latency: write operations only)."""
    found: dict[Sample, float] = {}
    for name, labels, value in parse(metrics.exposition().decode())[1]:
        if name not in COUNTED:
            continue
        if name == "aivenator_kubernetes_latency_count" and labels["operation"] not in WRITE_OPERATIONS:
            continue
        found[(name, tuple(sorted(labels.items())))] = value
    return found


def delta(before: Mapping[Sample, float], after: Mapping[Sample, float]) -> dict[Sample, float]:
    keys = set(before) | set(after)
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys if after.get(k, 0.0) != before.get(k, 0.0)}


def users(metric: str, **per_service: float) -> dict[Sample, float]:
    return {
        (f"aivenator_service_users_{metric}", (("pool", SERVICES[s][0]), ("service", SERVICES[s][1]))): n
        for s, n in per_service.items()
    }


def kube(metric: str, resource_type: str, n: float) -> dict[Sample, float]:
    return {
        (f"aivenator_kubernetes_resources_{metric}", (("namespace", NAMESPACE), ("resource_type", resource_type))): n
    }


def latency(**per_operation: float) -> dict[Sample, float]:
    return {("aivenator_kubernetes_latency_count", (("operation", op),)): n for op, n in per_operation.items()}


def handlers(n: float) -> dict[Sample, float]:
    return {
        ("aivenator_aiven_handler_processing_time_seconds_count", (("handler", h),)): n
        for h in ("kafka", "opensearch", "valkey")
    }


def reason(value: str) -> dict[Sample, float]:
    return {("aivenator_processing_reason", (("processing_reason", value),)): 1.0}


def restrict_valkey_user(aiven: FakeAiven, username: str) -> None:
    """Someone narrows the user's access control in Aiven, behind the operator's back."""
    project, service = VALKEY_SERVICE
    response = aiven.handle(
        httpx.Request(
            "PUT",
            f"https://api.aiven.io/v1/project/{project}/service/{service}/user/{username}",
            headers={"Authorization": f"aivenv1 {TOKEN}"},
            json={
                "operation": "set-access-control",
                "access_control": {
                    "valkey_acl_categories": ["+@read"],
                    "valkey_acl_commands": [],
                    "valkey_acl_keys": ["*"],
                    "valkey_acl_channels": [],
                },
            },
        )
    )
    assert response.status_code == 200


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def test_counts_through_a_lifecycle(world: World) -> None:
    replica = world.start_replica()
    metrics = replica.operator.metrics
    world.tick()
    start = samples(metrics)
    assert start == {}

    # Create: a sync because there is no status hash yet (Go: HashChanged); each handler runs
    # once and creates its user; three Secrets are created and the status is written once.
    world.kube.apply(full_app("1"))
    world.tick()
    created = samples(metrics)
    assert delta(start, created) == {
        **reason("HashChanged"),
        **handlers(1),
        **users("created", kafka=1, opensearch=1, valkey=1),
        **kube("written", "Secret", 3),
        **kube("written", "AivenApplication", 1),
        **latency(Secret_Create=3, AivenApplication_Update=1, Event_Create=2),
    }

    # Unchanged periodic resyncs (what the run loop does every `sync_period`): the passes run and
    # find the steady state, so no series moves (no Aiven call, no write, nothing skipped either).
    passes = metrics.total("aivenator_aiven_application_processing_time_seconds_count")
    for _ in range(3):
        world.clock.advance(world.config.sync_period)
        assert replica.operator.resync() == 1
        world.tick()
    assert metrics.total("aivenator_aiven_application_processing_time_seconds_count") == passes + 3
    resynced = samples(metrics)
    assert delta(created, resynced) == {}

    # Update (a redeploy renames every Secret, new generation): one sync, a new user per
    # service, three new Secrets; the janitor deletes the three old ones, whose finalizers
    # delete the old users and then release the Secrets (a write each).
    world.kube.apply(full_app("2"))
    world.tick()
    updated = samples(metrics)
    assert delta(resynced, updated) == {
        **reason("HashChanged"),
        **handlers(1),
        **users("created", kafka=1, opensearch=1, valkey=1),
        **users("deleted", kafka=1, opensearch=1, valkey=1),
        **kube("written", "Secret", 3 + 3),
        **kube("written", "AivenApplication", 1),
        **kube("deleted", "Secret", 3),
        **latency(Secret_Create=3, Secret_Delete=3, Secret_Update=3, AivenApplication_Update=1, Event_Create=2),
    }

    # Drift: the Valkey user's access control is narrowed in Aiven and the Kafka Secret is
    # deleted. The finalizer deletes the Kafka user and releases the Secret; the sync (reason
    # MissingSecret) creates the Kafka user and Secret again, corrects the Valkey user (updated)
    # and finds the other two Secrets and the status already right (not written).
    valkey_user = decoded(world.secret("alpha-valkey-2") or {})["VALKEY_USERNAME_CACHE"].decode()
    restrict_valkey_user(world.aiven, valkey_user)
    world.kube.delete("Secret", NAMESPACE, "alpha-kafka-2")
    world.tick()
    drifted = samples(metrics)
    assert delta(updated, drifted) == {
        **reason("MissingSecret"),
        **handlers(1),
        **users("created", kafka=1),
        **users("deleted", kafka=1),
        **users("updated", valkey=1),
        **kube("written", "Secret", 1 + 1),
        **kube("not_written", "Secret", 2),
        **kube("not_written", "AivenApplication", 1),
        **latency(Secret_Create=1, Secret_Update=1),
    }
    assert valkey_user in world.our_users(VALKEY_SERVICE)

    # Delete: no sync; the janitor deletes the three Secrets, the finalizers delete the users.
    world.kube.delete("AivenApplication", NAMESPACE, "alpha")
    world.tick()
    deleted = samples(metrics)
    assert delta(drifted, deleted) == {
        **users("deleted", kafka=1, opensearch=1, valkey=1),
        **kube("written", "Secret", 3),
        **kube("deleted", "Secret", 3),
        **latency(Secret_Delete=3, Secret_Update=3),
    }
    assert world.managed_secrets() == []
    assert not (world.our_users(KAFKA_SERVICE) | world.our_users(OPENSEARCH_SERVICE) | world.our_users(VALKEY_SERVICE))

    # The totals Go dashboards read, after the whole lifecycle.
    assert metrics.value("aivenator_processing_reason", {"processing_reason": "HashChanged"}) == 2
    assert metrics.value("aivenator_processing_reason", {"processing_reason": "MissingSecret"}) == 1
    for service in (KAFKA_SERVICE, OPENSEARCH_SERVICE, VALKEY_SERVICE):
        labels = {"pool": service[0], "service": service[1]}
        assert metrics.value("aivenator_service_users_created", labels) == metrics.value(
            "aivenator_service_users_deleted", labels
        )


# --------------------------------------------------------------------------- the running operator


def go_series() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GO_SERIES.read_text())
    return doc


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def test_the_go_series_list_names_its_source() -> None:
    source = go_series()["source"]
    assert source["url"] == f"{source['repository']}/blob/{source['commit']}/{source['path']}"
    assert len(source["commit"]) == 40
    names = [s["name"] for s in go_series()["series"]]
    assert len(names) == len(set(names)) == 14


def test_running_operator_exposes_every_go_series() -> None:
    h = build(make_config(metrics_address=Address("127.0.0.1", 0)), real_monotonic=True)
    try:
        h.container.serve_http.override(providers.Object(True))
        h.container.servers.reset()
        h.container.operator.reset()
        operator = h.container.operator()
        h.operator = operator
        seed_aiven_objects(h)
        h.kube.apply(full_app("1"))
        # An app waiting for a Valkey instance that does not exist: requeued.
        h.kube.apply(
            application(
                "beta",
                kafka={"pool": PROJECT, "secretName": "beta-kafka"},
                valkey=[{"instance": "nope", "access": "read", "secretName": "beta-valkey"}],
            )
        )
        operator.start(sync_timeout=10)
        assert operator.wait_until_idle(30)
        # Drift (users updated, Secrets not written), then a redeploy (janitor deletes).
        secret = h.secret("alpha-valkey-1")
        assert secret is not None
        restrict_valkey_user(h.aiven, decoded(secret)["VALKEY_USERNAME_CACHE"].decode())
        h.kube.delete("Secret", NAMESPACE, "alpha-kafka-1")
        assert operator.wait_until_idle(30)
        h.kube.apply(full_app("2"))
        assert operator.wait_until_idle(30)
        (server,) = operator.servers
        text = scrape(server.url + "/metrics")
    finally:
        h.close()

    types, found = parse(text)
    listed = go_series()
    for series in [*listed["series"], *listed["requested"]]:
        name, kind = series["name"], series["type"]
        ours = series.get("ours", {})
        assert types.get(name) == kind, name
        assert not any(n == f"{name}_total" for n, _, _ in found), name
        own = {"histogram": (f"{name}_bucket", f"{name}_count", f"{name}_sum")}.get(kind, (name,))
        family = [(n, labels) for n, labels, _ in found if n in own]
        assert family, f"{name}: no samples to read labels from"
        label_names = {k for _, labels in family for k in labels if k != "le"}
        assert label_names == set(ours.get("labels", series["labels"])), name
        if kind == "histogram":
            bounds = sorted({float(labels["le"]) for n, labels in family if n == f"{name}_bucket"})
            assert bounds == [*ours.get("buckets", series["buckets"]), float("inf")], name
        if "ours" in series:
            # A recorded difference must still be one, or the list is out of date.
            same_labels = set(ours.get("labels", series["labels"])) == set(series["labels"])
            same_buckets = ours.get("buckets", series.get("buckets")) == series.get("buckets")
            assert not (same_labels and same_buckets), f"{name}: `ours` no longer differs; drop it"


def test_requeues_count_under_the_application_state(world: World) -> None:
    """An app waiting for a Valkey instance that does not exist is requeued once per pass, under
    the state its status says (RolloutFailed, as in the Go operator) and the reason `waitfor`."""
    replica = world.start_replica()
    metrics = replica.operator.metrics
    world.kube.apply(
        application("beta", valkey=[{"instance": "nope", "access": "read", "secretName": "beta-valkey"}])
    )
    world.tick()
    waiting = {"synchronization_state": "RolloutFailed", "reason": "waitfor"}
    assert metrics.value("aivenator_aiven_applications_requeued", waiting) == 1
    # The retry comes round after its delay: one more pass, one more requeue.
    world.advance(400, step=50)
    passes = metrics.value("aivenator_aiven_applications_requeued", waiting)
    assert passes >= 2
    text = metrics.exposition().decode()
    requeued = [line for line in text.splitlines() if line.startswith("aivenator_aiven_applications_requeued{")]
    assert requeued == [
        f'aivenator_aiven_applications_requeued{{reason="waitfor",synchronization_state="RolloutFailed"}} {passes}'
    ]
