"""The `aivenator audit` report: a read-only health check of managed Secrets and Aiven users.

A purely computational module. The shell (`aivenator.entrypoints.cli.cmd_audit`) lists managed Secrets,
AivenApplications and workload references, asks Aiven about the services those name (plus the
Kafka services of the allowed projects), reads Kafka certificate expiry from the Secrets, and
calls `build_report`. The janitor's and the orphan sweep's own planners make the decisions, so
the audit says exactly what the operator would do:

- every managed Secret, what refers to it, and the janitor's verdict (`aivenator.domain.janitor`);
- Secrets the janitor would delete now, and why;
- Aiven users in the managed services that match our naming scheme but that no managed Secret
  names and no current application expects (`aivenator.domain.orphans`, as a dry run with no grace);
- service users per service against a limit;
- Kafka client certificates expiring within a window, with their namespace and application;
- AivenApplications failing to synchronize (invalid spec, RolloutFailed, failure conditions).

`exceeded` compares the problem counts with thresholds; the shell exits non-zero if any is
exceeded. Nothing here carries a credential: Secrets enter as `SecretView` (key names only).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aivenator.domain import labels
from aivenator.domain.actions import DeleteServiceUser
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceFacts, ServiceType
from aivenator.domain.finalizer import requested_actions
from aivenator.domain.janitor import (
    AppSecretRefs,
    Deletion,
    SecretView,
    app_secret_refs_from_raw,
    plan_cleanup,
)
from aivenator.domain.names import choose_username
from aivenator.domain.orphans import SpareReason, UserKey, plan_orphan_sweep
from aivenator.domain.parse import parse_application
from aivenator.domain.references import WorkloadRefs
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import Section, ServiceConfig
from aivenator.domain.services.kafka import service_candidates
from aivenator.domain.sync import AIVEN_FAILURE, LOCAL_FAILURE, READY, status_from_dict
from returns.result import Failure, Success

#: Problem categories, in report order; each has a threshold.
CATEGORIES = (
    "garbage_secrets",
    "orphaned_users",
    "services_near_limit",
    "expiring_certificates",
    "failing_apps",
)

#: Alternatives beyond the primary name that count as "expected" for an application.
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, order=True)
class ServiceRef:
    """An Aiven service the audit must look at."""

    project: str
    service: str
    service_type: ServiceType


@dataclass(frozen=True, slots=True)
class ServiceLookupError:
    """A service the shell could not read (other than "does not exist"): the report is partial."""

    ref: ServiceRef
    message: str


@dataclass(frozen=True, slots=True)
class KafkaCert:
    """The client certificate found in a managed Kafka Secret (`None`: missing or unreadable)."""

    namespace: str
    secret_name: str
    not_after: datetime | None


@dataclass(frozen=True, slots=True)
class AuditOptions:
    allowed_projects: frozenset[str]
    main_project: str
    grace_period: timedelta = timedelta(minutes=5)
    user_limit: int = 1000
    user_limit_ratio: float = 0.8
    cert_window: timedelta = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class AuditInput:
    now: datetime
    secrets: Sequence[SecretView]
    applications: Sequence[Mapping[str, object]]
    workloads: Sequence[WorkloadRefs]
    services: Sequence[ServiceFacts]
    lookup_errors: Sequence[ServiceLookupError] = ()
    kafka_certs: Sequence[KafkaCert] = ()


# --- report rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagedSecret:
    namespace: str
    name: str
    app: str
    services: tuple[str, ...]
    referenced_by: tuple[str, ...]
    protected: bool
    verdict: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GarbageSecret:
    namespace: str
    name: str
    app: str
    reason: str
    age: str


@dataclass(frozen=True, slots=True)
class OrphanedUser:
    project: str
    service: str
    service_type: str
    username: str


@dataclass(frozen=True, slots=True)
class ServiceUsage:
    project: str
    service: str
    service_type: str
    users: int
    limit: int
    near_limit: bool


@dataclass(frozen=True, slots=True)
class ExpiringCert:
    namespace: str
    secret_name: str
    app: str
    not_after: str
    days_left: float


@dataclass(frozen=True, slots=True)
class FailingApp:
    namespace: str
    name: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditReport:
    generated_at: str
    managed_secrets: tuple[ManagedSecret, ...]
    garbage_secrets: tuple[GarbageSecret, ...]
    orphaned_users: tuple[OrphanedUser, ...]
    service_usage: tuple[ServiceUsage, ...]
    expiring_certificates: tuple[ExpiringCert, ...]
    failing_apps: tuple[FailingApp, ...]
    warnings: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    def problem_counts(self) -> dict[str, int]:
        return {
            "garbage_secrets": len(self.garbage_secrets),
            "orphaned_users": len(self.orphaned_users),
            "services_near_limit": sum(1 for s in self.service_usage if s.near_limit),
            "expiring_certificates": len(self.expiring_certificates),
            "failing_apps": len(self.failing_apps),
        }


# --- which services to look at --------------------------------------------------------------------


def parsed_applications(
    raw_apps: Iterable[Mapping[str, object]], allowed_projects: frozenset[str]
) -> tuple[list[AivenApplication], list[tuple[Mapping[str, object], tuple[str, ...]]]]:
    """Applications that parse, and the others with their problems (one line each)."""
    good: list[AivenApplication] = []
    bad: list[tuple[Mapping[str, object], tuple[str, ...]]] = []
    for raw in raw_apps:
        match parse_application(raw, allowed_projects):
            case Success(parsed):
                good.append(parsed.app)
            case Failure(invalid):
                bad.append((raw, tuple(str(p) for p in invalid.problems)))
    return good, bad


def services_to_inspect(
    raw_apps: Iterable[Mapping[str, object]], secrets: Iterable[SecretView], options: AuditOptions
) -> tuple[ServiceRef, ...]:
    """Kafka services of every allowed project, every service an application's sections may use,
    and every service a managed Secret's annotations name (deduplicated, sorted)."""
    refs: set[ServiceRef] = set()
    for project in options.allowed_projects:
        refs.update(ServiceRef(project, name, ServiceType.KAFKA) for name in service_candidates(project))
    apps, _ = parsed_applications(raw_apps, options.allowed_projects)
    config = ServiceConfig(options.main_project)
    for app in apps:
        for handler, section in all_sections(app):
            target = handler.target(app, section, config)
            refs.update(ServiceRef(target.project, c.service, target.service_type) for c in target.candidates)
    for secret in secrets:
        if not secret.managed:
            continue
        for action in requested_actions(secret):
            if isinstance(action, DeleteServiceUser):
                refs.add(ServiceRef(action.project, action.service, action.service_type))
    return tuple(sorted(refs))


