"""Operator configuration: command-line flags, each also readable as an `AIVENATOR_*` variable.

Precedence: flag, then environment variable (`--sync-period` → `AIVENATOR_SYNC_PERIOD`), then
default. `load_config` collects every problem before giving up, so an operator sees all of them
in one start attempt; the token is never part of a message or of `repr(config)`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from returns.result import Failure, Result, Success

ENV_PREFIX = "AIVENATOR_"

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LOG_FORMATS = ("text", "json")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (`1h`, `30m`, `90s`, `1h30m`, `500ms`, `0`).

    Raises ValueError on anything else, including negative values.
    """
    value = text.strip()
    if value == "0":
        return 0.0
    if not value:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(value):
        raise ValueError(f"invalid duration {text!r} (use Go form such as 1h, 30m, 90s, 1h30m)")
    return total


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """`host:port`, `:port` (all interfaces) or `[v6]:port`; port 0 asks the OS for a free one."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ValueError(f"invalid address {text!r} (want host:port)")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"invalid address {text!r} (port is not a number)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid address {text!r} (port out of range)")
    return Address(host, port)


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """Everything `aivenator run` needs; durations in seconds."""

    aiven_token: str = field(repr=False)
    aiven_api_url: str = "https://api.aiven.io"
    projects: tuple[str, ...] = ("dev-nais-dev",)
    main_project: str = "dev-nais-dev"
    sync_period: float = 3600.0
    metrics_address: Address = Address("127.0.0.1", 8080)
    health_probe_address: Address | None = None
    log_format: str = "text"
    log_level: str = "info"
    workers: int = 4
    janitor_interval: float = 600.0
    janitor_grace_period: float = 300.0
    aiven_requests_per_second: float = 100.0
    aiven_burst: int = 20
    leader_elect: bool = False
    leader_election_namespace: str = "aivenator"
    leader_election_name: str = "aivenator-leader"
    leader_election_identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    cert_renewal_window: float = 7 * 86400.0
    kubeconfig: str | None = None
    orphan_sweep_interval: float = 600.0
    orphan_grace_period: float = 3600.0
    orphan_sweep_dry_run: bool = False
    max_finalizer_attempts: int = 10
    webhook_address: Address | None = None
    webhook_cert_file: str | None = None
    webhook_key_file: str | None = None

    def __repr__(self) -> str:
        # dataclass repr with the token left out entirely would hide whether one is set at all.
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__ if name != "aiven_token"
        )
        return f"OperatorConfig(aiven_token='***', {shown})"


#: (flag, kind, default, help). Defaults are strings in the flag's own syntax so that `--help`,
#: environment variables and flags share one parser.
_FLAGS: tuple[tuple[str, str, str | None, str], ...] = (
    ("aiven-token", "str", None, "Aiven API token (required unless --aiven-token-file); never logged"),
    ("aiven-token-file", "str", None, "file holding the Aiven API token"),
    ("aiven-api-url", "str", "https://api.aiven.io", "Aiven API base URL"),
    ("projects", "str", "dev-nais-dev", "comma-separated Aiven projects (Kafka pools) that may be used"),
    ("main-project", "str", "dev-nais-dev", "project for OpenSearch, Valkey and AIVEN_CA"),
    ("sync-period", "duration", "1h", "periodic resync of every AivenApplication"),
    ("metrics-address", "address", "127.0.0.1:8080", "Prometheus metrics endpoint (host:port)"),
    ("health-probe-address", "address", None, "/healthz and /readyz endpoint (default: metrics address)"),
    ("log-format", "str", "text", "text or json"),
    ("log-level", "str", "info", "debug, info, warning, error"),
    ("workers", "int", "4", "concurrent reconcile workers"),
    ("janitor-interval", "duration", "10m", "period of the cluster-wide janitor pass"),
    ("janitor-grace-period", "duration", "5m", "minimum age before an unused Secret may be deleted"),
    ("aiven-requests-per-second", "float", "100", "ceiling of the adaptive Aiven request rate (requests/s)"),
    ("aiven-burst", "int", "20", "client-side Aiven request budget (burst)"),
    ("leader-elect", "bool", "false", "use a Lease so only one replica mutates"),
    ("leader-election-namespace", "str", "aivenator", "namespace of the leader Lease"),
    ("leader-election-name", "str", "aivenator-leader", "name of the leader Lease"),
    ("leader-election-identity", "str", "", "this replica's identity (default: hostname-pid)"),
    ("lease-duration", "duration", "15s", "how long a Lease is valid without renewal"),
    ("renew-deadline", "duration", "10s", "a leader that cannot renew within this stops leading"),
    ("retry-period", "duration", "2s", "interval between Lease acquire/renew attempts"),
    ("cert-renewal-window", "duration", "168h", "renew Kafka certificates this long before expiry"),
    ("kubeconfig", "str", None, "kubeconfig file (default: in-cluster, then ~/.kube/config)"),
    ("orphan-sweep-interval", "duration", "10m", "period of the orphaned Aiven user sweep (0 = off)"),
    ("orphan-grace-period", "duration", "1h", "minimum age of an orphaned user before it is swept"),
    ("orphan-sweep-dry-run", "bool", "false", "only report orphaned users, delete nothing"),
    (
        "max-finalizer-attempts",
        "int",
        "10",
        "finalizer passes before a Secret is reported stuck (fewer if 10 Aiven requests, client retries included, run out first)",
    ),
    (
        "webhook-address",
        "address",
        None,
        "serve the CRD conversion webhook (HTTPS, /convert) here (default: off)",
    ),
    (
        "webhook-cert-file",
        "str",
        None,
        "PEM certificate (chain) of the conversion webhook; reloaded on change",
    ),
    ("webhook-key-file", "str", None, "PEM private key of the conversion webhook; reloaded on change"),
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.upper().replace("-", "_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every operator flag; all default to None so environment variables can fill the gaps."""
    for flag, kind, default, help_text in _FLAGS:
        shown = f" (env {env_name(flag)}" + (f", default {default})" if default is not None else ")")
        dest = flag.replace("-", "_")
        if kind == "bool":
            parser.add_argument(
                f"--{flag}",
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text + shown,
            )
        else:
            parser.add_argument(
                f"--{flag}", dest=dest, default=None, metavar=kind.upper(), help=help_text + shown
            )


