"""The orphan sweep shell: find (and, unless dry-run, delete) Aiven users nobody refers to; and
the periodic user verification that repairs users deleted out of band.

Which services are looked at: every service of a managed type in the allowed projects (Kafka)
and the main project (OpenSearch, Valkey), listed with one request per project when the Aiven
adapter offers `list_services`. Without it (the port's minimum): every service a managed Secret
names, every service a current AivenApplication targets, every service an earlier sweep of this
process looked at, and the Kafka service candidates of every allowed project; then, after a
restart, an OpenSearch or Valkey service nothing names any more is out of sight. Facts are read
fresh (single reads invalidate the adapter's cache first): a stale list could hide a user
deleted out of band.

Sweep decisions are `aivenator.domain.orphans.plan_orphan_sweep`; the first-seen table lives in memory, so
after a restart every user needs a full grace period again before it can be swept (errs towards
sparing). Deletions are rate-limited (`max_deletions` per sweep; the rest wait for the next
sweep); for OpenSearch the user's ACL entry goes first. Each deletion says what and why in a log
line, a metric and a Normal event on the operator's Lease object (orphans have no Kubernetes
object of their own).

Users current applications expect are spared (`aivenator.domain.audit.expected_users`): per
section only the name it chooses, and none for a section whose Secret is not the app's to write
(`ownership.write_verdict`). A section whose Secret the ownership index does not hold costs one
Secret `GET`: only managed Secrets are watched, and an unmanaged one refuses the section too.

Verification (part of every sweep, even in dry-run mode; also `verify()` alone, the `verify`
work item): a managed Secret of a current application that records a user Aiven no longer has
gets its application's `status.synchronizationHash` cleared, the documented way to force a full
sync; the next pass recreates the user and rewrites the Secret. Cost: one `GET` per project
(listing) or per managed service per sweep, independent of the number of applications, and one
status write per application whose user actually went missing. It runs on the sweep's period,
not on the resync's: the periodic resync stays free of Aiven requests (the steady-state
promise).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from aivenator.domain import labels as L
from aivenator.domain.actions import DeleteServiceUser, RemoveOpenSearchAcl
from aivenator.domain.application import AivenApplication
from aivenator.domain.audit import expected_users
from aivenator.domain.facts import ServiceFacts, ServiceType
from aivenator.domain.janitor import secret_view
from aivenator.domain.kubernetes_port import KubeObject, KubernetesPort, ObjectMeta, ObjectRef
from aivenator.domain.orphans import SpareReason, SweepPlan, UserKey, plan_orphan_sweep
from aivenator.domain.ownership import OwnershipIndex, write_verdict
from aivenator.domain.parse import parse_application
from aivenator.domain.ports import AivenPort
from aivenator.domain.secrets import COMMON_DATA_KEYS
from aivenator.domain.services import all_sections, cleanup_actions
from aivenator.domain.services.base import SecretMeta, Section, ServiceConfig
from aivenator.domain.services.kafka import service_candidates
from aivenator.entrypoints.shells.metrics import PREFIX, AivenObserver, Metrics
from aivenator.entrypoints.shells.secret_records import secret_record_of
from prometheus_client import Counter, Gauge
from returns.result import Failure, Success
from structlog.typing import FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class SweepMetrics:
    deleted: Counter
    found: Gauge
    runs: Counter


_METRICS: weakref.WeakKeyDictionary[Metrics, SweepMetrics] = weakref.WeakKeyDictionary()
_METRICS_LOCK = threading.Lock()


def sweep_metrics(metrics: Metrics) -> SweepMetrics:
    """The sweep's metrics on the operator's registry (registered once per registry)."""
    with _METRICS_LOCK:
        found = _METRICS.get(metrics)
        if found is None:
            r = metrics.registry
            found = SweepMetrics(
                deleted=Counter(
                    f"{PREFIX}_orphan_users_deleted",
                    "Aiven users deleted by the orphan sweep (no managed Secret referred to them)",
                    ["pool", "service"],
                    registry=r,
                ),
                found=Gauge(
                    f"{PREFIX}_orphan_users",
                    "Orphaned Aiven users found by the last sweep (past the grace period; in dry-run mode never deleted)",
                    ["pool", "service"],
                    registry=r,
                ),
                runs=Counter(
                    f"{PREFIX}_orphan_sweeps",
                    "Orphan sweeps and user verifications, by what they did",
                    ["outcome"],
                    registry=r,
                ),
            )
            _METRICS[metrics] = found
        return found


@dataclass(frozen=True, slots=True)
class VerifyResult:
    #: (namespace, application) whose recorded users were missing in Aiven (resync forced).
    forced: tuple[tuple[str, str], ...]
    services: int


class OrphanSweeper:
    def __init__(
        self,
        aiven: AivenPort,
        observer: AivenObserver,
        secrets: Callable[[], Iterable[KubeObject]],
        applications: Callable[[], Iterable[KubeObject]],
        caches_synced: Callable[[], bool],
        may_mutate: Callable[[], bool],
        now: Callable[[], datetime],
        allowed_projects: frozenset[str],
        main_project: str,
        grace_period: float,
        dry_run: bool,
        log: FilteringBoundLogger,
        metrics: Metrics | None = None,
        kube: KubernetesPort | None = None,
        event_ref: ObjectRef | None = None,
        max_deletions: int = 20,
        extra_services: Iterable[tuple[str, str]] = (),
        ownership: OwnershipIndex | None = None,
    ) -> None:
        self._aiven = aiven
        self._observer = observer
        self._ownership = ownership if ownership is not None else OwnershipIndex()
        self._secrets = secrets
        self._applications = applications
        self._synced = caches_synced
        self._may_mutate = may_mutate
        self._now = now
        self._allowed = allowed_projects
        self._service_config = ServiceConfig(main_project=main_project)
        self._main_project = main_project
        self._grace = timedelta(seconds=grace_period)
        self._dry_run = dry_run
        self._log = log
        self._metrics = sweep_metrics(metrics) if metrics is not None else None
        #: The Kubernetes port, for events and forced resyncs (None: neither).
        self._kube = kube
        self._event_ref = event_ref
        self._max_deletions = max(1, max_deletions)
        self._lock = threading.Lock()
        self._first_seen: dict[UserKey, datetime] = {}
        #: Services seen in any sweep of this process (they stay in sight after their last app).
        self._known_services: dict[tuple[str, str], None] = dict.fromkeys(extra_services)

    # --- the sweep ---------------------------------------------------------------------------------

    def run(self) -> SweepPlan | None:
        """One sweep (with a verification on the same facts); None when it must not run (caches
        not synced, not leader)."""
        if not self._synced() or not self._may_mutate():
            return None
        # Each input is read from the caches one object at a time (decoded as it is reached) and
        # reduced at once: at 10k applications, holding every raw application and Secret decoded
        # together cost more memory than the caches themselves.
        # The applications are parsed afresh for each use (about 10 us each) rather than held
        # parsed: first the services their sections name and the apps present.
        services = self._services_of_secrets(self._secrets())
        present: set[tuple[str, str]] = set()
        for app in self._parsed(self._applications()):
            present.add((app.namespace, app.name))
            for handler, section in all_sections(app):
                target = handler.target(app, section, self._service_config)
                for candidate in target.candidates:
                    services[(target.project, candidate.service)] = None

        def current_apps() -> Iterator[AivenApplication]:
            # A later read may hold an app the first did not: it is present too.
            for app in self._parsed(self._applications()):
                present.add((app.namespace, app.name))
                yield app

        def may_provision(app: AivenApplication, section: Section) -> bool:
            # A section refused for a Secret that is not the app's expects no user. The index
            # holds managed Secrets only; one it lacks may exist unmanaged, which only the API
            # server can tell (as the reconcile asks it). Unknown: keep expecting (spare).
            if self._kube is None:
                record = self._ownership.record(app.namespace, section.secret_name)
            else:
                match secret_record_of(self._ownership, self._kube, app.namespace, section.secret_name):
                    case Success(record):
                        pass
                    case Failure(_):
                        return True
            owner_exists = record is None or (app.namespace, record.app) in present
            verdict = write_verdict(app.namespace, app.name, section.secret_name, record, owner_exists)
            return verdict.may_write

        expected = expected_users(
            current_apps(),
            self._service_config,
            self._ownership.taken_by_others,
            self._ownership.recorded_by,
            may_provision,
        )
        with self._lock:
            for key in self._known_services:
                services.setdefault(key, None)
            self._known_services.update(services)
        for project in sorted(self._allowed):
            for kafka_service in service_candidates(project):
                services.setdefault((project, kafka_service), None)
        facts = self._read(services)
        self._force_missing(self._secrets(), self._parsed(self._applications()), facts)
        with self._lock:
            first_seen = dict(self._first_seen)
        # The Secret views stream into the plan, which keeps only the users they refer to; they
        # are read after the services' users, so a user created meanwhile finds its Secret.
        views = (secret_view(s) for s in self._secrets())
        plan = plan_orphan_sweep(facts, views, first_seen, self._now(), self._grace, self._dry_run, expected)
        with self._lock:
            self._first_seen = dict(plan.first_seen)
        self._report_found(plan, facts)
        deleted = 0
        for orphan in plan.delete[: self._max_deletions]:
            if not self._may_mutate():
                break
            failed: str | None = None
            for action in orphan.actions():
                with self._observer.context(orphan.project, orphan.service):
                    if isinstance(action, RemoveOpenSearchAcl):
                        result = self._aiven.remove_user_rules(
                            action.project, action.service, action.username
                        )
                    else:
                        result = self._aiven.delete_user(action.project, action.service, action.username)
                if isinstance(result, Failure):
                    failed = type(result.failure()).__name__
                    break
            if failed is None:
                deleted += 1
                if self._metrics is not None:
                    self._metrics.deleted.labels(pool=orphan.project, service=orphan.service).inc()
                self._log.info(
                    "orphan_user_deleted",
                    project=orphan.project,
                    aiven_service=orphan.service,
                    username=orphan.username,
                    reason=orphan.reason,
                )
                self._event(
                    "OrphanUserDeleted",
                    f"deleted Aiven user {orphan.username} of {orphan.project}/{orphan.service}: {orphan.reason}",
                )
            else:
                self._log.warning(
                    "orphan_user_delete_failed",
                    project=orphan.project,
                    aiven_service=orphan.service,
                    username=orphan.username,
                    error=failed,
                )
        postponed = max(0, len(plan.delete) - self._max_deletions)
        would = [s for s in plan.spared if s.reason is SpareReason.DRY_RUN]
        if self._metrics is not None:
            self._metrics.runs.labels(outcome="dry_run" if self._dry_run else "swept").inc()
        if plan.delete or would:
            self._log.info(
                "orphan_sweep",
                deleted=deleted,
                postponed=postponed,
                would_delete=len(would),
                services=len(facts),
            )
            for spared in would:
                self._log.info(
                    "orphan_user_found",
                    project=spared.user.project,
                    aiven_service=spared.user.service,
                    username=spared.user.username,
                    reason=spared.detail,
                )
        return plan

    # --- verification ------------------------------------------------------------------------------

    def verify(self) -> VerifyResult | None:
        """Force a resync of every application whose Secret records a user Aiven no longer has.
        None when it must not run (caches not synced, not leader)."""
        if not self._synced() or not self._may_mutate():
            return None
        facts = self._read(self._services_of_secrets(self._secrets()))
        forced = self._force_missing(self._secrets(), self._parsed(self._applications()), facts)
        if self._metrics is not None:
            self._metrics.runs.labels(outcome="verified").inc()
        return VerifyResult(forced, len(facts))

    def _force_missing(
        self, raw_secrets: Iterable[KubeObject], apps: Iterable[AivenApplication], facts: list[ServiceFacts]
    ) -> tuple[tuple[str, str], ...]:
        users = {(f.project, f.name): frozenset(f.usernames) for f in facts}
        current = {
            (app.namespace, app.name): frozenset(s.secret_name for _, s in all_sections(app))
            for app in apps
            if not app.deletion_requested
        }
        forced: dict[tuple[str, str], str] = {}
        for raw in raw_secrets:
            view = secret_view(raw)
            owner = (view.namespace, view.label(L.APP_LABEL))
            if view.deletion_requested or view.name not in current.get(owner, frozenset()):
                continue
            by_user: dict[str, list[bool]] = {}
            for action in cleanup_actions(SecretMeta.from_raw(raw)):
                if not isinstance(action, DeleteServiceUser):
                    continue
                present = users.get((action.project, action.service))
                if present is not None:
                    by_user.setdefault(action.username, []).append(action.username in present)
            missing = [u for u, seen in by_user.items() if not any(seen)]
            if missing and owner not in forced:
                forced[owner] = missing[0]
        done: list[tuple[str, str]] = []
        for (namespace, name), username in sorted(forced.items()):
            if self._kube is None or not self._may_mutate():
                break
            result = self._kube.patch_application_status(namespace, name, {"synchronizationHash": ""})
            if isinstance(result, Success):
                done.append((namespace, name))
                self._log.warning(
                    "service_user_missing",
                    namespace=namespace,
                    aiven_application=name,
                    username=username,
                    outcome="resync_forced",
                )
        return tuple(done)

    def force_resync(self, namespace: str, name: str, why: str) -> KubeObject | None:
        """Clear the application's `status.synchronizationHash` (the documented way to force a
        full sync); the patched application, or None when nothing was written. The caller puts
        it into its cache: a hash that was already cleared produces no watch event."""
        if self._kube is None or not self._may_mutate():
            return None
        result = self._kube.patch_application_status(namespace, name, {"synchronizationHash": ""})
        if isinstance(result, Success):
            self._log.info(
                "resync_forced", namespace=namespace, aiven_application=name, reason=why, outcome="forced"
            )
            patched: KubeObject = result.unwrap()
            return patched
        return None

    # --- helpers -----------------------------------------------------------------------------------

    def _parsed(self, raw_apps: Iterable[KubeObject]) -> Iterator[AivenApplication]:
        """The applications that parse, one at a time as `raw_apps` yields them."""
        for raw in raw_apps:
            match parse_application(raw, self._allowed):
                case Success(parsed):
                    yield parsed.app
                case Failure(_):
                    continue

    def _services_of_secrets(self, raw_secrets: Iterable[KubeObject]) -> dict[tuple[str, str], None]:
        services: dict[tuple[str, str], None] = {}
        for raw in raw_secrets:
            for action in cleanup_actions(SecretMeta.from_raw(raw)):
                if isinstance(action, DeleteServiceUser) and self._served(
                    action.service_type, action.project
                ):
                    services[(action.project, action.service)] = None
        return services

    def _read(self, services: dict[tuple[str, str], None]) -> list[ServiceFacts]:
        """Fresh facts of every usable managed service: per project one listing when the adapter
        can list services (that also finds services nothing names any more), else one read per
        known service. A service that cannot be read is neither swept nor verified."""
        projects = sorted({p for p, _ in services} | set(self._allowed) | {self._main_project})
        listed: dict[str, list[ServiceFacts]] = {}
        for project in projects:
            with self._observer.context(project, ""):
                got = self._aiven.list_services(project)
            if isinstance(got, Success):
                listed[project] = [
                    f for f in got.unwrap() if self._served(f.service_type, project) and f.usable
                ]
        facts: list[ServiceFacts] = [f for project in sorted(listed) for f in listed[project]]
        for project, service in sorted(services):
            if project in listed:
                continue
            self._aiven.invalidate(project, service)
            with self._observer.context(project, service):
                got_one = self._aiven.service(project, service)
            if isinstance(got_one, Success) and got_one.unwrap().usable:
                facts.append(got_one.unwrap())
        return facts

    def _report_found(self, plan: SweepPlan, facts: list[ServiceFacts]) -> None:
        if self._metrics is None:
            return
        counts = {(f.project, f.name): 0 for f in facts}
        for orphan in plan.delete:
            counts[(orphan.project, orphan.service)] = counts.get((orphan.project, orphan.service), 0) + 1
        for spared in plan.spared:
            if spared.reason is SpareReason.DRY_RUN:
                key = (spared.user.project, spared.user.service)
                counts[key] = counts.get(key, 0) + 1
        for (project, service), count in counts.items():
            self._metrics.found.labels(pool=project, service=service).set(count)

    def _event(self, reason: str, message: str) -> None:
        if self._kube is None or self._event_ref is None:
            return
        try:
            self._kube.record_event(self._event_ref, "Normal", reason, message[:1000])
        except Exception as exc:  # an event is a courtesy; never let it stop a sweep
            self._log.warning("orphan_event_failed", error=type(exc).__name__)

    def _served(self, service_type: ServiceType, project: str) -> bool:
        if service_type is ServiceType.KAFKA:
            return project in self._allowed
        return project == self._main_project


def edited_owned_keys(
    old: KubeObject, new: KubeObject, app_raw: KubeObject | None, allowed_projects: frozenset[str]
) -> tuple[str, ...]:
    """Data keys the operator owns in this Secret whose value someone else changed or removed
    between two versions (our own writes never show up here: they reach the cache first).

    Value edits are invisible to `needs_sync`, which looks at metadata and key names only; keys
    another controller added or edits are not ours and cause nothing."""
    if app_raw is None:
        return ()
    match parse_application(app_raw, allowed_projects):
        case Success(parsed):
            app = parsed.app
        case Failure(_):
            return ()
    name = ObjectMeta(new).name
    owned: set[str] = set()
    for handler, section in all_sections(app):
        if section.secret_name == name:
            owned |= handler.owned_data_keys(section) | COMMON_DATA_KEYS
    before, after = old.get("data") or {}, new.get("data") or {}
    return tuple(sorted(k for k in owned if k in before and after.get(k) != before[k]))


__all__ = ["OrphanSweeper", "SweepMetrics", "VerifyResult", "edited_owned_keys", "sweep_metrics"]