#: A section's view of the names other Secrets record on one service: (project, service, the
#: section's own Secret as (namespace, name)) -> a container of user names.
TakenByOthers = Callable[[str, str, tuple[str, str]], Container[str]]


def expected_users(
    apps: Iterable[AivenApplication],
    config: ServiceConfig,
    taken_by_others: TakenByOthers,
    recorded_by: TakenByOthers,
    may_provision: Callable[[AivenApplication, Section], bool] | None = None,
) -> frozenset[UserKey]:
    """The users current applications use or are about to use: for every section, on every
    service its target may use, the one name the reconcile chooses there
    (`aivenator.domain.names.choose_username`; `recorded_by`: the names the section's own Secret
    records there). Other variants, and names on other services, are not expected: such a user
    that no Secret records (one a crashed pass created under a variant before the compatible
    name was freed, say) is an orphan.

    `may_provision(app, section)`: whether the section's Secret is the app's to write
    (`aivenator.domain.ownership.write_verdict`); a refused section expects no user, so one a
    crashed pass created before the conflict arose is swept instead of kept forever."""
    out: set[UserKey] = set()
    for app in apps:
        for handler, section in all_sections(app):
            if may_provision is not None and not may_provision(app, section):
                continue
            target = handler.target(app, section, config)
            own = (app.namespace, section.secret_name)
            for candidate in target.candidates:
                choice = choose_username(
                    section.service_type,
                    app.namespace,
                    app.name,
                    app.generation,
                    section.access,
                    taken_by_others(target.project, candidate.service, own),
                    recorded_by(target.project, candidate.service, own),
                )
                if choice is not None:
                    out.add(UserKey(target.project, candidate.service, choice.name))
    return frozenset(out)


def recorded_users(secrets: Iterable[SecretView]) -> tuple[TakenByOthers, TakenByOthers]:
    """`(taken_by_others, recorded_by)` over a list of managed Secrets (the audit's; the operator
    keeps the same facts in its `aivenator.domain.ownership.OwnershipIndex`)."""
    holders: dict[tuple[str, str], dict[str, set[tuple[str, str]]]] = {}
    for secret in secrets:
        for action in requested_actions(secret):
            if isinstance(action, DeleteServiceUser):
                users = holders.setdefault((action.project, action.service), {})
                users.setdefault(action.username, set()).add((secret.namespace, secret.name))

    def taken(project: str, service: str, own: tuple[str, str]) -> Container[str]:
        users = holders.get((project, service), {})
        return frozenset(name for name, keys in users.items() if keys - {own})

    def recorded(project: str, service: str, own: tuple[str, str]) -> Container[str]:
        users = holders.get((project, service), {})
        return frozenset(name for name, keys in users.items() if own in keys)

    return taken, recorded


