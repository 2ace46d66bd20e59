"""`aivenator audit`: a read-only operations report over a cluster and Aiven.

Gathers (lists only, never writes): managed Secrets, AivenApplications, the Secret references of
every workload kind, and the Aiven services of the served projects (listed per project like the
orphan sweep does, else the services those objects name); then `aivenator.domain.audit.build_report` decides.
Prints a table (default) or JSON on stdout, progress on stderr, and exits:

- 0: no problem category above its threshold;
- 1: some category above its threshold (listed on stderr);
- 2: bad arguments or configuration (missing token, unreadable token file);
- 3: the cluster could not be read completely (a partial view would mislead the janitor verdicts).

Kafka certificate expiry is read from the `KAFKA_CERTIFICATE` of each managed Secret (a public
certificate, parsed here and reduced to its expiry); no other Secret value is read or printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets as _secrets
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from aivenator.domain.audit import (
    CATEGORIES,
    AuditInput,
    AuditOptions,
    AuditReport,
    KafkaCert,
    ServiceLookupError,
    build_report,
    exceeded,
    report_dict,
    services_to_inspect,
)
from aivenator.domain.facts import AivenError, NotFound, ServiceFacts, ServiceType
from aivenator.domain.janitor import secret_view
from aivenator.domain.kubernetes_port import (
    MANAGED_SECRETS,
    KubeError,
    KubeObject,
    LabelSelector,
    ListResult,
    ObjectMeta,
)
from aivenator.domain.references import WORKLOAD_KINDS, WorkloadRefs
from aivenator.entrypoints.cli import argtypes
from aivenator.entrypoints.config import (
    TOKEN_ON_COMMAND_LINE,
    env_name,
    parse_duration,
    token_on_command_line,
)
from aivenator.entrypoints.shells.certs import CERT_KEY, certificate_not_after
from returns.result import Failure, Result, Success

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
DEFAULT_API_URL = "https://api.aiven.io"


class AuditKubernetes(Protocol):
    """The read-only slice of `KubernetesPort` the audit uses."""

    def list_applications(self) -> Result[ListResult[KubeObject], KubeError]: ...

    def list_secrets(
        self, label_selector: LabelSelector, namespace: str | None = None
    ) -> Result[ListResult[KubeObject], KubeError]: ...

    def list_workload_refs(self, kind: str) -> Result[ListResult[WorkloadRefs], KubeError]: ...


class AuditAiven(Protocol):
    def service(self, project: str, service: str) -> Result[ServiceFacts, AivenError]: ...

    def list_services(self, project: str) -> Result[tuple[ServiceFacts, ...], AivenError]: ...


Progress = Callable[[str], None]


# --------------------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    cluster.add_argument("--context", help="kubeconfig context (default: the current one)")

    aiven = parser.add_argument_group("Aiven")
    aiven.add_argument(
        "--aiven-token", help=f"Aiven API token (env {env_name('aiven-token')}); never printed"
    )
    aiven.add_argument(
        "--aiven-token-file", help=f"file holding the token (env {env_name('aiven-token-file')})"
    )
    aiven.add_argument(
        "--aiven-api-url",
        help=f"Aiven API base URL (env {env_name('aiven-api-url')}, default {DEFAULT_API_URL})",
    )
    aiven.add_argument(
        "--fake-aiven",
        action="store_true",
        help="use the built-in Aiven simulator instead of Aiven (demo, tests)",
    )
    aiven.add_argument(
        "--fake-aiven-seed", metavar="FILE", help="seed file for --fake-aiven (default: the built-in seed)"
    )
    aiven.add_argument(
        "--projects", help=f"comma-separated Kafka pools (env {env_name('projects')}, default dev-nais-dev)"
    )
    aiven.add_argument(
        "--main-project",
        help=f"project of OpenSearch/Valkey (env {env_name('main-project')}, default dev-nais-dev)",
    )

    checks = parser.add_argument_group("checks")
    checks.add_argument(
        "--janitor-grace-period",
        default="5m",
        help="minimum age before an unused Secret counts as garbage (default 5m)",
    )
    checks.add_argument(
        "--user-limit", type=argtypes.positive_int, default=1000, help="service users allowed per service (default 1000)"
    )
    checks.add_argument(
        "--user-limit-ratio",
        type=argtypes.share,
        default=0.8,
        help="report services above this share of --user-limit (default 0.8)",
    )
    checks.add_argument(
        "--cert-days",
        type=argtypes.non_negative_float,
        default=14.0,
        help="report Kafka certificates expiring within N days (default 14)",
    )

    limits = parser.add_argument_group(
        "exit status: problems tolerated per category before exiting 1 (default 0)"
    )
    for category in CATEGORIES:
        limits.add_argument(
            f"--max-{category.replace('_', '-')}", type=argtypes.non_negative_int, default=0, metavar="N", dest=f"max_{category}"
        )

    out = parser.add_argument_group("output")
    out.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="report format (default table)"
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    out.add_argument(
        "--log-level", default="warning", help="operator log level, logs go to stderr (default warning)"
    )


# --------------------------------------------------------------------------- gathering


@dataclass(frozen=True, slots=True)
class Gathered:
    secrets: tuple[KubeObject, ...]
    applications: tuple[KubeObject, ...]
    workloads: tuple[WorkloadRefs, ...]


def gather_cluster(kube: AuditKubernetes, progress: Progress) -> Result[Gathered, str]:
    """Every managed Secret, AivenApplication and workload reference, or what could not be read."""
    match kube.list_secrets(MANAGED_SECRETS):
        case Failure(error):
            return Failure(f"listing managed Secrets: {_kube_error(error)}")
        case Success(listed):
            secrets = listed.items
    progress(f"managed Secrets: {len(secrets)}")
    match kube.list_applications():
        case Failure(error):
            return Failure(f"listing AivenApplications: {_kube_error(error)}")
        case Success(listed_apps):
            applications = listed_apps.items
    progress(f"AivenApplications: {len(applications)}")
    workloads: list[WorkloadRefs] = []
    for kind in WORKLOAD_KINDS:
        match kube.list_workload_refs(kind):
            case Failure(error):
                return Failure(f"listing {kind}s: {_kube_error(error)}")
            case Success(refs):
                workloads.extend(refs.items)
                progress(f"{kind}s: {len(refs.items)}")
    return Success(Gathered(tuple(secrets), tuple(applications), tuple(workloads)))


def kafka_certs(secrets: Iterable[Mapping[str, object]]) -> tuple[KafkaCert, ...]:
    """Expiry of the client certificate in every managed Secret that holds one."""
    out: list[KafkaCert] = []
    for secret in secrets:
        data = secret.get("data")
        if not isinstance(data, Mapping) or CERT_KEY not in data:
            continue
        meta = ObjectMeta(secret)
        not_after: datetime | None = None
        raw = data.get(CERT_KEY)
        if isinstance(raw, str) and raw:
            try:
                not_after = certificate_not_after(base64.b64decode(raw, validate=True))
            except ValueError:
                not_after = None
        out.append(KafkaCert(meta.namespace, meta.name, not_after))
    return tuple(out)


def collect(
    kube: AuditKubernetes,
    aiven: AuditAiven,
    options: AuditOptions,
    now: datetime,
    progress: Progress = lambda _: None,
) -> Result[AuditReport, str]:
    """Gather everything and build the report (the whole audit minus printing)."""
    match gather_cluster(kube, progress):
        case Failure(message):
            return Failure(message)
        case Success(gathered):
            pass
    views = [secret_view(s) for s in gathered.secrets]
    refs = services_to_inspect(gathered.applications, views, options)
    progress(f"Aiven services to inspect: {len(refs)}")
    services: list[ServiceFacts] = []
    errors: list[ServiceLookupError] = []
    listed_projects: set[str] = set()
    # Like the orphan sweep: list every service of a managed type, so users left in a
    # service that nothing names any more are found too.
    for project in sorted(options.allowed_projects | {options.main_project}):
        listed = aiven.list_services(project)
        if not isinstance(listed, Success):
            continue  # fall back to reading the named services one by one
        listed_projects.add(project)
        services.extend(f for f in listed.unwrap() if _served(f, options))
    for ref in refs:
        if ref.project in listed_projects:
            continue
        match aiven.service(ref.project, ref.service):
            case Success(facts):
                services.append(facts)
            case Failure(NotFound()):
                pass
            case Failure(error):
                errors.append(
                    ServiceLookupError(ref, f"{type(error).__name__}: {getattr(error, 'message', '')}")
                )
    progress(f"Aiven services found: {len(services)}, unreadable: {len(errors)}")
    audit_input = AuditInput(
        now=now,
        secrets=views,
        applications=gathered.applications,
        workloads=gathered.workloads,
        services=services,
        lookup_errors=errors,
        kafka_certs=kafka_certs(gathered.secrets),
    )
    return Success(build_report(audit_input, options))


def _served(facts: ServiceFacts, options: AuditOptions) -> bool:
    """Kafka services of the allowed projects, OpenSearch and Valkey services of the main project."""
    if facts.service_type is ServiceType.KAFKA:
        return facts.project in options.allowed_projects
    return facts.project == options.main_project


def _kube_error(error: KubeError) -> str:
    message = getattr(error, "message", "")
    return f"{type(error).__name__}" + (f": {message}" if message else "")


# --------------------------------------------------------------------------- output


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def render_table(report: AuditReport, options: AuditOptions) -> str:
    lines: list[str] = [f"aivenator audit at {report.generated_at}", ""]

    def section(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], empty: str) -> None:
        lines.append(f"== {title} ({len(rows)})")
        lines.extend(_table(headers, rows) if rows else [f"   {empty}"])
        lines.append("")

    section(
        "Managed Secrets",
        ("NAMESPACE", "SECRET", "APP", "SERVICES", "REFERENCED BY", "PROTECTED", "JANITOR"),
        [
            (
                s.namespace,
                s.name,
                s.app,
                ",".join(s.services) or "-",
                ",".join(s.referenced_by) or "-",
                "yes" if s.protected else "no",
                s.verdict + (f" {s.detail}" if s.detail else ""),
            )
            for s in report.managed_secrets
        ],
        "none",
    )
    section(
        "Secrets the janitor would delete",
        ("NAMESPACE", "SECRET", "APP", "REASON", "AGE"),
        [(g.namespace, g.name, g.app, g.reason, g.age) for g in report.garbage_secrets],
        "none",
    )
    section(
        "Aiven users with no managed Secret",
        ("PROJECT", "SERVICE", "TYPE", "USER"),
        [(o.project, o.service, o.service_type, o.username) for o in report.orphaned_users],
        "none",
    )
    section(
        f"Service users per service (limit {options.user_limit}, reported above {options.user_limit_ratio:.0%})",
        ("PROJECT", "SERVICE", "TYPE", "USERS", "STATUS"),
        [
            (u.project, u.service, u.service_type, u.users, "NEAR LIMIT" if u.near_limit else "ok")
            for u in report.service_usage
        ],
        "no service found",
    )
    section(
        f"Kafka certificates expiring within {options.cert_window.total_seconds() / 86400:g} days",
        ("NAMESPACE", "SECRET", "APP", "NOT AFTER", "DAYS LEFT"),
        [(c.namespace, c.secret_name, c.app, c.not_after, c.days_left) for c in report.expiring_certificates],
        "none",
    )
    section(
        "AivenApplications failing to synchronize",
        ("NAMESPACE", "APPLICATION", "REASONS"),
        [(f.namespace, f.name, "; ".join(f.reasons)) for f in report.failing_apps],
        "none",
    )
    if report.warnings:
        lines.append(f"== Warnings ({len(report.warnings)})")
        lines.extend(f"   {w}" for w in report.warnings)
        lines.append("")
    counts = report.problem_counts()
    lines.append("Problems: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- wiring


def _setting(value: str | None, flag: str, env: Mapping[str, str], default: str | None = None) -> str | None:
    if value:
        return value
    return env.get(env_name(flag)) or default


def _token(args: argparse.Namespace, env: Mapping[str, str]) -> Result[str, str]:
    if token_on_command_line(args):
        print(f"aivenator audit: warning: {TOKEN_ON_COMMAND_LINE}", file=sys.stderr)
    token = _setting(args.aiven_token, "aiven-token", env)
    path = _setting(args.aiven_token_file, "aiven-token-file", env)
    if token and path:
        return Failure("give only one of --aiven-token and --aiven-token-file")
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            return Failure(f"cannot read --aiven-token-file {path}: {exc.strerror or type(exc).__name__}")
    if not token:
        return Failure("an Aiven token is required (--aiven-token-file, --aiven-token, or --fake-aiven)")
    return Success(token)


def options_from(args: argparse.Namespace, env: Mapping[str, str]) -> Result[AuditOptions, str]:
    projects_text = _setting(args.projects, "projects", env, "dev-nais-dev") or ""
    projects = frozenset(p.strip() for p in projects_text.split(",") if p.strip())
    main_project = (_setting(args.main_project, "main-project", env, "dev-nais-dev") or "").strip()
    if not projects or not main_project:
        return Failure("--projects and --main-project must not be empty")
    try:
        grace = parse_duration(args.janitor_grace_period)
    except ValueError as exc:
        return Failure(f"--janitor-grace-period: {exc}")
    if args.user_limit <= 0 or not 0 < args.user_limit_ratio <= 1 or args.cert_days < 0:
        return Failure(
            "--user-limit must be positive, --user-limit-ratio in (0, 1], --cert-days not negative"
        )
    return Success(
        AuditOptions(
            allowed_projects=projects,
            main_project=main_project,
            grace_period=timedelta(seconds=grace),
            user_limit=args.user_limit,
            user_limit_ratio=args.user_limit_ratio,
            cert_window=timedelta(days=args.cert_days),
        )
    )


def run(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    environ = os.environ if env is None else env
    progress: Progress = (lambda _: None) if args.quiet else (lambda m: print(f"audit: {m}", file=sys.stderr))

    match options_from(args, environ):
        case Failure(message):
            print(f"aivenator audit: {message}", file=sys.stderr)
            return EXIT_USAGE
        case Success(options):
            pass

    # Imported here: the adapters pull in httpx and the kubernetes client.
    from aivenator.adapters.aiven_http import AivenHttp
    from aivenator.adapters.kubernetes_api import KubernetesApi
    from aivenator.entrypoints.runtime.logging_setup import configure_logging

    if args.fake_aiven:
        from aivenator.adapters.fakes.aiven import DEFAULT_SEED, FakeAiven, load_seed

        token = _secrets.token_urlsafe(24)
        configure_logging(args.log_level, "text", stream=sys.stderr, secrets=(token,))
        seed = load_seed(args.fake_aiven_seed) if args.fake_aiven_seed else DEFAULT_SEED
        fake = FakeAiven(token=token, seed=seed)
        aiven = AivenHttp(DEFAULT_API_URL, token, transport=fake.mock_transport())
        progress("Aiven: the built-in simulator")
    else:
        match _token(args, environ):
            case Failure(message):
                print(f"aivenator audit: {message}", file=sys.stderr)
                return EXIT_USAGE
            case Success(token):
                configure_logging(args.log_level, "text", stream=sys.stderr, secrets=(token,))
        url = _setting(args.aiven_api_url, "aiven-api-url", environ, DEFAULT_API_URL) or DEFAULT_API_URL
        aiven = AivenHttp(url, token)
        progress(f"Aiven: {url}")

    try:
        kubeconfig = args.kubeconfig or environ.get(env_name("kubeconfig"))
        try:
            kube = KubernetesApi.from_kubeconfig(kubeconfig, context=args.context)
        except Exception as exc:  # the client raises ConfigException and friends
            if kubeconfig or args.context:
                print(f"aivenator audit: cannot load kubeconfig: {type(exc).__name__}", file=sys.stderr)
                return EXIT_USAGE
            try:
                kube = KubernetesApi.in_cluster()
            except Exception:
                print("aivenator audit: no kubeconfig found and not running in a cluster", file=sys.stderr)
                return EXIT_USAGE
        try:
            result = collect(kube, aiven, options, datetime.now(UTC), progress)
        finally:
            kube.close()
    finally:
        aiven.close()

    match result:
        case Failure(message):
            print(f"aivenator audit: the cluster could not be read completely: {message}", file=sys.stderr)
            return EXIT_INCOMPLETE
        case Success(report):
            pass
    if args.output == "json":
        sys.stdout.write(json.dumps(report_dict(report), indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(render_table(report, options))
    thresholds = {category: getattr(args, f"max_{category}") for category in CATEGORIES}
    over = exceeded(report, thresholds)
    for line in over:
        print(f"aivenator audit: threshold exceeded: {line}", file=sys.stderr)
    return EXIT_PROBLEMS if over else EXIT_OK
