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


#: TCP ports a facts endpoint may name.
PORT_RANGE = range(1, 65536)


def _text(raw: object, where: str, problems: list[str], *, required: bool = True) -> str | None:
    """A non-empty string at `where`, else a problem (or None when absent and not required)."""
    if raw is None or raw == "":
        if required:
            problems.append(f"{where}: is required")
        return None
    if not isinstance(raw, str):
        problems.append(f"{where}: must be a string, not {type(raw).__name__}")
        return None
    return raw


def _endpoint(raw: object, where: str, problems: list[str]) -> Endpoint | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a mapping with host and port")
        return None
    host = _text(raw.get("host"), f"{where}.host", problems)
    port = raw.get("port")
    if isinstance(port, bool) or not isinstance(port, int):
        problems.append(f"{where}.port: must be an integer from 1 to 65535")
        return None
    if port not in PORT_RANGE:
        problems.append(f"{where}.port: {port} is out of range (1 to 65535)")
        return None
    return Endpoint(host, port) if host is not None else None


def _section(raw: Mapping[str, object], key: str, kind: type, problems: list[str]) -> Any:
    """`raw[key]` if it is of `kind` (absent or null: empty), else a problem and empty."""
    value = raw.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        wanted = "a mapping" if kind is dict else "a list"
        problems.append(f"{key}: must be {wanted}, not {type(value).__name__}")
        return kind()
    return value


def load_facts(raw: object) -> tuple[Facts, list[str]]:
    """Facts from the file's dict; problems are listed (`field: what is wrong`), never raised."""
    problems: list[str] = []
    if raw is None:
        return Facts({}, {}, {}), ["the file is empty (want a mapping with projects, services, users)"]
    if not isinstance(raw, Mapping):
        return Facts({}, {}, {}), [f"must be a YAML mapping, not {type(raw).__name__}"]
    cas: dict[str, str] = {}
    for project, value in _section(raw, "projects", dict, problems).items():
        ca = value.get("ca") if isinstance(value, Mapping) else None
        if not isinstance(project, str) or not isinstance(ca, str) or "BEGIN CERTIFICATE" not in ca:
            problems.append(f"projects.{project}.ca: must be a PEM certificate")
            continue
        cas[project] = ca
    services: dict[tuple[str, str], ServiceFacts] = {}
    for i, svc in enumerate(_section(raw, "services", list, problems)):
        where = f"services[{i}]"
        if not isinstance(svc, Mapping):
            problems.append(f"{where}: must be a mapping with project, name, type and endpoints")
            continue
        project = _text(svc.get("project"), f"{where}.project", problems)
        name = _text(svc.get("name"), f"{where}.name", problems)
        state = _text(svc.get("state"), f"{where}.state", problems, required=False) or "RUNNING"
        type_value = svc.get("type")
        if not isinstance(type_value, str) or type_value not in {t.value for t in ServiceType}:
            problems.append(f"{where}.type: must be one of {', '.join(t.value for t in ServiceType)}")
            continue
        raw_endpoints = svc.get("endpoints")
        if raw_endpoints is not None and not isinstance(raw_endpoints, Mapping):
            problems.append(f"{where}.endpoints: must be a mapping of purpose to host and port")
            continue
        endpoints: list[tuple[str, Endpoint]] = []
        for purpose, value in (raw_endpoints or {}).items():
            endpoint = _endpoint(value, f"{where}.endpoints.{purpose}", problems)
            if endpoint is not None:
                endpoints.append((str(purpose), endpoint))
        if project is None or name is None:
            continue
        services[(project, name)] = ServiceFacts(
            project=project,
            name=name,
            service_type=ServiceType(type_value),
            state=state,
            endpoints=tuple(endpoints),
        )
    users: dict[tuple[str, str, str], ServiceUser] = {}
    for i, user in enumerate(_section(raw, "users", list, problems)):
        where = f"users[{i}]"
        if not isinstance(user, Mapping):
            problems.append(f"{where}: must be a mapping with project, service and password")
            continue
        found = [
            _text(user.get("project"), f"{where}.project", problems),
            _text(user.get("service"), f"{where}.service", problems),
            _text(user.get("username"), f"{where}.username", problems, required=False),
            _text(user.get("password"), f"{where}.password", problems, required=False),
            _text(user.get("access_cert"), f"{where}.access_cert", problems, required=False),
            _text(user.get("access_key"), f"{where}.access_key", problems, required=False),
        ]
        project, service, username, password, cert, key = found
        if project is None or service is None:
            continue
        users[(project, service, username or "")] = ServiceUser(
            username=username or "", password=password or "", access_cert=cert, access_key=key
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
            problems.append(f"{where}: no CA for the main project {config.main_project!r} in the facts")
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


def _read(path: str, label: str) -> str:
    """The file's text (UTF-8); `InputError` naming the file and what is wrong."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise InputError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def _yaml_error(label: str, exc: yaml.YAMLError) -> InputError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return InputError(f"{label}: invalid YAML: {' '.join(str(problem).split())}{where}")


def _load_all(text: str, label: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise _yaml_error(label, exc) from None
    except (RecursionError, ValueError, OverflowError) as exc:  # too deep / unrepresentable values
        raise InputError(f"{label}: unusable YAML ({type(exc).__name__})") from None


class InputError(Exception):
    """Bad input: the message is one line naming the file (and field) and what is wrong."""


def run(args: argparse.Namespace) -> int:
    manifest_label = "stdin" if args.file == "-" else args.file
    try:
        documents = _load_all(_read(args.file, manifest_label), manifest_label)
        facts_docs = _load_all(_read(args.facts, args.facts), args.facts)
        if not any(doc is not None for doc in documents):
            raise InputError(f"{manifest_label}: no AivenApplication in the manifest (the file is empty)")
        if len(facts_docs) > 1:
            raise InputError(f"{args.facts}: holds {len(facts_docs)} YAML documents; want one")
    except InputError as exc:
        print(f"aivenator render: {exc}", file=sys.stderr)
        return 1
    if args.now:
        now = parse_rfc3339(args.now)
        if now is None:
            print("aivenator render: --now must be an RFC 3339 date-time with a time zone", file=sys.stderr)
            return 1
    else:
        now = datetime.now(UTC)
    facts, facts_problems = load_facts(facts_docs[0] if facts_docs else None)
    if facts_problems:  # a broken facts file would make every section a (misleading) problem too
        for problem in facts_problems:
            print(f"aivenator render: {args.facts}: {_one_line(problem)}", file=sys.stderr)
        return 1
    problems: list[str] = []
    allowed = frozenset(p.strip() for p in args.projects.split(",") if p.strip())
    result = render_documents(
        documents, facts, allowed, ServiceConfig(args.main_project), now, secrets.token_urlsafe(24)
    )
    problems.extend(f"{manifest_label}: {p}" for p in result.problems)
    for warning in result.warnings:
        print(f"aivenator render: warning: {manifest_label}: {_one_line(warning)}", file=sys.stderr)
    if problems:
        for problem in problems:
            print(f"aivenator render: {_one_line(problem)}", file=sys.stderr)
        return 1
    manifests = [to_manifest(s) for s in result.secrets]
    if not args.show_secrets:
        manifests = [_masked(m) for m in manifests]
    manifests.extend(result.applications)
    if args.output == "json":
        text = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}, indent=2) + "\n"
    else:
        text = yaml.safe_dump_all(manifests, sort_keys=False)
    sys.stdout.write(text)
    return 0


def _one_line(text: str) -> str:
    """Input echoed in a message (a key, a value) cannot break the one-line-per-problem rule."""
    return " ".join(text.split())