# --- the report -----------------------------------------------------------------------------------


def _services_of(secret: SecretView) -> tuple[str, ...]:
    found: list[str] = []
    for action in requested_actions(secret):
        if isinstance(action, DeleteServiceUser):
            found.append(f"{action.service_type}:{action.project}/{action.service}")
    return tuple(dict.fromkeys(found))


def _age(created: datetime | None, now: datetime) -> str:
    if created is None:
        return "unknown"
    seconds = int((now - created).total_seconds())
    days, rest = divmod(max(seconds, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d{hours}h" if days else f"{hours}h{minutes}m" if hours else f"{minutes}m"


def _failing(raw: Mapping[str, object]) -> tuple[str, ...]:
    value = raw.get("status")
    status = status_from_dict(value if isinstance(value, Mapping) else None)
    reasons: list[str] = []
    if status.synchronization_state == "RolloutFailed":
        reasons.append("synchronizationState=RolloutFailed")
    for ctype in (AIVEN_FAILURE, LOCAL_FAILURE):
        condition = status.condition(ctype)
        if condition is not None and condition.status == "True":
            reasons.append(f"{ctype}: {condition.message or condition.reason}")
    ready = status.condition(READY)
    if ready is not None and ready.status == "False":
        not_ready = [
            f"{c.type}={c.reason}" + (f" ({c.message})" if c.message else "")
            for c in status.conditions
            if c.type.endswith("Ready") and c.type != READY and c.status == "False"
        ]
        reasons.append("Ready=False" + (": " + "; ".join(not_ready) if not_ready else f" ({ready.message})"))
    return tuple(reasons)


def build_report(inp: AuditInput, options: AuditOptions) -> AuditReport:
    """The whole audit, from gathered inputs. Pure."""
    now = inp.now
    apps, invalid = parsed_applications(inp.applications, options.allowed_projects)
    claims: list[AivenApplication | AppSecretRefs] = [*apps]
    claims.extend(app_secret_refs_from_raw(raw) for raw, _ in invalid)
    managed = [s for s in inp.secrets if s.managed]

    # Janitor verdicts, exactly as the janitor would decide now.
    plan = plan_cleanup(managed, claims, inp.workloads, now, options.grace_period)
    verdicts: dict[tuple[str, str], tuple[str, str]] = {}
    for deletion in plan.deletions:
        verdicts[(deletion.namespace, deletion.name)] = (f"delete ({deletion.reason})", "")
    for kept in plan.kept:
        verdicts[(kept.namespace, kept.name)] = (f"keep ({kept.reason})", kept.detail)

    referrers: dict[tuple[str, str], list[str]] = {}
    for app_claim in claims:
        names = app_claim.secret_names
        for secret_name in names:
            referrers.setdefault((app_claim.namespace, secret_name), []).append(
                f"AivenApplication/{app_claim.name}"
            )
    for workload in inp.workloads:
        for secret_name in workload.secret_names:
            referrers.setdefault((workload.namespace, secret_name), []).append(
                f"{workload.kind}/{workload.name}"
            )

    by_key = {(s.namespace, s.name): s for s in managed}
    managed_rows = tuple(
        ManagedSecret(
            namespace=s.namespace,
            name=s.name,
            app=s.label(labels.APP_LABEL),
            services=_services_of(s),
            referenced_by=tuple(sorted(set(referrers.get((s.namespace, s.name), [])))),
            protected=s.label(labels.PROTECTED).lower() == "true"
            or s.annotation(labels.PROTECTED).lower() == "true",
            verdict=verdicts[(s.namespace, s.name)][0],
            detail=verdicts[(s.namespace, s.name)][1],
        )
        for s in sorted(managed, key=lambda s: (s.namespace, s.name))
    )
    garbage = tuple(_garbage_row(d, by_key[(d.namespace, d.name)], now) for d in plan.deletions)

    # Orphans: the sweep's own rules, as a dry run with every user old enough.
    first_seen = {UserKey(f.project, f.name, u): _LONG_AGO for f in inp.services for u in f.usernames}
    sweep = plan_orphan_sweep(
        inp.services,
        managed,
        first_seen,
        now,
        timedelta(0),
        dry_run=True,
        expected_users=expected_users(apps, ServiceConfig(options.main_project), *recorded_users(managed)),
    )
    orphans = tuple(
        OrphanedUser(s.user.project, s.user.service, str(s.service_type), s.user.username)
        for s in sorted(sweep.spared, key=lambda s: s.user)
        if s.reason is SpareReason.DRY_RUN
    )

    threshold = options.user_limit * options.user_limit_ratio
    usage = tuple(
        ServiceUsage(
            f.project,
            f.name,
            str(f.service_type),
            len(set(f.usernames)),
            options.user_limit,
            len(set(f.usernames)) > threshold,
        )
        for f in sorted(inp.services, key=lambda f: (f.project, f.name))
    )

    apps_by_secret = {(s.namespace, s.name): s.label(labels.APP_LABEL) for s in managed}
    expiring: list[ExpiringCert] = []
    warnings: list[str] = []
    for cert in sorted(inp.kafka_certs, key=lambda c: (c.namespace, c.secret_name)):
        if cert.not_after is None:
            warnings.append(f"Secret {cert.namespace}/{cert.secret_name}: no readable KAFKA_CERTIFICATE")
            continue
        left = cert.not_after - now
        if left <= options.cert_window:
            expiring.append(
                ExpiringCert(
                    cert.namespace,
                    cert.secret_name,
                    apps_by_secret.get((cert.namespace, cert.secret_name), ""),
                    cert.not_after.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    round(left.total_seconds() / 86400, 1),
                )
            )

    failing: list[FailingApp] = []
    for raw, problems in invalid:
        namespace, name = _identity(raw)
        failing.append(FailingApp(namespace, name, ("invalid spec", *problems)))
    invalid_keys = {_identity(raw) for raw, _ in invalid}
    for raw in inp.applications:
        key = _identity(raw)
        reasons = () if key in invalid_keys else _failing(raw)
        if reasons:
            failing.append(FailingApp(key[0], key[1], reasons))

    for error in inp.lookup_errors:
        warnings.append(
            f"could not read {error.ref.service_type} service {error.ref.project}/{error.ref.service}: "
            f"{error.message} (orphans and usage for it are not reported)"
        )

    return AuditReport(
        generated_at=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        managed_secrets=managed_rows,
        garbage_secrets=garbage,
        orphaned_users=orphans,
        service_usage=usage,
        expiring_certificates=tuple(expiring),
        failing_apps=tuple(sorted(failing, key=lambda f: (f.namespace, f.name))),
        warnings=tuple(warnings),
        counts={
            "managed_secrets": len(managed_rows),
            "applications": len(inp.applications),
            "services": len(inp.services),
        },
    )


def _identity(raw: Mapping[str, object]) -> tuple[str, str]:
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping):
        return "", ""
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _garbage_row(deletion: Deletion, secret: SecretView, now: datetime) -> GarbageSecret:
    return GarbageSecret(
        deletion.namespace,
        deletion.name,
        secret.label(labels.APP_LABEL),
        str(deletion.reason),
        _age(secret.creation_timestamp, now),
    )


# --- thresholds -------------------------------------------------------------------------------------


def exceeded(report: AuditReport, thresholds: Mapping[str, int]) -> tuple[str, ...]:
    """Categories whose problem count is above its threshold (a missing threshold means 0)."""
    counts = report.problem_counts()
    return tuple(
        f"{category}: {counts[category]} > {thresholds.get(category, 0)}"
        for category in CATEGORIES
        if counts[category] > thresholds.get(category, 0)
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def report_dict(report: AuditReport) -> dict[str, object]:
    """The report as plain JSON-able data (for `-o json`)."""

    def rows(items: Iterable[Any]) -> list[dict[str, object]]:
        out = []
        for item in items:
            row = {_camel(name): getattr(item, name) for name in item.__dataclass_fields__}
            out.append({k: list(v) if isinstance(v, tuple) else v for k, v in row.items()})
        return out

    return {
        "generatedAt": report.generated_at,
        "counts": dict(report.counts),
        "problems": report.problem_counts(),
        "managedSecrets": rows(report.managed_secrets),
        "garbageSecrets": rows(report.garbage_secrets),
        "orphanedUsers": rows(report.orphaned_users),
        "serviceUsage": rows(report.service_usage),
        "expiringCertificates": rows(report.expiring_certificates),
        "failingApps": rows(report.failing_apps),
        "warnings": list(report.warnings),
    }
