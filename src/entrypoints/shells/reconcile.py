"""Reconcile one AivenApplication: gather inputs, call the pure domain, apply the outputs.

Order of a pass (product spec sections 2-5):

1. read the application from the watch cache; parse it (invalid: status + Warning event, no
   retry loop: only a spec edit helps);
2. expired `expiresAt`: delete the application (uid precondition), nothing else;
3. `aivenator.domain.sync.needs_sync` over the cached Secrets (metadata and key names only) and the cached
   certificates' expiry: in the steady state the pass ends here, with no Aiven request and no
   Kubernetes write;
4. otherwise every service section independently: may this app write the section's Secret
   (`aivenator.domain.ownership.write_verdict`: another app's or an unmanaged Secret is refused
   with a `SecretConflict`, one being deleted is waited for; neither gets an Aiven user), required
   `aiven.io` object RUNNING in the app's own namespace, service facts, ensure user (Valkey access control corrected by the
   adapter), OpenSearch ACL, render + diff + create/patch the Secret with a resourceVersion
   precondition. A failing section does not stop the others;
5. compute the status; patch it only when it changed (`sync.status_changed`); a failed status
   write is retried like any other failed write; events (`sync.status_events`) only for condition
   transitions, and only once the status has landed.

Every mutation first asks `may_mutate()` (leader election): a replica that lost the Lease stops
mid-pass without writing.
"""

from __future__ import annotations

import secrets as _secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aivenator.adapters.redaction import redact_text
from aivenator.domain.application import AivenApplication
from aivenator.domain.expiry import is_expired, next_wakeup, worth_scheduling
from aivenator.domain.facts import AivenError, NotFound, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.janitor import SecretView, secret_view
from aivenator.domain.json_value import JsonValue
from aivenator.domain.kubernetes_port import (
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeObject,
    KubernetesPort,
    ObjectMeta,
    ObjectRef,
)
from aivenator.domain.names import choose_username
from aivenator.domain.outcomes import (
    Done,
    Invalid,
    Outcome,
    Retry,
    WaitFor,
    backoff,
    combine,
    outcome_for_aiven_error,
    outcome_for_kube_error,
)
from aivenator.domain.ownership import (
    CONFLICT_RECHECK_SECONDS,
    TERMINATING_RECHECK_SECONDS,
    OwnershipIndex,
    SecretRecord,
    WriteVerdict,
    secret_record,
    write_verdict,
)
from aivenator.domain.parse import parse_application
from aivenator.domain.ports import AivenPort
from aivenator.domain.secrets import Create, SectionInput, Unchanged, Update, diff, render_secret
from aivenator.domain.service_choice import LookUp, Use, gate_on_object, gate_on_service, no_usable_service
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import Section, ServiceConfig, ServiceHandler
from aivenator.domain.sync import (
    AppStatus,
    ServiceResult,
    ServiceState,
    cert_renewed,
    compute_invalid_status,
    compute_status,
    needs_sync,
    status_changed,
    status_events,
    status_from_dict,
    status_patch_body,
)
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.shells.certs import CertCache, is_slim
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from aivenator.entrypoints.shells.secret_records import secret_record_of
from returns.result import Failure, Result, Success
from structlog.typing import FilteringBoundLogger

API_VERSION = "aiven.nais.io/v1"
KIND = "AivenApplication"


class NotLeader(Exception):
    """Raised inside a pass when leadership was lost; the pass stops without writing."""


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    outcome: Outcome
    #: Seconds until this app must be looked at again (expiry, certificate renewal), if ever.
    wake_after: float | None = None
    #: A namespace whose janitor should run because this pass changed something there.
    janitor_namespace: str | None = None
    synced: bool = False
    writes: int = 0


@dataclass
class _Pass:
    """Mutable bookkeeping of one reconcile pass (never shared between threads)."""

    app: AivenApplication
    writes: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _SectionDone:
    result: ServiceResult
    outcome: Outcome


