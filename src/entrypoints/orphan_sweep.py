"""The orphan sweep shell: find (and, unless dry-run, delete) Aiven users nobody refers to.

Which services are looked at: every service a managed Secret names and every service a current
AivenApplication targets (Aiven has no "list services" in the operator's port, and these are
exactly the services the operator hands out users for). Decisions are
`domain.orphans.plan_orphan_sweep`; the first-seen table lives in memory, so after a restart
every user needs a full grace period again before it can be swept (errs towards sparing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from returns.result import Failure, Success

from domain.actions import DeleteServiceUser
from domain.facts import ServiceFacts, ServiceType
from domain.janitor import secret_view
from domain.orphans import SweepPlan, UserKey, plan_orphan_sweep
from domain.parse import parse_application
from domain.ports import AivenPort
from domain.services import all_sections, cleanup_actions
from domain.services.base import SecretMeta, ServiceConfig
from entrypoints.metrics import AivenObserver

KubeObject = dict[str, Any]
_ALTERNATIVES = 3


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
        log: Any,
    ) -> None:
        self._aiven = aiven
        self._observer = observer
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
        self._lock = threading.Lock()
        self._first_seen: dict[UserKey, datetime] = {}

    def run(self) -> SweepPlan | None:
        """One sweep; None when it must not run (caches not synced, not leader)."""
        if not self._synced() or not self._may_mutate():
            return None
        raw_secrets = list(self._secrets())
        views = [secret_view(s) for s in raw_secrets]
        services: dict[tuple[str, str], None] = {}
        for raw in raw_secrets:
            for action in cleanup_actions(SecretMeta.from_raw(raw)):
                if isinstance(action, DeleteServiceUser) and self._served(
                    action.service_type, action.project
                ):
                    services[(action.project, action.service)] = None
        expected: set[tuple[ServiceType, str]] = set()
        for raw in self._applications():
            match parse_application(raw, self._allowed):
                case Success(parsed):
                    app = parsed.app
                case Failure(_):
                    continue
            for handler, section in all_sections(app):
                for alternative in range(_ALTERNATIVES + 1):
                    expected.add((section.service_type, handler.username(app, section, alternative).name))
                target = handler.target(app, section, self._service_config)
                for candidate in target.candidates:
                    services[(target.project, candidate.service)] = None
        facts: list[ServiceFacts] = []
        for project, service in sorted(services):
            with self._observer.context(project, service):
                got = self._aiven.service(project, service)
            if isinstance(got, Success) and got.unwrap().usable:
                facts.append(got.unwrap())
        with self._lock:
            first_seen = dict(self._first_seen)
        plan = plan_orphan_sweep(facts, views, first_seen, self._now(), self._grace, self._dry_run, expected)
        with self._lock:
            self._first_seen = dict(plan.first_seen)
        for orphan in plan.delete:
            if not self._may_mutate():
                break
            with self._observer.context(orphan.project, orphan.service):
                result = self._aiven.delete_user(orphan.project, orphan.service, orphan.username)
            if isinstance(result, Success):
                self._log.info(
                    "orphan_user_deleted",
                    project=orphan.project,
                    aiven_service=orphan.service,
                    username=orphan.username,
                    reason=orphan.reason,
                )
            else:
                self._log.warning(
                    "orphan_user_delete_failed",
                    project=orphan.project,
                    aiven_service=orphan.service,
                    username=orphan.username,
                    error=type(result.failure()).__name__,
                )
        would = [s for s in plan.spared if str(s.reason) == "dry_run"]
        if plan.delete or would:
            self._log.info(
                "orphan_sweep", deleted=len(plan.delete), would_delete=len(would), services=len(facts)
            )
        return plan

    def _served(self, service_type: ServiceType, project: str) -> bool:
        if service_type is ServiceType.KAFKA:
            return project in self._allowed
        return project == self._main_project
