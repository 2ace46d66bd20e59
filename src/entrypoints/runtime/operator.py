"""The running operator: caches, work queue, workers, timers, leader election, probes.

`Operator` receives what the composition root (`entrypoints/container.py`) built — caches, work
queue, shells, leader elector, servers — and offers two ways to run them:

* threaded: `start()` / `stop()` / `wait_until_idle(timeout)` (what `aivenator run` and the demo
  use): one thread per informer, `workers` reconcile threads, a resync/janitor timer, the
  leader elector and the probe server;
* synchronous: `step()` / `drain()` with no threads at all, so property-based tests can drive
  the whole operator deterministically (informers poll with timeout 0; the queue's clock is
  injectable, so `add_after` wake-ups fire when the test advances it).

Work keys are `(kind, namespace, name)`: `app` (reconcile an AivenApplication), `secret`
(finalize a managed Secret being deleted), `janitor` (janitor pass for a namespace, name "").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from aivenator.domain import labels as L
from aivenator.domain.janitor import janitor_delay
from aivenator.domain.kubernetes_port import KubeObject, KubernetesPort, ObjectMeta
from aivenator.domain.outcomes import Done, Invalid, Outcome, Retry, WaitFor
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.runtime.caches import Caches
from aivenator.entrypoints.runtime.health import HealthServer
from aivenator.entrypoints.runtime.leader import LeaderElector
from aivenator.entrypoints.runtime.watch_loop import ChangeType, Informer, object_key
from aivenator.entrypoints.runtime.webhook import WebhookServer
from aivenator.entrypoints.runtime.workqueue import WorkQueue
from aivenator.entrypoints.shells.finalize import Finalizer
from aivenator.entrypoints.shells.janitor_runner import JanitorRunner
from aivenator.entrypoints.shells.metrics import Metrics
from aivenator.entrypoints.shells.orphan_sweep import OrphanSweeper, edited_owned_keys
from aivenator.entrypoints.shells.reconcile import Reconciler
from structlog.typing import FilteringBoundLogger

Key = tuple[str, str, str]
APP, SECRET, JANITOR, ORPHANS, VERIFY = "app", "secret", "janitor", "orphans", "verify"


class Operator:
    """Runs what the composition root built: the caches, the queue, the shells, the elector."""

    def __init__(
        self,
        config: OperatorConfig,
        kube: KubernetesPort,
        metrics: Metrics,
        log: FilteringBoundLogger,
        caches: Caches,
        queue: WorkQueue[Key],
        reconciler: Reconciler,
        finalizer: Finalizer,
        janitor: JanitorRunner,
        orphans: OrphanSweeper,
        monotonic: Callable[[], float] = time.monotonic,
        leader: LeaderElector | None = None,
        servers: Sequence[HealthServer] = (),
        webhook: WebhookServer | None = None,
    ) -> None:
        self.config = config
        self.kube = kube
        self.metrics = metrics
        self.log = log
        self._mono = monotonic
        self.leader = leader
        self.servers = tuple(servers)
        #: The CRD conversion webhook: served by every replica from start, leader or not.
        self.webhook = webhook
        self.queue = queue
        self.caches = caches
        self.apps = caches.apps
        self.secrets = caches.secrets
        self.workloads = caches.workloads
        self.reconciler = reconciler
        self.finalizer = finalizer
        self.janitor = janitor
        self.orphans = orphans
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._forced: set[tuple[str, str]] = set()
        #: (start, duration) of the last janitor pass per namespace ("" for the cluster-wide one).
        self._janitor_runs: dict[str, tuple[float, float]] = {}
        self.apps.subscribe(self._on_app)
        self.secrets.subscribe(self._on_secret)
        if leader is not None:
            leader.set_callbacks(self.on_started_leading, self.on_stopped_leading)

    # --- state ----------------------------------------------------------------------------------

    def may_mutate(self) -> bool:
        return self.leader is None or self.leader.is_leader()

    def informers(self) -> list[Informer[Any]]:
        return self.caches.informers()

    def caches_synced(self) -> bool:
        return self.caches.synced()

    def readiness(self) -> tuple[bool, str]:
        if not self.caches_synced():
            pending = [i.name for i in self.informers() if not i.has_synced]
            return False, "caches not synced: " + ", ".join(pending)
        if self.leader is not None:
            return True, "leading" if self.leader.is_leader() else "standing by"
        return True, "ok"

    def liveness(self) -> tuple[bool, str]:
        dead = [t.name for t in self._threads if not t.is_alive()]
        if self._started and not self._stop.is_set() and dead:
            return False, "threads stopped: " + ", ".join(dead)
        return True, "ok"

    # --- cache events -----------------------------------------------------------------------------

    def _on_app(self, change: ChangeType, old: KubeObject | None, new: KubeObject) -> None:
        namespace, name = object_key(new)
        if change == "DELETED":
            self.queue.cancel_wakeup((APP, namespace, name))
            self.metrics.cert_days_left.remove(namespace, name)
            self._ask_janitor(namespace)
            return
        self.queue.add((APP, namespace, name))

    def _on_secret(self, change: ChangeType, old: KubeObject | None, new: KubeObject) -> None:
        namespace, name = object_key(new)
        count = self.secrets.count_in(namespace)
        if count:
            self.metrics.secrets_managed.labels(namespace=namespace).set(count)
        else:
            self.metrics.secrets_managed.remove(namespace)
        meta = ObjectMeta(new)
        if change != "DELETED" and meta.deleting and L.FINALIZER in meta.finalizers:
            self.queue.add((SECRET, namespace, name))
            return
        app = meta.label(L.APP_LABEL)
        if app and (namespace, app) in self.apps:
            # Drift repair: the app's pass decides from the cache whether anything must change.
            self.queue.add((APP, namespace, str(app)))
        if change == "MODIFIED" and old is not None:
            # Relabelled: the app it belonged to must repair it. Edited values of our keys are
            # invisible to the pass (metadata and key names only): force a full sync.
            was = ObjectMeta(old).label(L.APP_LABEL)
            # (Only relabelling or changed values need the owner: reading it decodes it.)
            relevant = was and (was != app or old.get("data") != new.get("data"))
            owner = self.apps.get((namespace, str(was))) if relevant else None
            if owner is not None and was != app:
                self.queue.add((APP, namespace, str(was)))
            if owner is not None and edited_owned_keys(old, new, owner, frozenset(self.config.projects)):
                self._forced.add((namespace, str(was)))
                self.queue.add((APP, namespace, str(was)))

    def _ask_janitor(self, namespace: str) -> None:
        """A janitor pass over `namespace`, now or once its passes have had their share of time."""
        last_started, last_duration = self._janitor_runs.get(namespace, (None, 0.0))
        delay = janitor_delay(last_started, last_duration, self._mono())
        self.queue.add_after((JANITOR, namespace, ""), delay)

    # --- processing -----------------------------------------------------------------------------

    def process(self, key: Key) -> None:
        """Handle one key (the caller took it from the queue and calls `done` after)."""
        kind, namespace, name = key
        started = self._mono()
        attempt = self.queue.failures(key)
        outcome: Outcome
        wake: float | None = None
        if not self.may_mutate():
            # Standing by: do nothing at all; winning the Lease re-enqueues everything.
            self.queue.forget(key)
            return
        try:
            if kind == APP and (namespace, name) in self._forced:
                self._forced.discard((namespace, name))
                patched = self.orphans.force_resync(namespace, name, "values of managed keys edited")
                if patched is not None:
                    self.apps.remember(patched)  # this very pass then syncs in full
            if kind == APP:
                result = self.reconciler.reconcile(namespace, name, attempt)
                outcome, wake = result.outcome, result.wake_after
                if result.janitor_namespace:
                    self._ask_janitor(result.janitor_namespace)
                self.metrics.processing_time.labels(
                    synchronization_state=self._sync_state(namespace, name)
                ).observe(max(0.0, self._mono() - started))
            elif kind == SECRET:
                outcome = self.finalizer.finalize(namespace, name, attempt).outcome
            elif kind == VERIFY:
                outcome = (
                    Done()
                    if self.orphans.verify() is not None or not self.may_mutate()
                    else Retry(5.0, "caches")
                )
            elif kind == ORPHANS:
                outcome = (
                    Done()
                    if self.orphans.run() is not None or not self.may_mutate()
                    else Retry(5.0, "caches")
                )
            elif kind == JANITOR:
                pass_started = self._mono()
                ran = self.janitor.run(namespace or None)
                if ran.ran:
                    self._janitor_runs[namespace] = (pass_started, self._mono() - pass_started)
                outcome = (
                    Done()
                    if ran.ran or ran.skipped_reason == "not leader"
                    else Retry(5.0, ran.skipped_reason)
                )
            else:
                outcome = Done()
        except Exception as exc:  # a bug must not kill the worker; it is logged (redacted) and retried
            self.log.exception(
                "work_item_failed", work=kind, namespace=namespace, name=name, error=type(exc).__name__
            )
            outcome = Retry(5.0, f"internal error: {type(exc).__name__}")
        self._settle(key, outcome, wake)

    def _sync_state(self, namespace: str, name: str) -> str:
        """`status.synchronizationState` of the cached application (after this pass's write)."""
        raw = self.apps.get((namespace, name)) or {}
        status = raw.get("status")
        # Only the state is needed (a metric label): read it as `status_from_dict` would,
        # without building every condition of the status.
        state = status.get("synchronizationState") if isinstance(status, dict) else None
        return state if isinstance(state, str) and state else "Unknown"

    def _settle(self, key: Key, outcome: Outcome, wake: float | None) -> None:
        match outcome:
            case Done():
                self.queue.forget(key)
                if wake is not None:
                    self.queue.add_after(key, max(wake, 0.001))
            case Invalid():
                self.queue.forget(key)
            case Retry(after=after, reason=reason) | WaitFor(after=after, what=reason):
                if key[0] == APP:
                    self.metrics.applications_requeued.labels(
                        synchronization_state=self._sync_state(key[1], key[2]),
                        reason=type(outcome).__name__.lower(),
                    ).inc()
                delay = self.queue.add_rate_limited(key, min_delay=after)
                self.log.debug(
                    "work_requeued", work=key[0], namespace=key[1], name=key[2], after=delay, reason=reason
                )
                if wake is not None:
                    self.queue.add_after(key, max(wake, 0.001))

    def resync(self) -> int:
        """Re-enqueue every cached AivenApplication (periodic resync); returns how many."""
        keys = self.apps.cached_keys()
        for namespace, name in keys:
            self.queue.add((APP, namespace, name))
        self.metrics.set_secrets_managed(self.secrets.counts())
        return len(keys)

    def on_started_leading(self) -> None:
        self.metrics.is_leader.set(1)
        self.log.info("leader_elected")
        self.resync()
        for namespace, name in self.secrets.cached_keys():
            obj = self.secrets.get((namespace, name))
            if obj is not None and ObjectMeta(obj).deleting:
                self.queue.add((SECRET, namespace, name))

    def on_stopped_leading(self) -> None:
        self.metrics.is_leader.set(0)
        self.log.warning("leader_lost")

    # --- synchronous mode -------------------------------------------------------------------------

    def sync_caches(self) -> None:
        for informer in self.informers():
            informer.poll()

    def step(self) -> Key | None:
        """Take in pending cache changes, then process at most one ready key (no threads)."""
        self.sync_caches()
        key = self.queue.try_get()
        if key is None:
            return None
        try:
            self.process(key)
        finally:
            self.queue.done(key)
        return key

    def drain(self, max_steps: int = 10_000) -> int:
        """Step until nothing is ready; returns the number of keys processed."""
        processed = 0
        while processed < max_steps:
            if self.step() is None:
                self.sync_caches()
                if len(self.queue) == 0:
                    return processed
                continue
            processed += 1
        raise RuntimeError(f"operator did not settle within {max_steps} steps")

    # --- threaded mode ----------------------------------------------------------------------------

    def start(self, sync_timeout: float = 0.0) -> None:
        """Start every thread and return; with `sync_timeout`, first wait up to that long for
        the caches. Workers never act before the caches have synced (a half-filled Secret cache
        would look like missing Secrets), so this wait is only a convenience for callers."""
        if self._started:
            return
        self._started = True
        self._stop.clear()
        for server in self.servers:
            server.ready = self.readiness
            server.alive = self.liveness
            server.start()
        if self.webhook is not None:
            self.webhook.start()
            self.log.info("conversion_webhook_serving", url=self.webhook.url)
        for informer in self.informers():
            self._spawn(f"informer-{informer.name}", informer.run, self._stop)
        if self.leader is not None:
            self.leader.start()
        else:
            self.metrics.is_leader.set(1)
        for i in range(self.config.workers):
            self._spawn(f"worker-{i}", self._worker)
        self._spawn("timers", self._timers)
        self.log.info(
            "operator_started", workers=self.config.workers, leader_election=self.leader is not None
        )
        if sync_timeout > 0:
            self._await_caches(sync_timeout)

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _await_caches(self, timeout: float | None = None) -> bool:
        """Wait until every cache has synced (True), or the operator stops or `timeout` passes
        (False). Wakes the moment the last list lands (polling every 0.1 s cost a new pod up to
        0.1 s before its first reconcile)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in self.informers():
            while not informer.wait_synced(0.1):
                if self._stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    return False
        return not self._stop.is_set()

    def _worker(self) -> None:
        if not self._await_caches():
            return
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self.process(key)
            finally:
                self.queue.done(key)

    def _timers(self) -> None:
        if not self._await_caches():
            return
        self.log.info("caches_synced", applications=len(self.apps), secrets=len(self.secrets))
        next_resync = self._mono() + self.config.sync_period
        next_janitor = self._mono() + self.config.janitor_interval
        orphan_interval = self.config.orphan_sweep_interval
        next_orphans = self._mono() + orphan_interval
        while not self._stop.wait(0.5):
            now = self._mono()
            if orphan_interval > 0 and now >= next_orphans:
                self.queue.add((ORPHANS, "", ""))
                next_orphans = now + orphan_interval
            if now >= next_resync:
                count = self.resync()
                self.log.info("periodic_resync", applications=count)
                next_resync = now + self.config.sync_period
            if now >= next_janitor:
                self.queue.add((JANITOR, "", ""))
                next_janitor = now + self.config.janitor_interval

    def wait_until_idle(self, timeout: float = 30.0, settle: float = 0.2) -> bool:
        """True once the queue is empty with nothing in flight for `settle` seconds in a row."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            if self.caches_synced() and self.queue.is_idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return True
            else:
                quiet_since = None
            time.sleep(0.02)
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watches and timers, let in-flight work finish, release the Lease."""
        if not self._started:
            return
        self._stop.set()
        self.queue.shutdown()
        if not self.queue.wait_inflight(timeout):
            self.log.warning("shutdown_inflight_timeout", timeout=timeout)
        close = getattr(self.kube, "close", None)
        if callable(close):
            close()
        for thread in self._threads:
            thread.join(timeout=1.0)
        self._threads.clear()
        if self.leader is not None:
            self.leader.stop(release=True)
        for server in self.servers:
            server.stop()
        if self.webhook is not None:
            self.webhook.stop()
        self._started = False
        self.log.info("operator_stopped")
