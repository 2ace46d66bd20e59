"""The proof of the resilience promises: a hypothesis state machine over the whole operator.

The DI container is wired to the in-memory cluster, the Aiven simulator and a fake clock (see
harness.py); replicas run in synchronous step mode with leader election on. Rules create,
modify and delete AivenApplications (Kafka, OpenSearch, Valkey, protected, expiring, invalid),
edit or delete managed Secrets, add and remove workloads referring to Secrets in every supported
way, inject Aiven faults (429 with Retry-After, 5xx, timeouts, connection resets,
commit-then-fail, 404 lag after create), crash the operator at chosen points and restart it,
run a second replica and kill the leader, and move the clock.

Whenever the system is allowed to settle (faults cleared, time past every backoff and the
orphan grace period, queues drained, janitor and sweep run) the promises must hold:

1. every application has exactly its Secrets, with the right keys and current credentials;
2. every Aiven user of ours in the managed services is recorded by exactly one managed Secret;
3. no Secret referenced by a workload or an application was deleted (checked after every step);
4. the OpenSearch ACL document matches the managed Secrets of its service;
5. no credential value appears in logs, events or statuses;
6. no request was sent before a Retry-After its client had received elapsed;
7. (ownership, issue 11) an unmanaged Secret an app names is never written (checked after every
   step), a managed Secret never changes owner, every replica's ownership index equals a full
   recomputation from its Secret cache, and an app naming a Secret that is not its own reports
   `SecretConflict` instead of taking it. Rules add colliding secretNames, unmanaged Secrets
   named by apps, and the deletion of all of an app's Secrets at once.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.ownership import recompute, secret_record
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support.harness import (
    CONTAINER_LISTS,
    NAMESPACE,
    PROJECT,
    REFERENCE_WAYS,
    WORKLOAD_KINDS,
    CrashPlan,
    World,
    application,
    base_config,
    check_all,
    workload,
)

APPS = ("alpha", "beta", "gamma")
SERVICES = ("kafka", "opensearch", "valkey")
ACCESS = ("read", "write", "readwrite", "admin")
SECRET_NAMES = tuple(f"{a}-{s}-{t}" for a in APPS for s in ("kafka", "os", "valkey") for t in (1, 2))
WORKLOADS = ("w1", "w2", "w3")
#: Secret names an app may name that are not its own: other apps' Secrets, or unmanaged ones.
FOREIGN_NAMES = ("db-creds", "alpha-kafka-1")

CRASH_POINTS = (
    CrashPlan("aiven", "ensure_user", "after"),
    CrashPlan("aiven", "ensure_user", "before"),
    CrashPlan("aiven", "put_user_rules", "after"),
    CrashPlan("aiven", "delete_user", "after"),
    CrashPlan("aiven", "remove_user_rules", "after"),
    CrashPlan("kube", "create_secret", "before"),
    CrashPlan("kube", "create_secret", "after"),
    CrashPlan("kube", "patch_secret", "after"),
    CrashPlan("kube", "patch_application_status", "before"),
    CrashPlan("kube", "remove_secret_finalizer", "before"),
    CrashPlan("kube", "delete_secret", "after"),
)

FAULT_KINDS = ("throttle", "error", "timeout", "reset", "commit_then_fail", "user_lag")
FAULT_PATHS = (None, r"/user", r"/opensearch/acl", r"/service/[^/]+$")


@st.composite
def faults(draw: st.DrawFn) -> tuple[str, int, int, int, str | None]:
    return (
        draw(st.sampled_from(FAULT_KINDS)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 30)),
        draw(st.sampled_from((500, 502, 503))),
        draw(st.sampled_from(FAULT_PATHS)),
    )


@st.composite
def crashes(draw: st.DrawFn) -> CrashPlan:
    plan = draw(st.sampled_from(CRASH_POINTS))
    return CrashPlan(plan.port, plan.method, plan.when, nth=draw(st.integers(1, 2)))


maybe_fault = st.one_of(st.none(), faults())
maybe_crash = st.one_of(st.none(), crashes())

#: CI-friendly, but enough to exercise crashes and faults; RESILIENCE_EXAMPLES raises it locally.
EXAMPLES = int(os.environ.get("RESILIENCE_EXAMPLES", "100"))
STEPS = int(os.environ.get("RESILIENCE_STEPS", "25"))


class ResilienceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World(config=base_config(leader_elect=True))
        self.world.start_replica()
        self.world.tick()
        self.workloads: dict[str, tuple[str, str]] = {}  # name -> (kind, secret)
        #: Secret names that existed while a workload referred to them, and that the test did not
        #: delete itself since: the operator must never delete these.
        self.guarded: set[str] = set()
        self.fault_hits = 0
        self.leader_kills = 0
        #: Unmanaged Secrets the test created: name -> (labels, finalizers, data) as created.
        self.foreign: dict[str, tuple[Any, Any, Any]] = {}
        #: uid -> the `app` label a managed Secret had when first seen.
        self.owners: dict[str, str] = {}

    def teardown(self) -> None:
        try:
            # Every example ends settled and checked, whatever the rules drawn.
            self._settle_and_check()
            _event(f"crashes: {min(self.world.crashes, 3)}{'+' if self.world.crashes >= 3 else ''}")
            _event(f"leader killed (standby took over): {'yes' if self.leader_kills else 'no'}")
            _event(f"replicas started: {min(len(self.world.replicas), 3)}")
            _event(f"Aiven faults that fired: {'none' if not self.fault_hits else 'some'}")
            _event(f"429s received: {'yes' if self._throttled() else 'no'}")
        finally:
            self.world.close()

    def _throttled(self) -> bool:
        return any(s.status == 429 for t in self.world.transports for s in t.sent)

    def _settle_and_check(self) -> None:
        self.fault_hits += sum(f.hits for f in self.world.aiven.faults.rules)
        self.world.settle()
        check_all(self.world)

    # --- applications ------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(APPS),
        services=st.frozensets(st.sampled_from(SERVICES), min_size=1),
        tag=st.integers(1, 2),
        access=st.sampled_from(ACCESS),
        protected=st.booleans(),
        expires_in_hours=st.one_of(st.none(), st.integers(1, 6)),
        valid=st.sampled_from((True, True, True, False)),
        fault=maybe_fault,
        crash=maybe_crash,
    )
    def apply_application(
        self,
        name: str,
        services: frozenset[str],
        tag: int,
        access: str,
        protected: bool,
        expires_in_hours: int | None,
        valid: bool,
        fault: tuple[str, int, int, int, str | None] | None = None,
        crash: CrashPlan | None = None,
    ) -> None:
        expires = (
            None if expires_in_hours is None else self.world.clock.now() + timedelta(hours=expires_in_hours)
        )
        body = application(
            name,
            kafka={"pool": PROJECT if valid else "not-an-allowed-pool", "secretName": f"{name}-kafka-{tag}"}
            if "kafka" in services
            else None,
            opensearch={"instance": "logs", "access": access, "secretName": f"{name}-os-{tag}"}
            if "opensearch" in services
            else None,
            valkey=[{"instance": "cache", "access": access, "secretName": f"{name}-valkey-{tag}"}]
            if "valkey" in services
            else None,
            protected=protected,
            expires_at=expires,
        )
        existing = self.world.kube.get("AivenApplication", NAMESPACE, name)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            return
        self._arm(fault, crash)
        self.world.kube.apply(body)
        self.world.tick()

    @rule(name=st.sampled_from(APPS), fault=maybe_fault, crash=maybe_crash)
    def delete_application(
        self, name: str, fault: tuple[str, int, int, int, str | None] | None, crash: CrashPlan | None
    ) -> None:
        self._arm(fault, crash)
        self.world.kube.delete("AivenApplication", NAMESPACE, name)
        self.world.run_janitor()  # the periodic janitor's pass: Secrets go, finalizers run

    def _arm(self, fault: tuple[str, int, int, int, str | None] | None, crash: CrashPlan | None) -> None:
        if fault is not None:
            self.inject_fault(*fault)
        if crash is not None:
            self.arm_crash(crash, crash.nth)

    # --- managed Secrets ------------------------------------------------------------------------------

    def _managed(self) -> list[dict[str, Any]]:
        return [s for s in self.world.managed_secrets() if not s["metadata"].get("deletionTimestamp")]

    @precondition(lambda self: bool(self._managed()))
    @rule(data=st.data(), edit=st.sampled_from(("value", "label", "annotation", "remove_key", "foreign_key")))
    def edit_secret(self, data: st.DataObject, edit: str) -> None:
        name = data.draw(st.sampled_from(sorted(s["metadata"]["name"] for s in self._managed())))
        secret = self.world.secret(name)
        assert secret is not None
        meta = secret["metadata"]
        if edit == "value":
            key = sorted(secret.get("data") or {"AIVEN_CA": ""})[0]
            secret.setdefault("data", {})[key] = "ZWRpdGVk"
        elif edit == "label":
            meta.setdefault("labels", {})[L.TEAM_LABEL] = "someone-else"
        elif edit == "annotation":
            meta.setdefault("annotations", {})[L.PROTECTED] = "maybe"
        elif edit == "remove_key" and secret.get("data"):
            secret["data"].pop(sorted(secret["data"])[-1])
        else:
            secret.setdefault("data", {})["THEIRS"] = "dGhlaXJz"
        self.world.kube.apply(secret)
        self.world.tick()

    @precondition(lambda self: bool(self._managed()))
    @rule(data=st.data())
    def delete_secret(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(s["metadata"]["name"] for s in self._managed())))
        self.guarded.discard(name)
        self.world.kube.delete_secret(NAMESPACE, name)
        self.world.tick()

    @precondition(lambda self: bool(self._managed()))
    @rule(name=st.sampled_from(APPS))
    def delete_all_secrets_of(self, name: str) -> None:
        """Mass deletion: every Secret of one app at once, before the operator sees any of it."""
        for secret in self._managed():
            if (secret["metadata"].get("labels") or {}).get(L.APP_LABEL) == name:
                self.guarded.discard(secret["metadata"]["name"])
                self.world.kube.delete_secret(NAMESPACE, secret["metadata"]["name"])
        self.world.tick()

    @rule(name=st.sampled_from(FOREIGN_NAMES))
    def create_unmanaged_secret(self, name: str) -> None:
        if self.world.secret(name) is not None:
            return
        self.world.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "data": {"DB_PASSWORD": "c2VjcmV0"},
            }
        )
        created = self.world.secret(name)
        assert created is not None
        meta = created["metadata"]
        self.foreign[name] = (meta.get("labels"), meta.get("finalizers"), created.get("data"))
        self.world.tick()

    @rule(name=st.sampled_from(APPS), victim=st.sampled_from(FOREIGN_NAMES + SECRET_NAMES[::5]))
    def apply_colliding_application(self, name: str, victim: str) -> None:
        """An app whose Kafka secretName is another app's Secret, or an unmanaged one."""
        existing = self.world.kube.get("AivenApplication", NAMESPACE, name)
        if existing is not None and existing["metadata"].get("deletionTimestamp"):
            return
        self.world.kube.apply(application(name, kafka={"pool": PROJECT, "secretName": victim}))
        self.world.tick()

    # --- workloads --------------------------------------------------------------------------------------

    @rule(
        name=st.sampled_from(WORKLOADS),
        kind=st.sampled_from(WORKLOAD_KINDS),
        way=st.sampled_from(REFERENCE_WAYS),
        container_list=st.sampled_from(CONTAINER_LISTS),
        secret=st.sampled_from(SECRET_NAMES),
    )
    def add_workload(self, name: str, kind: str, way: str, container_list: str, secret: str) -> None:
        previous = self.workloads.get(name)
        if previous is not None:
            self.world.kube.delete(previous[0], NAMESPACE, name)
        self.world.kube.apply(workload(kind, name, secret, way, container_list))
        self.workloads[name] = (kind, secret)
        self.world.tick()

    @precondition(lambda self: bool(self.workloads))
    @rule(data=st.data())
    def remove_workload(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.workloads)))
        kind, _ = self.workloads.pop(name)
        self.world.kube.delete(kind, NAMESPACE, name)
        self.world.tick()

    # --- faults, crashes, replicas, time -------------------------------------------------------------------

    @rule(
        kind=st.sampled_from(FAULT_KINDS),
        times=st.integers(1, 3),
        retry_after=st.integers(1, 30),
        status=st.sampled_from((500, 502, 503)),
        path=st.sampled_from(FAULT_PATHS),
    )
    def inject_fault(self, kind: str, times: int, retry_after: int, status: int, path: str | None) -> None:
        faults = self.world.aiven.faults
        if kind == "throttle":
            faults.throttle(retry_after=retry_after, times=times, path=path)
        elif kind == "error":
            faults.error(status, times=times, path=path)
        elif kind == "timeout":
            faults.timeout(hang_s=0.0, times=times, path=path)
        elif kind == "reset":
            faults.reset(times=times, path=path)
        elif kind == "commit_then_fail":
            faults.commit_then_fail(method="POST", path=r"/user$", times=times)
        else:
            faults.user_lag(times, times=times)

    @rule(plan=st.sampled_from(CRASH_POINTS), nth=st.integers(1, 2))
    def arm_crash(self, plan: CrashPlan, nth: int) -> None:
        leader = self.world.leader() or self.world.live()[0]
        leader.plans.append(CrashPlan(plan.port, plan.method, plan.when, nth=nth))

    @precondition(lambda self: len(self.world.live()) == 1)
    @rule()
    def start_standby(self) -> None:
        self.world.start_replica()
        self.world.tick()

    @precondition(lambda self: len(self.world.live()) == 2)
    @rule()
    def kill_leader(self) -> None:
        leader = self.world.leader() or self.world.live()[0]
        self.world.kill(leader)
        self.leader_kills += 1
        self.world.advance(20, step=5)  # the standby takes the Lease once it expired

    @rule(seconds=st.sampled_from((1, 5, 30, 120, 900, 3 * 3600)))
    def advance_clock(self, seconds: int) -> None:
        self.world.advance(seconds, step=max(5.0, seconds / 4))

    @rule()
    def run_janitor_and_sweep(self) -> None:
        self.world.run_janitor()
        self.world.sweep()

    @rule()
    def settle_and_check(self) -> None:
        self._settle_and_check()

    # --- promise 3, after every step -------------------------------------------------------------------

    @invariant()
    def no_referenced_secret_was_deleted(self) -> None:
        present = {
            s["metadata"]["name"]
            for s in self.world.kube.objects("Secret", NAMESPACE)
            if not s["metadata"].get("deletionTimestamp")
        }
        referenced = {secret for _, secret in self.workloads.values()}
        lost = sorted((self.guarded & referenced) - present)
        assert not lost, f"Secrets in use by workloads were deleted: {lost}"
        self.guarded = (self.guarded & referenced) | (referenced & present)


    # --- promise 7 (ownership), after every step ---------------------------------------------------------

    @invariant()
    def unmanaged_secrets_are_never_written(self) -> None:
        for name, (labels, finalizers, data) in self.foreign.items():
            secret = self.world.secret(name)
            assert secret is not None, f"unmanaged Secret {name} was deleted"
            meta = secret["metadata"]
            assert (meta.get("labels"), meta.get("finalizers"), secret.get("data")) == (labels, finalizers, data), (
                f"unmanaged Secret {name} was written"
            )

    @invariant()
    def managed_secrets_never_change_owner(self) -> None:
        for secret in self.world.managed_secrets():
            meta = secret["metadata"]
            app = (meta.get("labels") or {}).get(L.APP_LABEL, "")
            first = self.owners.setdefault(str(meta.get("uid")), app)
            assert first == app, f"Secret {meta['name']} changed owner from {first} to {app}"

    @invariant()
    def ownership_index_equals_a_full_recomputation(self) -> None:
        for replica in self.world.live():
            caches = replica.operator.caches
            expected = recompute(secret_record(s) for s in caches.secrets.iterate())
            assert caches.ownership.state() == expected, f"{replica.name}: ownership index drifted"