class Reconciler:
    def __init__(
        self,
        kube: KubernetesPort,
        aiven: AivenPort,
        config: OperatorConfig,
        metrics: Metrics,
        observer: AivenObserver,
        get_app: Callable[[str, str], KubeObject | None],
        get_secret: Callable[[str, str], KubeObject | None],
        remember_secret: Callable[[KubeObject], None],
        remember_app: Callable[[KubeObject], None],
        now: Callable[[], datetime],
        may_mutate: Callable[[], bool],
        log: FilteringBoundLogger,
        new_password: Callable[[], str] = lambda: _secrets.token_urlsafe(24),
        certs: CertCache | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        ownership: OwnershipIndex | None = None,
    ) -> None:
        self._kube = kube
        self._aiven = aiven
        self._config = config
        self._metrics = metrics
        self._observer = observer
        self._get_app = get_app
        self._get_secret = get_secret
        self._remember_secret = remember_secret
        self._remember_app = remember_app
        self._now = now
        self._may_mutate = may_mutate
        self._log = log
        self._new_password = new_password
        self._certs = certs if certs is not None else CertCache()
        self._monotonic = monotonic
        #: Ownership of the managed Secrets, kept from the Secret watch (never scanned per pass).
        self._ownership = ownership if ownership is not None else OwnershipIndex()
        self._allowed = frozenset(config.projects)
        self._service_config = ServiceConfig(main_project=config.main_project)
        self._window = timedelta(seconds=config.cert_renewal_window)

    # --- entry point --------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str, attempt: int = 0) -> ReconcileResult:
        raw = self._get_app(namespace, name)
        if raw is None:
            return ReconcileResult(Done())
        log = self._log.bind(namespace=namespace, aiven_application=name)
        try:
            return self._reconcile(raw, attempt, log)
        except NotLeader:
            log.info("reconcile_stopped_not_leader")
            return ReconcileResult(Done())

    def _guard(self) -> None:
        if not self._may_mutate():
            raise NotLeader()

    def _reconcile(self, raw: KubeObject, attempt: int, log: FilteringBoundLogger) -> ReconcileResult:
        now = self._now()
        meta = ObjectMeta(raw)
        namespace = meta.namespace
        previous = status_from_dict(raw.get("status"))
        match parse_application(raw, self._allowed):
            case Failure(invalid):
                problems = tuple(f"{p.field}: {p.message}" for p in invalid.problems)
                gen = meta.generation or 0
                status = compute_invalid_status(gen, problems, now, previous)
                writes, failed = self._write_status(raw, previous, status, attempt, log)
                log.warning("aiven_application_invalid", problems=list(problems))
                self._metrics.applications_processed.labels(synchronization_state="RolloutFailed").inc()
                # Only a spec edit helps, but the status saying so must land first.
                return ReconcileResult(failed or Invalid("; ".join(problems)), writes=writes)
            case Success(parsed):
                app = parsed.app
        if app.deletion_requested:
            return ReconcileResult(Done())
        if is_expired(app, now):
            return self._delete_expired(app, log)

        secret_views, cert_expiry = self._cached_secrets(app)
        reason = needs_sync(app, secret_views, now, cert_expiry, self._window)
        wake = self._wake_after(app, now, cert_expiry)
        if reason is None:
            self._record_cert_days(app, cert_expiry, now)
            return ReconcileResult(Done(), wake_after=wake)

        self._metrics.processing_reason.labels(processing_reason=reason.processing_reason).inc()
        log = log.bind(sync_reason=str(reason.kind))
        log.info("aiven_application_sync_started", detail=redact_text(reason.detail))
        run = _Pass(app)
        results: list[ServiceResult] = []
        for handler, section in all_sections(app):
            started = self._monotonic()
            done = self._sync_section(run, handler, section, now, attempt, cert_expiry, log)
            self._metrics.handler_processing_time.labels(handler=str(section.service_type)).observe(
                max(0.0, self._monotonic() - started)
            )
            results.append(done.result)
            run.outcomes.append(done.outcome)
        status = compute_status(app, results, now, previous)
        written, failed = self._write_status(raw, previous, status, attempt, log)
        run.writes += written
        if failed is not None:
            run.outcomes.append(failed)
        state = status.synchronization_state or "Unknown"
        self._metrics.applications_processed.labels(synchronization_state=state).inc()
        outcome = combine(run.outcomes)
        log.info("aiven_application_synced", state=state, writes=run.writes, outcome=type(outcome).__name__)
        _, new_expiry = self._cached_secrets(app)
        self._record_cert_days(app, new_expiry, now)
        return ReconcileResult(
            outcome,
            wake_after=self._wake_after(app, now, new_expiry),
            janitor_namespace=namespace,
            synced=True,
            writes=run.writes,
        )

    # --- inputs -------------------------------------------------------------------------------

    def _cached_secrets(
        self, app: AivenApplication
    ) -> tuple[dict[str, SecretView | None], dict[str, datetime]]:
        views: dict[str, SecretView | None] = {}
        expiry: dict[str, datetime] = {}
        for _, section in all_sections(app):
            raw = self._get_secret(app.namespace, section.secret_name)
            views[section.secret_name] = secret_view(raw) if raw is not None else None
            if raw is not None and section.service_type is ServiceType.KAFKA:
                not_after = self._certs.not_after(raw)
                if not_after is not None:
                    expiry[section.secret_name] = not_after
        return views, expiry

    def _wake_after(
        self, app: AivenApplication, now: datetime, cert_expiry: dict[str, datetime]
    ) -> float | None:
        moment = worth_scheduling(
            next_wakeup([app], now, cert_expiry, self._window), now, timedelta(seconds=self._config.sync_period)
        )
        if moment is None:
            return None
        return max(0.0, (moment - now).total_seconds())

    def _record_cert_days(
        self, app: AivenApplication, cert_expiry: dict[str, datetime], now: datetime
    ) -> None:
        if cert_expiry:
            soonest = min(cert_expiry.values())
            self._metrics.cert_days_left.labels(namespace=app.namespace, aiven_application=app.name).set(
                (soonest - now).total_seconds() / 86400.0
            )

    # --- one section --------------------------------------------------------------------------

    def _sync_section(
        self,
        run: _Pass,
        handler: ServiceHandler,
        section: Section,
        now: datetime,
        attempt: int,
        cert_expiry: dict[str, datetime],
        log: FilteringBoundLogger,
    ) -> _SectionDone:
        app = run.app
        stype = section.service_type
        instance = section.instance
        log = log.bind(service=str(stype), secret_name=section.secret_name)

        def fail(state: ServiceState, outcome: Outcome, message: str) -> _SectionDone:
            clean = redact_text(message)
            log.warning("service_section_failed", state=str(state), reason=clean)
            return _SectionDone(ServiceResult(stype, state, instance, clean), outcome)

        def aiven_fail(error: AivenError, what: str) -> _SectionDone:
            outcome = outcome_for_aiven_error(error, attempt, what)
            state = ServiceState.WAITING if isinstance(outcome, WaitFor) else ServiceState.AIVEN_FAILURE
            if isinstance(error, NotFound):
                state = ServiceState.WAITING
            return fail(state, outcome, f"{what}: {error.message}")

        verdict = self._verdict(app, section)
        match verdict:
            case Failure(kerr):
                return fail(
                    ServiceState.LOCAL_FAILURE,
                    outcome_for_kube_error(kerr, attempt, f"Secret {section.secret_name}"),
                    f"reading Secret {section.secret_name}: {type(kerr).__name__}",
                )
            case Success(WriteVerdict(may_write=False) as refused):
                return self._refuse(app, section, refused, log)

        target = handler.target(app, section, self._service_config)
        facts: ServiceFacts | None = None
        waiting: list[str] = []
        for candidate in target.candidates:
            required = candidate.required_object
            if required is not None:
                match self._kube.aiven_object_state(required.kind, app.namespace, required.name):
                    case Failure(kerr):
                        return fail(
                            ServiceState.LOCAL_FAILURE,
                            outcome_for_kube_error(kerr, attempt, required.kind),
                            f"reading {required.kind} {required.name}: {type(kerr).__name__}",
                        )
                    case Success(object_state):
                        gate = gate_on_object(candidate, app.namespace, object_state)
                        if not isinstance(gate, LookUp):
                            waiting.extend([gate.waiting] if gate.waiting else [])
                            continue
            with self._observer.context(target.project, candidate.service):
                got = self._aiven.service(target.project, candidate.service)
            match got:
                case Failure(NotFound()):
                    found: ServiceFacts | None = None
                case Failure(error):
                    return aiven_fail(error, f"service {candidate.service} in project {target.project}")
                case Success(found):
                    pass
            chosen = gate_on_service(found)
            if isinstance(chosen, Use):
                facts = chosen.facts
                break
            waiting.extend([chosen.waiting] if chosen.waiting else [])
        if facts is None:
            what = no_usable_service(target, app.namespace, waiting)
            return _SectionDone(ServiceResult(stype, ServiceState.WAITING, instance, what), WaitFor(what))
        # O(1) per application: the adapter keeps the per-convention counts (rule:
        # names.username_convention) in step with the service's known users.
        for convention, count in self._aiven.users_by_convention(facts.project, facts.name).items():
            self._metrics.service_users_count.labels(
                pool=facts.project, service=facts.name, username_convention=convention
            ).set(count)

        choice = choose_username(
            stype,
            app.namespace,
            app.name,
            app.generation,
            section.access,
            self._ownership.taken_by_others(facts.project, facts.name, (app.namespace, section.secret_name)),
            self._ownership.recorded_by(facts.project, facts.name, (app.namespace, section.secret_name)),
        )
        if choice is None:
            message = f"every candidate user name on {facts.name} belongs to another application"
            return fail(ServiceState.LOCAL_FAILURE, Retry(max(300.0, backoff(attempt)), message), message)
        username = choice.name
        is_new = username not in self._aiven.known_users(facts.project, facts.name)
        self._guard()
        with self._observer.context(facts.project, facts.name):
            ensured = self._aiven.ensure_user(
                facts.project, facts.name, username, handler.access_control(section)
            )
        match ensured:
            case Failure(error):
                return aiven_fail(error, f"user {username} on {facts.name}")
            case Success(user):
                pass
        if is_new:
            log.info(
                "service_user_created", username=username, project=facts.project, aiven_service=facts.name
            )
        rules = handler.acl_rules(section)
        if rules:
            self._guard()
            with self._observer.context(facts.project, facts.name):
                put = self._aiven.put_user_rules(facts.project, facts.name, username, rules)
            if isinstance(put, Failure):
                return aiven_fail(put.failure(), f"OpenSearch ACL of {username} on {facts.name}")
        match self._aiven.project_ca(facts.project):
            case Failure(error):
                return aiven_fail(error, f"CA of project {facts.project}")
            case Success(project_ca):
                pass
        main_ca = project_ca
        if facts.project != self._config.main_project:
            match self._aiven.project_ca(self._config.main_project):
                case Failure(error):
                    return aiven_fail(error, f"CA of project {self._config.main_project}")
                case Success(main_ca):
                    pass

        written = self._write_secret(
            run, SectionInput(section, facts, user, project_ca), now, main_ca, attempt, log
        )
        if written is not None:
            return written
        renewed = stype is ServiceType.KAFKA and cert_renewed(
            cert_expiry.get(section.secret_name), _cert_expiry_of(user), now, self._window
        )
        return _SectionDone(
            ServiceResult(
                stype,
                ServiceState.READY,
                instance,
                "",
                name_note="" if choice.compatible else choice.reason,
                cert_not_valid_after=_cert_expiry_of(user),
                cert_renewed=renewed,
            ),
            Done(),
        )

    def _verdict(self, app: AivenApplication, section: Section) -> Result[WriteVerdict, KubeError]:
        """May this app write the section's Secret? (`secret_record_of`: the index, else one read.)"""
        return secret_record_of(self._ownership, self._kube, app.namespace, section.secret_name).map(
            lambda record: self._judge(app, section, record)
        )

    def _judge(self, app: AivenApplication, section: Section, record: SecretRecord | None) -> WriteVerdict:
        owner = record.app if record is not None else ""
        owner_exists = not owner or owner == app.name or self._get_app(app.namespace, owner) is not None
        return write_verdict(app.namespace, app.name, section.secret_name, record, owner_exists)

    def _refuse(
        self, app: AivenApplication, section: Section, verdict: WriteVerdict, log: FilteringBoundLogger
    ) -> _SectionDone:
        """A section whose Secret is not ours to write: no Aiven user, no write. A conflict is
        reported (condition + Warning event via the status) and rechecked; a Secret being
        deleted is waited for and then created afresh."""
        stype, instance = section.service_type, section.instance
        message = verdict.message
        if verdict.conflict:
            log.warning("secret_conflict", owner=verdict.owner, verdict=str(verdict.kind))
            return _SectionDone(
                ServiceResult(stype, ServiceState.SECRET_CONFLICT, instance, message),
                WaitFor(message, after=CONFLICT_RECHECK_SECONDS),
            )
        log.info("secret_terminating_wait")
        return _SectionDone(
            ServiceResult(stype, ServiceState.WAITING, instance, message),
            WaitFor(message, after=TERMINATING_RECHECK_SECONDS),
        )

    def _write_secret(
        self,
        run: _Pass,
        inp: SectionInput,
        now: datetime,
        main_ca: str,
        attempt: int,
        log: FilteringBoundLogger,
    ) -> _SectionDone | None:
        """Create or patch the section's Secret; None on success, else the failed section."""
        app, section = run.app, inp.section
        stype, instance = section.service_type, section.instance
        existing = self._get_secret(app.namespace, section.secret_name)
        if existing is not None and is_slim(existing):
            # The cache keeps no values: this pass may write, so read the Secret in full.
            match self._kube.get_secret(app.namespace, section.secret_name):
                case Success(full):
                    existing = full
                case Failure(KubeNotFound()):
                    existing = None
                case Failure(kerr):
                    return self._kube_failed(stype, instance, kerr, attempt, section.secret_name, log)
        for _ in range(2):
            rendered = render_secret(app, inp, existing, now, self._new_password(), main_ca)
            if isinstance(rendered, Failure):
                message = redact_text(rendered.failure().message)
                log.warning("secret_render_failed", reason=message)
                return _SectionDone(
                    ServiceResult(stype, ServiceState.LOCAL_FAILURE, instance, message),
                    Retry(backoff(attempt), message),
                )
            desired = rendered.unwrap()
            change = diff(desired, existing)
            match change:
                case Unchanged():
                    self._metrics.kubernetes_resources_not_written.labels(
                        resource_type="Secret", namespace=app.namespace
                    ).inc()
                    return None
                case Create(body=body):
                    self._guard()
                    created = self._kube.create_secret(body)
                    match created:
                        case Success(obj):
                            self._wrote(run, obj, "created", log)
                            return None
                        case Failure(KubeAlreadyExists()):
                            # Created meanwhile by someone else: read it, and write into it on
                            # the second round only if it is ours to write.
                            match self._kube.get_secret(app.namespace, section.secret_name):
                                case Success(found):
                                    verdict = self._judge(app, section, secret_record(found))
                                    if not verdict.may_write:
                                        return self._refuse(app, section, verdict, log)
                                    existing = found
                                    continue
                                case Failure(kerr):
                                    return self._kube_failed(
                                        stype, instance, kerr, attempt, section.secret_name, log
                                    )
                        case Failure(kerr):
                            return self._kube_failed(stype, instance, kerr, attempt, section.secret_name, log)
                case Update(patch=patch):
                    self._guard()
                    rv = ObjectMeta(existing).resource_version or None
                    patched = self._kube.patch_secret(app.namespace, section.secret_name, patch, rv)
                    match patched:
                        case Success(obj):
                            self._wrote(run, obj, "patched", log)
                            return None
                        case Failure(kerr):
                            return self._kube_failed(stype, instance, kerr, attempt, section.secret_name, log)
        return self._kube_failed(
            stype, instance, KubeConflict("changed while writing"), attempt, section.secret_name, log
        )

    def _wrote(self, run: _Pass, obj: KubeObject, verb: str, log: FilteringBoundLogger) -> None:
        run.writes += 1
        self._remember_secret(obj)
        namespace = ObjectMeta(obj).namespace
        self._metrics.kubernetes_resources_written.labels(resource_type="Secret", namespace=namespace).inc()
        log.info("secret_written", verb=verb)

    def _kube_failed(
        self,
        stype: ServiceType,
        instance: str,
        error: KubeError,
        attempt: int,
        secret_name: str,
        log: FilteringBoundLogger,
    ) -> _SectionDone:
        outcome = outcome_for_kube_error(error, attempt, f"Secret {secret_name}")
        message = redact_text(
            f"writing Secret {secret_name}: {type(error).__name__} {getattr(error, 'message', '')}".strip()
        )
        log.warning("secret_write_failed", reason=message)
        return _SectionDone(ServiceResult(stype, ServiceState.LOCAL_FAILURE, instance, message), outcome)

    # --- outputs --------------------------------------------------------------------------------

    def _write_status(
        self, raw: KubeObject, previous: AppStatus, status: AppStatus, attempt: int, log: FilteringBoundLogger
    ) -> tuple[int, Outcome | None]:
        """Patch the status if it changed; (writes, None) or (0, the retry) when the patch failed.
        Transition events are recorded only after the status landed, so a retried write emits
        them exactly once."""
        had_status = isinstance(raw.get("status"), dict) and bool(raw.get("status"))
        old = previous if had_status else None
        meta = ObjectMeta(raw)
        namespace, name = meta.namespace, meta.name
        if not status_changed(old, status):
            self._metrics.kubernetes_resources_not_written.labels(
                resource_type="AivenApplication", namespace=namespace
            ).inc()
            return 0, None
        self._guard()
        body = _status_body(status)
        match self._kube.patch_application_status(namespace, name, body):
            case Success(obj):
                self._remember_app(obj)
                self._metrics.kubernetes_resources_written.labels(
                    resource_type="AivenApplication", namespace=namespace
                ).inc()
            case Failure(KubeNotFound()):
                return 0, None  # the application is gone: nothing to report to
            case Failure(kerr):
                log.warning("status_write_failed", error=type(kerr).__name__)
                return 0, outcome_for_kube_error(kerr, attempt, f"status of AivenApplication {name}")
        ref = ObjectRef(API_VERSION, KIND, namespace, name, meta.uid)
        for event in status_events(old, status):
            self._kube.record_event(ref, event.type, event.reason, redact_text(event.message))
        return 1, None

    def _delete_expired(self, app: AivenApplication, log: FilteringBoundLogger) -> ReconcileResult:
        self._guard()
        match self._kube.delete_application(app.namespace, app.name, uid=app.uid or None):
            case Success(_) | Failure(KubeNotFound()):
                log.info("aiven_application_expired_deleted", expires_at=str(app.expires_at))
                self._metrics.kubernetes_resources_deleted.labels(
                    resource_type="AivenApplication", namespace=app.namespace
                ).inc()
                return ReconcileResult(Done(), janitor_namespace=app.namespace, writes=1)
            case Failure(kerr):
                return ReconcileResult(outcome_for_kube_error(kerr, 0, "AivenApplication delete"))
        raise AssertionError("unreachable")  # pragma: no cover


def _status_body(status: AppStatus) -> dict[str, JsonValue]:
    body: dict[str, JsonValue] = status_patch_body(status)["status"]
    return body


def _cert_expiry_of(user: ServiceUser) -> datetime | None:
    value = user.cert_not_valid_after
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


__all__ = ["NotLeader", "ReconcileResult", "Reconciler"]