T = TypeVar("T")


def load_config(
    args: argparse.Namespace | Mapping[str, object],
    env: Mapping[str, str],
    read_file: Callable[[str], str] = lambda p: Path(p).read_text(encoding="utf-8"),
) -> Result[OperatorConfig, tuple[str, ...]]:
    """Build the configuration, or every problem found (one line each, never the token)."""
    given = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    errors: list[str] = []
    raw: dict[str, str | bool | None] = {}
    for flag, kind, default, _ in _FLAGS:
        dest = flag.replace("-", "_")
        given_value = given.get(dest)
        # argparse gives strings or booleans (store_true); anything else is not a flag value.
        value = given_value if isinstance(given_value, str | bool) else None
        if value is None:
            value = env.get(env_name(flag))
        if value is None:
            value = default
        if kind == "bool" and isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE:
                value = True
            elif low in _FALSE:
                value = False
            else:
                errors.append(f"--{flag}: invalid boolean {value!r} (use true or false)")
                value = None
        raw[dest] = value

    def convert(flag: str, fn: Callable[[str], T], fallback: T) -> T:
        value = raw[flag.replace("-", "_")]
        if value is None:
            return fallback
        try:
            return fn(str(value))
        except ValueError as exc:
            errors.append(f"--{flag}: {exc}")
            return fallback

    def positive(flag: str, fn: Callable[[str], T], fallback: T, allow_zero: bool = False) -> T:
        got = convert(flag, fn, fallback)
        if isinstance(got, int | float) and (got < 0 or (got == 0 and not allow_zero)):
            errors.append(f"--{flag}: must be {'zero or ' if allow_zero else ''}positive")
            return fallback
        return got

    token = _token(raw, read_file, errors)
    projects = tuple(p.strip() for p in str(raw["projects"] or "").split(",") if p.strip())
    if not projects:
        errors.append("--projects: at least one Aiven project is required")
    for project in projects:
        if not _PROJECT_NAME.match(project):
            errors.append(f"--projects: invalid project name {project!r}")
    main_project = str(raw["main_project"] or "").strip()
    if not _PROJECT_NAME.match(main_project):
        errors.append(f"--main-project: invalid project name {main_project!r}")
    api_url = str(raw["aiven_api_url"] or "").strip().rstrip("/")
    if not re.match(r"^https?://[^\s/]+", api_url):
        errors.append(f"--aiven-api-url: not an http(s) URL: {api_url!r}")
    log_format = str(raw["log_format"]).strip().lower()
    if log_format not in _LOG_FORMATS:
        errors.append(f"--log-format: must be one of {', '.join(_LOG_FORMATS)}, not {log_format!r}")
    log_level = str(raw["log_level"]).strip().lower()
    if log_level == "warn":
        log_level = "warning"
    if log_level not in _LOG_LEVELS:
        errors.append(f"--log-level: must be one of {', '.join(_LOG_LEVELS)}, not {log_level!r}")

    metrics_address = convert("metrics-address", parse_address, Address("127.0.0.1", 8080))
    health_address = convert("health-probe-address", parse_address, None)
    webhook_address = convert("webhook-address", parse_address, None)
    webhook_cert = str(raw["webhook_cert_file"]).strip() if raw["webhook_cert_file"] else None
    webhook_key = str(raw["webhook_key_file"]).strip() if raw["webhook_key_file"] else None
    if webhook_address is not None and not (webhook_cert and webhook_key):
        errors.append("--webhook-address: needs --webhook-cert-file and --webhook-key-file")
    if webhook_address is None and (webhook_cert or webhook_key):
        errors.append("--webhook-cert-file/--webhook-key-file: given without --webhook-address")
    config_values: dict[str, Any] = {
        "aiven_api_url": api_url,
        "projects": projects,
        "main_project": main_project,
        "sync_period": positive("sync-period", parse_duration, 3600.0),
        "metrics_address": metrics_address,
        "health_probe_address": health_address,
        "log_format": log_format,
        "log_level": log_level,
        "workers": positive("workers", int, 4),
        "janitor_interval": positive("janitor-interval", parse_duration, 600.0),
        "janitor_grace_period": positive("janitor-grace-period", parse_duration, 300.0, allow_zero=True),
        "aiven_requests_per_second": positive("aiven-requests-per-second", float, 100.0),
        "aiven_burst": positive("aiven-burst", int, 20),
        "leader_elect": bool(raw["leader_elect"]),
        "leader_election_namespace": str(raw["leader_election_namespace"] or "").strip(),
        "leader_election_name": str(raw["leader_election_name"] or "").strip(),
        "leader_election_identity": str(raw["leader_election_identity"] or "").strip(),
        "lease_duration": positive("lease-duration", parse_duration, 15.0),
        "renew_deadline": positive("renew-deadline", parse_duration, 10.0),
        "retry_period": positive("retry-period", parse_duration, 2.0),
        "cert_renewal_window": positive("cert-renewal-window", parse_duration, 7 * 86400.0, allow_zero=True),
        "kubeconfig": str(raw["kubeconfig"]) if raw["kubeconfig"] else None,
        "orphan_sweep_interval": positive("orphan-sweep-interval", parse_duration, 600.0, allow_zero=True),
        "orphan_grace_period": positive("orphan-grace-period", parse_duration, 3600.0, allow_zero=True),
        "orphan_sweep_dry_run": raw["orphan_sweep_dry_run"] is True,
        "max_finalizer_attempts": positive("max-finalizer-attempts", int, 10),
        "webhook_address": webhook_address,
        "webhook_cert_file": webhook_cert,
        "webhook_key_file": webhook_key,
    }
    if config_values["leader_elect"]:
        if not config_values["leader_election_namespace"] or not config_values["leader_election_name"]:
            errors.append("--leader-elect: needs --leader-election-namespace and --leader-election-name")
        if not config_values["renew_deadline"] < config_values["lease_duration"]:
            errors.append("--renew-deadline: must be shorter than --lease-duration")
        if not config_values["retry_period"] < config_values["renew_deadline"]:
            errors.append("--retry-period: must be shorter than --renew-deadline")
    if errors:
        return Failure(tuple(errors))
    return Success(OperatorConfig(aiven_token=token, **config_values))


