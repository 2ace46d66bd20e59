"""`aivenator render`: print the Secrets the operator would write, offline.

Inputs are an AivenApplication manifest (`-f`, several YAML documents allowed) and a facts file
(`--facts`) describing the Aiven side: project CAs, services with state and endpoints, and
service users with credentials. Nothing talks to Kubernetes or Aiven; the `aiven.io` OpenSearch
and Valkey objects the operator would check are assumed to exist. Data values are masked unless
`--show-secrets` is given. After the Secrets come the AivenApplications themselves, each with the
`status` the operator would write after this synchronization (`synchronizationHash` is the Go
operator's value, so tooling can compare it with what either operator wrote).

Facts file::

    projects:
      <project>: {ca: <PEM>}
    services:
      - {project: <project>, name: <service>, type: kafka|opensearch|valkey, state: RUNNING,
         endpoints: {<purpose>: {host: <host>, port: <port>}}}
    users:            # username may be omitted: the entry then serves any user of that service
      - {project: <project>, service: <service>, username: <name>, password: <pw>,
         access_cert: <PEM>, access_key: <PEM>}   # cert/key required for Kafka users
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from aivenator.domain.facts import Endpoint, ServiceFacts, ServiceType, ServiceUser
from aivenator.domain.parse import parse_application, parse_rfc3339
from aivenator.domain.secrets import DesiredSecret, SectionInput, render_secret, to_manifest
from aivenator.domain.services import all_sections
from aivenator.domain.services.base import ServiceConfig
from aivenator.domain.sync import ServiceResult, ServiceState, compute_status, status_from_dict
from aivenator.entrypoints.shells.certs import certificate_not_after
from returns.result import Failure, Success


@dataclass(frozen=True)
class Facts:
    cas: Mapping[str, str]
    services: Mapping[tuple[str, str], ServiceFacts]
    #: (project, service, username or "") -> user template
    users: Mapping[tuple[str, str, str], ServiceUser]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", required=True, help="AivenApplication manifest (YAML, '-' for stdin)")
    parser.add_argument("--facts", required=True, help="facts file describing the Aiven side (YAML)")
    parser.add_argument("--now", help="RFC 3339 time to stamp the Secrets with (default: current time)")
    parser.add_argument(
        "--show-secrets", action="store_true", help="print data values instead of masking them"
    )
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    parser.add_argument(
        "--projects", default="dev-nais-dev", help="comma-separated Aiven projects allowed as Kafka pools"
    )
    parser.add_argument(
        "--main-project", default="dev-nais-dev", help="project for OpenSearch, Valkey, AIVEN_CA"
    )


def _endpoint(raw: object, where: str, problems: list[str]) -> Endpoint | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("host"), str):
        problems.append(f"{where}: needs host and port")
        return None
    try:
        return Endpoint(raw["host"], int(raw.get("port", 0)))
    except (TypeError, ValueError):
        problems.append(f"{where}.port: must be an integer")
        return None


def load_facts(raw: object) -> tuple[Facts, list[str]]:
    """Facts from the file's dict; problems are listed, never raised."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        return Facts({}, {}, {}), ["facts: must be a YAML mapping"]
    cas: dict[str, str] = {}
    for project, value in (raw.get("projects") or {}).items():
        ca = value.get("ca") if isinstance(value, Mapping) else None
        if not isinstance(ca, str) or "BEGIN CERTIFICATE" not in ca:
            problems.append(f"projects.{project}.ca: must be a PEM certificate")
            continue
        cas[str(project)] = ca
    services: dict[tuple[str, str], ServiceFacts] = {}
    for i, svc in enumerate(raw.get("services") or []):
        where = f"services[{i}]"
        if not isinstance(svc, Mapping) or not svc.get("project") or not svc.get("name"):
            problems.append(f"{where}: needs project and name")
            continue
        try:
            service_type = ServiceType(str(svc.get("type")))
        except ValueError:
            problems.append(f"{where}.type: must be one of {', '.join(t.value for t in ServiceType)}")
            continue
        endpoints: list[tuple[str, Endpoint]] = []
        for purpose, value in (svc.get("endpoints") or {}).items():
            endpoint = _endpoint(value, f"{where}.endpoints.{purpose}", problems)
            if endpoint is not None:
                endpoints.append((str(purpose), endpoint))
        services[(str(svc["project"]), str(svc["name"]))] = ServiceFacts(
            project=str(svc["project"]),
            name=str(svc["name"]),
            service_type=service_type,
            state=str(svc.get("state", "RUNNING")),
            endpoints=tuple(endpoints),
        )
    users: dict[tuple[str, str, str], ServiceUser] = {}
    for i, user in enumerate(raw.get("users") or []):
        if not isinstance(user, Mapping) or not user.get("project") or not user.get("service"):
            problems.append(f"users[{i}]: needs project and service")
            continue
        key = (str(user["project"]), str(user["service"]), str(user.get("username") or ""))
        users[key] = ServiceUser(
            username=key[2],
            password=str(user.get("password") or ""),
            access_cert=user.get("access_cert"),
            access_key=user.get("access_key"),
        )
    return Facts(cas, services, users), problems


