"""Reconcile one AivenApplication: gather inputs, call the pure domain, apply the outputs.

Order of a pass (product spec sections 2-5):

1. read the application from the watch cache; parse it (invalid: status + Warning event, no
   retry loop: only a spec edit helps);
2. expired `expiresAt`: delete the application (uid precondition), nothing else;
3. `aivenator.domain.sync.needs_sync` over the cached Secrets (metadata and key names only) and the cached
   certificates' expiry: in the steady state the pass ends here, with no Aiven request and no
   Kubernetes write;
4. otherwise every service section independently: required `aiven.io` object RUNNING in the
   app's own namespace, service facts, ensure user (Valkey access control corrected by the
   adapter), OpenSearch ACL, render + diff + create/patch the Secret with a resourceVersion
   precondition. A failing section does not stop the others;
5. compute the status; patch it only when it changed; events only for condition transitions.

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
from aivenator.domain.actions import DeleteServiceUser
from aivenator.domain.application import AivenApplication
from aivenator.domain.expiry import next_wakeup
from aivenator.domain.facts import AivenError, NotFound, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.janitor import SecretView, secret_view
from aivenator.domain.kubernetes_port import (
    KubeAlreadyExists,
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeObject,
    KubernetesPort,
    KubeUnavailable,
    ObjectMeta,
    ObjectRef,
)
from aivenator.domain.names import NameChoice, count_by_convention
from aivenator.domain.outcomes import (
    Done,
    Invalid,
    Outcome,
    Retry,
    WaitFor,
    backoff,
    combine,
    outcome_for_aiven_error,
)
from aivenator.domain.parse import parse_application
from aivenator.domain.ports import AivenPort
from aivenator.domain.secrets import Create, SectionInput, Unchanged, Update, diff, render_secret
from aivenator.domain.services import all_sections, cleanup_actions
from aivenator.domain.services.base import SecretMeta, Section, ServiceConfig, ServiceHandler
from aivenator.domain.sync import (
    AppStatus,
    ServiceResult,
    ServiceState,
    compute_invalid_status,
    compute_status,
    needs_sync,
    status_events,
    status_from_dict,
    status_patch_body,
)
from aivenator.entrypoints.config import OperatorConfig
from aivenator.entrypoints.shells.certs import CertCache, is_slim
from aivenator.entrypoints.shells.metrics import AivenObserver, Metrics
from returns.result import Failure, Success
from structlog.typing import FilteringBoundLogger

API_VERSION = "aiven.nais.io/v1"
KIND = "AivenApplication"
#: Collision variants tried after the compatible user name.
_NAME_ALTERNATIVES = 3


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


def kube_outcome(error: KubeError, attempt: int, what: str) -> Outcome:
    """What to do after a Kubernetes error (classified once by the adapter)."""
    match error:
        case KubeConflict() | KubeAlreadyExists():
            return Retry(min(backoff(attempt, base=0.2), 5.0), f"conflict writing {what}; read again")
        case KubeUnavailable(retry_after=retry_after):
            delay = backoff(attempt) if retry_after is None else max(retry_after, backoff(attempt))
            return Retry(delay, f"Kubernetes unavailable: {what}")
        case KubeForbidden():
            return Retry(600.0, f"forbidden: {what}")
        case KubeInvalid(message=message):
            return Retry(max(60.0, backoff(attempt)), f"rejected by Kubernetes: {what}: {message}")
        case _:
            return Retry(backoff(attempt), f"Kubernetes error on {what}: {type(error).__name__}")


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
        all_secrets: Callable[[], list[KubeObject]] = list,
        monotonic: Callable[[], float] = time.monotonic,
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
        self._all_secrets = all_secrets
        self._monotonic = monotonic
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
                writes = self._write_status(raw, previous, status, log)
                log.warning("aiven_application_invalid", problems=list(problems))
                self._metrics.applications_processed.labels(synchronization_state="RolloutFailed").inc()
                return ReconcileResult(Invalid("; ".join(problems)), writes=writes)
            case Success(parsed):
                app = parsed.app
        if app.deletion_requested:
            return ReconcileResult(Done())
        if app.expires_at is not None and app.expires_at <= now:
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
        run.writes += self._write_status(raw, previous, status, log)
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
        moment = next_wakeup([app], now, cert_expiry, self._window)
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
                            kube_outcome(kerr, attempt, required.kind),
                            f"reading {required.kind} {required.name}: {type(kerr).__name__}",
                        )
                    case Success(None):
                        continue
                    case Success(state) if state != "RUNNING":
                        waiting.append(
                            f"{required.kind} {required.name} in namespace {app.namespace} is {state or 'not reporting a state'}"
                        )
                        continue
            with self._observer.context(target.project, candidate.service):
                got = self._aiven.service(target.project, candidate.service)
            match got:
                case Failure(NotFound()):
                    continue
                case Failure(error):
                    return aiven_fail(error, f"service {candidate.service} in project {target.project}")
                case Success(found):
                    if not found.usable:
                        waiting.append(f"Aiven service {found.name} is {found.state}")
                        continue
                    facts = found
                    break
        if facts is None:
            if waiting:
                what = "; ".join(waiting)
            else:
                names = ", ".join(c.service for c in target.candidates)
                kinds = {c.required_object.kind for c in target.candidates if c.required_object is not None}
                where = f" ({'/'.join(sorted(kinds))} object in namespace {app.namespace})" if kinds else ""
                what = f"no usable {stype} service {names} in project {target.project}{where}"
            return _SectionDone(ServiceResult(stype, ServiceState.WAITING, instance, what), WaitFor(what))
        for convention, count in count_by_convention(facts.usernames).items():
            self._metrics.service_users_count.labels(
                pool=facts.project, service=facts.name, username_convention=convention
            ).set(count)

        choice = self._choose_username(app, handler, section, facts)
        if choice is None:
            message = f"every candidate user name on {facts.name} belongs to another application"
            return fail(ServiceState.LOCAL_FAILURE, Retry(max(300.0, backoff(attempt)), message), message)
        username = choice.name
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
        if username not in facts.usernames:
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
        renewed = (
            stype is ServiceType.KAFKA
            and section.secret_name in cert_expiry
            and cert_expiry[section.secret_name] - self._window <= now
            and user.cert_not_valid_after is not None
            and user.cert_not_valid_after != cert_expiry[section.secret_name]
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

    def _choose_username(
        self, app: AivenApplication, handler: ServiceHandler, section: Section, facts: ServiceFacts
    ) -> NameChoice | None:
        """The compatible name, or the first collision variant no other application's Secret
        records for this service. Ownership comes from the managed Secrets (the record of who
        got which user), not from Aiven: a user this app created in a pass that failed before
        writing its Secret is still this app's, and is adopted rather than orphaned."""
        primary = handler.username(app, section)
        taken = self._taken_by_others(app, section.secret_name, facts.project, facts.name)
        if primary.name not in taken:
            return primary
        for alternative in range(1, _NAME_ALTERNATIVES + 1):
            variant = handler.username(app, section, alternative)
            if variant.name not in taken:
                reason = f"user name {primary.name} belongs to another application; using alternative {alternative}"
                return NameChoice(variant.name, False, reason)
        return None

    def _taken_by_others(
        self, app: AivenApplication, secret_name: str, project: str, service: str
    ) -> frozenset[str]:
        """Users any managed Secret other than this section's own records. Other Secrets of the
        same application count too: a re-created application starts again at generation 1 and
        would otherwise share its predecessor's user with a Secret that was kept (protected or
        in use), whose deletion would then delete the user the new Secret relies on."""
        taken: set[str] = set()
        for raw in self._all_secrets():
            meta = ObjectMeta(raw)
            if (meta.namespace, meta.name) == (
                app.namespace,
                secret_name,
            ):
                continue
            for action in cleanup_actions(SecretMeta.from_raw(raw)):
                if isinstance(action, DeleteServiceUser) and (action.project, action.service) == (
                    project,
                    service,
                ):
                    taken.add(action.username)
        return frozenset(taken)

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
                            # Not in our cache (for example not yet labelled as ours): read it
                            # and merge our keys into it on the second round.
                            match self._kube.get_secret(app.namespace, section.secret_name):
                                case Success(found):
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
        outcome = kube_outcome(error, attempt, f"Secret {secret_name}")
        message = redact_text(
            f"writing Secret {secret_name}: {type(error).__name__} {getattr(error, 'message', '')}".strip()
        )
        log.warning("secret_write_failed", reason=message)
        return _SectionDone(ServiceResult(stype, ServiceState.LOCAL_FAILURE, instance, message), outcome)

    # --- outputs --------------------------------------------------------------------------------

    def _write_status(
        self, raw: KubeObject, previous: AppStatus, status: AppStatus, log: FilteringBoundLogger
    ) -> int:
        had_status = isinstance(raw.get("status"), dict) and bool(raw.get("status"))
        meta = ObjectMeta(raw)
        namespace, name = meta.namespace, meta.name
        if had_status and previous == status:
            self._metrics.kubernetes_resources_not_written.labels(
                resource_type="AivenApplication", namespace=namespace
            ).inc()
            return 0
        self._guard()
        body = _status_body(status)
        match self._kube.patch_application_status(namespace, name, body):
            case Success(obj):
                self._remember_app(obj)
                self._metrics.kubernetes_resources_written.labels(
                    resource_type="AivenApplication", namespace=namespace
                ).inc()
            case Failure(KubeNotFound()):
                return 0
            case Failure(kerr):
                log.warning("status_write_failed", error=type(kerr).__name__)
                return 0
        ref = ObjectRef(API_VERSION, KIND, namespace, name, meta.uid)
        for event in status_events(previous if had_status else None, status):
            self._kube.record_event(ref, event.type, event.reason, redact_text(event.message))
        return 1

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
                return ReconcileResult(kube_outcome(kerr, 0, "AivenApplication delete"))
        raise AssertionError("unreachable")  # pragma: no cover


def _status_body(status: AppStatus) -> dict[str, object]:
    body: dict[str, object] = status_patch_body(status)["status"]
    return body


def _cert_expiry_of(user: ServiceUser) -> datetime | None:
    value = user.cert_not_valid_after
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


__all__ = ["NotLeader", "ReconcileResult", "Reconciler", "kube_outcome"]