def _event(text: str) -> None:
    with contextlib.suppress(InvalidArgument):  # outside a hypothesis run (the smoke test)
        event(text)


ResilienceMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    # Shrinking a long operator run can take many minutes; CI reports the unshrunk steps (each
    # failure found so far became a plain test in test_regressions.py). RESILIENCE_SHRINK=1 shrinks.
    phases=tuple(Phase)
    if os.environ.get("RESILIENCE_SHRINK")
    else (Phase.explicit, Phase.reuse, Phase.generate),
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
TestResilience = ResilienceMachine.TestCase


def test_the_machine_ends_settled() -> None:
    """A fixed short run through every kind of rule, settled at the end (a smoke test of the rig
    that does not depend on what hypothesis draws)."""
    machine = ResilienceMachine()
    try:
        machine.apply_application("alpha", frozenset(SERVICES), 1, "readwrite", False, None, True, None, None)
        machine.add_workload("w1", "CronJob", "projected", "initContainers", "alpha-os-1")
        machine.start_standby()
        machine.arm_crash(CrashPlan("kube", "create_secret", "before"), 1)
        machine.apply_application("beta", frozenset({"valkey", "opensearch"}), 2, "admin", True, 2, True)
        assert machine.world.crashes == 1
        machine.inject_fault("throttle", 2, 9, 429, None)
        machine.kill_leader()
        machine.apply_application("alpha", frozenset({"kafka"}), 2, "read", False, None, True)
        machine.no_referenced_secret_was_deleted()
        machine.settle_and_check()
        assert machine.world.secret("alpha-os-1") is not None  # kept: a CronJob refers to it
        assert machine.world.secret("alpha-valkey-1") is None  # unused: collected
        machine.no_referenced_secret_was_deleted()
    finally:
        machine.teardown()