@dataclass(frozen=True)
class Rendered:
    secrets: list[DesiredSecret]
    #: Each AivenApplication with the status the operator would write after this sync.
    applications: list[dict[str, Any]]
    problems: list[str]
    warnings: list[str]


def render_documents(
    documents: Sequence[Any],
    facts: Facts,
    allowed_projects: frozenset[str],
    config: ServiceConfig,
    now: datetime,
    new_password: str,
) -> Rendered:
    """Secrets, applications with status, problems and warnings for every AivenApplication in `documents`."""
    rendered: list[DesiredSecret] = []
    applications: list[dict[str, Any]] = []
    problems: list[str] = []
    warnings: list[str] = []
    main_ca = facts.cas.get(config.main_project)
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        where = f"document {index}"
        if not isinstance(doc, Mapping) or doc.get("kind") != "AivenApplication":
            problems.append(f"{where}: not an AivenApplication")
            continue
        match parse_application(doc, allowed_projects):
            case Failure(invalid):
                problems.extend(f"{where}: {p}" for p in invalid.problems)
                continue
            case Success(parsed):
                app = parsed.app
                warnings.extend(f"{where}: {w}" for w in parsed.warnings)
        if main_ca is None:
            problems.append(f"facts: no CA for the main project {config.main_project!r}")
            continue
        results: list[ServiceResult] = []
        for handler, section in all_sections(app):
            label = f"{where}: {section.key}"
            target = handler.target(app, section, config)
            service = next(
                (
                    facts.services[(target.project, c.service)]
                    for c in target.candidates
                    if (target.project, c.service) in facts.services
                ),
                None,
            )
            if service is None:
                names = " or ".join(c.service for c in target.candidates)
                problems.append(f"{label}: no service {names} in project {target.project!r} in the facts")
                continue
            if not service.usable:
                problems.append(f"{label}: service {service.name} is {service.state}, not RUNNING")
                continue
            if service.service_type is not section.service_type:
                problems.append(f"{label}: service {service.name} is of type {service.service_type}")
                continue
            ca = facts.cas.get(service.project)
            if ca is None:
                problems.append(f"{label}: no CA for project {service.project!r} in the facts")
                continue
            choice = handler.username(app, section)
            if not choice.compatible:
                warnings.append(f"{label}: user name {choice.name}: {choice.reason}")
            template = facts.users.get((service.project, service.name, choice.name)) or facts.users.get(
                (service.project, service.name, "")
            )
            if template is None:
                problems.append(
                    f"{label}: no user {choice.name} (or template) for {service.name} in the facts"
                )
                continue
            user = ServiceUser(
                username=choice.name,
                password=template.password,
                access_cert=template.access_cert,
                access_key=template.access_key,
            )
            inp = SectionInput(section, service, user, ca)
            match render_secret(app, inp, None, now, new_password, main_ca):
                case Success(secret):
                    rendered.append(secret)
                    results.append(
                        ServiceResult(
                            section.service_type,
                            ServiceState.READY,
                            instance=section.instance,
                            name_note="" if choice.compatible else choice.reason,
                            cert_not_valid_after=(
                                certificate_not_after(user.access_cert.encode())
                                if section.service_type is ServiceType.KAFKA and user.access_cert
                                else None
                            ),
                        )
                    )
                case Failure(error):
                    problems.append(f"{where}: {error.section_key}: {error.message}")
        status = compute_status(app, results, now, status_from_dict(doc.get("status")))
        applications.append({**doc, "status": status.to_dict()})
    return Rendered(rendered, applications, problems, warnings)


def _masked(manifest: dict[str, Any]) -> dict[str, Any]:
    data = manifest.get("data") or {}
    manifest["data"] = {k: "<masked: use --show-secrets>" for k in data}
    return manifest


def run(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            app_text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                app_text = fh.read()
        with open(args.facts, encoding="utf-8") as fh:
            facts_raw = yaml.safe_load(fh)
        documents = list(yaml.safe_load_all(app_text))
    except (OSError, yaml.YAMLError) as exc:
        print(f"aivenator render: cannot read input: {exc}", file=sys.stderr)
        return 1
    if args.now:
        now = parse_rfc3339(args.now)
        if now is None:
            print("aivenator render: --now must be an RFC 3339 date-time with a time zone", file=sys.stderr)
            return 1
    else:
        now = datetime.now(UTC)
    facts, problems = load_facts(facts_raw)
    allowed = frozenset(p.strip() for p in args.projects.split(",") if p.strip())
    result = render_documents(
        documents, facts, allowed, ServiceConfig(args.main_project), now, secrets.token_urlsafe(24)
    )
    problems.extend(result.problems)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    manifests = [to_manifest(s) for s in result.secrets]
    if not args.show_secrets:
        manifests = [_masked(m) for m in manifests]
    manifests.extend(result.applications)
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}, indent=2))
    else:
        print(yaml.safe_dump_all(manifests, sort_keys=False), end="")
    return 0
