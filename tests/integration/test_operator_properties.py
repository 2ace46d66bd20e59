"""The operator's promises as invariants of a state machine over the whole operator (step mode,
in-memory cluster, Aiven simulator): whatever happens, once things settle

* every valid AivenApplication has all its Secrets and is Ready;
* every user a managed Secret records exists in Aiven, and every user of ours in Aiven is
  recorded by some managed Secret (after the orphan sweep);
* no Secret a Pod refers to was ever garbage-collected;
* no credential reached a log line.
"""

from __future__ import annotations

import base64
from typing import Any

from aivenator.domain.names import is_builtin
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.support.harness import (
    NAMESPACE,
    TOKEN,
    Harness,
    application,
    build,
    make_config,
    seed_aiven_objects,
)

APPS = ("alpha", "beta", "gamma")
SERVICES = ("kafka", "opensearch", "valkey")
MANAGED_SERVICES = (
    ("dev-nais-dev", "kafka"),
    ("dev-nais-dev", "opensearch-team-a-logs"),
    ("dev-nais-dev", "valkey-team-a-cache"),
)


def spec_for(name: str, services: frozenset[str], tag: int) -> dict[str, Any]:
    return application(
        name,
        kafka={"pool": "dev-nais-dev", "secretName": f"{name}-kafka-{tag}"} if "kafka" in services else None,
        opensearch={"instance": "logs", "access": "read", "secretName": f"{name}-os-{tag}"}
        if "opensearch" in services
        else None,
        valkey=[{"instance": "cache", "access": "readwrite", "secretName": f"{name}-valkey-{tag}"}]
        if "valkey" in services
        else None,
    )


def pod(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"containers": [{"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": secret}}]}]},
    }


class OperatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h: Harness = build(
            make_config(janitor_grace_period=0.0, orphan_grace_period=0.0, orphan_sweep_dry_run=False)
        )
        seed_aiven_objects(self.h)
        self.apps: dict[str, tuple[frozenset[str], int]] = {}
        self.pods: dict[str, str] = {}
        #: Secrets a Pod referred to while they existed, minus those the test deleted itself.
        self.protected_by_pods: set[str] = set()
        self.seen_credentials: set[str] = set()

    @initialize(
        services=st.frozensets(st.sampled_from(SERVICES), min_size=1),
        with_pod=st.booleans(),
    )
    def an_app_is_running(self, services: frozenset[str], with_pod: bool) -> None:
        """Start from an application with Secrets (and maybe a Pod using one of them)."""
        self.h.kube.apply(spec_for("alpha", services, 1))
        self.apps["alpha"] = (services, 1)
        self.h.operator.drain()
        if with_pod:
            secret = f"alpha-{'os' if 'opensearch' in services else sorted(services)[0]}-1"
            self.h.kube.apply(pod("p1", secret))
            self.pods["p1"] = secret
            self.protected_by_pods.add(secret)
            self.h.operator.drain()

    # --- rules ------------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(APPS),
        services=st.frozensets(st.sampled_from(SERVICES), min_size=1),
        tag=st.integers(1, 2),
    )
    def apply_app(self, name: str, services: frozenset[str], tag: int) -> None:
        event("apply_app")
        self.h.kube.apply(spec_for(name, services, tag))
        self.apps[name] = (services, tag)
        self.h.operator.drain()

    @precondition(lambda self: bool(self.apps))
    @rule(data=st.data())
    def delete_app(self, data: st.DataObject) -> None:
        event("delete_app")
        name = data.draw(st.sampled_from(sorted(self.apps)))
        self.h.kube.delete("AivenApplication", NAMESPACE, name)
        del self.apps[name]
        self.h.operator.drain()

    @rule(data=st.data())
    def delete_a_secret(self, data: st.DataObject) -> None:
        event("delete_a_secret")
        names = sorted(s["metadata"]["name"] for s in self.h.kube.objects("Secret", NAMESPACE))
        if not names:
            return
        name = data.draw(st.sampled_from(names))
        self.protected_by_pods.discard(name)
        self.h.kube.delete_secret(NAMESPACE, name)
        self.h.operator.drain()

    @rule(pod_name=st.sampled_from(("p1", "p2")), data=st.data())
    def start_a_pod(self, pod_name: str, data: st.DataObject) -> None:
        event("start_a_pod")
        names = sorted(
            s["metadata"]["name"]
            for s in self.h.kube.objects("Secret", NAMESPACE)
            if not s["metadata"].get("deletionTimestamp")
        )
        if not names:
            return
        secret = data.draw(st.sampled_from(names))
        self.h.kube.apply(pod(pod_name, secret))
        previous = self.pods.get(pod_name)
        self.pods[pod_name] = secret
        if previous is not None and previous not in self.pods.values():
            self.protected_by_pods.discard(previous)
        self.protected_by_pods.add(secret)
        self.h.operator.drain()

    @precondition(lambda self: bool(self.pods))
    @rule(data=st.data())
    def stop_a_pod(self, data: st.DataObject) -> None:
        event("stop_a_pod")
        name = data.draw(st.sampled_from(sorted(self.pods)))
        self.h.kube.delete("Pod", NAMESPACE, name)
        secret = self.pods.pop(name)
        if secret not in self.pods.values():
            self.protected_by_pods.discard(secret)
        self.h.operator.drain()

    @rule(times=st.integers(1, 3), status=st.sampled_from((500, 503, 429)))
    def aiven_hiccups(self, times: int, status: int) -> None:
        event("aiven_hiccups")
        if status == 429:
            self.h.aiven.faults.throttle(retry_after=60, times=times)
        else:
            self.h.aiven.faults.error(status, times=times)

    @rule(seconds=st.integers(0, 400))
    def time_passes(self, seconds: int) -> None:
        event("time_passes")
        self.h.clock.advance(seconds)
        self.h.operator.drain()

    @rule()
    def periodic_resync(self) -> None:
        event("periodic_resync")
        self.h.operator.resync()
        self.h.operator.drain()

    @rule()
    def janitor_pass(self) -> None:
        event("janitor_pass")
        self.h.operator.janitor.run(None)
        self.h.operator.drain()

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def pod_referenced_secrets_are_never_collected(self) -> None:
        for secret in self.protected_by_pods:
            assert self.h.secret(secret) is not None, f"{secret} was deleted while a Pod used it"

    def settle(self) -> None:
        self.h.aiven.faults.clear()
        aiven = self.h.container.aiven()
        for _ in range(8):
            self.h.clock.advance(400)
            self.h.operator.resync()
            self.h.operator.drain()
        for project, service in MANAGED_SERVICES:
            aiven.invalidate(project, service)
        self.h.operator.orphans.run()
        self.h.clock.advance(1)
        for project, service in MANAGED_SERVICES:
            aiven.invalidate(project, service)
        self.h.operator.orphans.run()
        self.h.operator.drain()

    def teardown(self) -> None:
        try:
            self.check_settled_state()
        finally:
            self.h.close()

    def check_settled_state(self) -> None:
        self.settle()
        recorded: set[tuple[str, str]] = set()
        for secret in self.h.kube.objects("Secret", NAMESPACE):
            annotations = secret["metadata"].get("annotations") or {}
            for key, value in annotations.items():
                if key.endswith("serviceUser"):
                    recorded.add((key, value))
            for key, value in (secret.get("data") or {}).items():
                if "PASSWORD" in key or "PRIVATE_KEY" in key:
                    self.seen_credentials.add(base64.b64decode(value).decode("utf-8", "replace"))
        for name, (services, tag) in self.apps.items():
            expected = {f"{name}-{'os' if s == 'opensearch' else s}-{tag}" for s in services}
            for secret_name in expected:
                wanted = self.h.secret(secret_name)
                assert wanted is not None, f"{name} lacks {secret_name}"
                assert not wanted["metadata"].get("deletionTimestamp")
            ready = self.h.condition(name, "Ready") or {}
            assert ready.get("status") == "True", (name, ready)
        recorded_users = {user for _, user in recorded}
        for project, service in MANAGED_SERVICES:
            users = set(self.h.aiven.users(project, service))
            ours = {u for u in users if not is_builtin(u)}
            assert ours <= recorded_users, f"orphans in {service}: {ours - recorded_users}"
        for key, user in recorded:
            if key.startswith("kafka."):
                assert user in self.h.aiven.users("dev-nais-dev", "kafka"), user
        logs = self.h.logs.getvalue()
        for value in {*self.seen_credentials, TOKEN}:
            if len(value) >= 8:
                assert value not in logs


OperatorMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)
TestOperatorPromises = OperatorMachine.TestCase