#: Logged (never with the value) when the token was given as `--aiven-token` on the command line.
TOKEN_ON_COMMAND_LINE = (
    "--aiven-token on the command line is visible to every user of the node (ps, /proc/<pid>/cmdline); "
    "use --aiven-token-file or the AIVENATOR_AIVEN_TOKEN environment variable instead"
)


def token_on_command_line(args: argparse.Namespace | Mapping[str, object]) -> bool:
    """Whether the Aiven token came as a command-line flag (not the file or the environment)."""
    given = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    return bool(given.get("aiven_token"))


def _token(raw: Mapping[str, object], read_file: Callable[[str], str], errors: list[str]) -> str:
    token = str(raw["aiven_token"] or "").strip()
    path = raw["aiven_token_file"]
    if token and path:
        errors.append("--aiven-token and --aiven-token-file: give only one")
        return token
    if path:
        try:
            token = read_file(str(path)).strip()
        except OSError as exc:
            errors.append(f"--aiven-token-file: cannot read {path}: {exc.strerror or type(exc).__name__}")
            return ""
        if not token:
            errors.append(f"--aiven-token-file: {path} is empty")
        return token
    if not token:
        errors.append(f"--aiven-token: required (or --aiven-token-file, or {env_name('aiven-token')})")
    elif any(ch.isspace() for ch in token):
        errors.append("--aiven-token: must not contain whitespace")
    return token
