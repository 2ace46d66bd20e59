"""What the simulator starts with: projects -> services, from code or from a YAML/JSON file.

File format (YAML or JSON, same structure)::

    projects:
      dev-nais-dev:
        services:
          kafka: {type: kafka}                    # schema_registry defaults to true
          opensearch-team-a-logs: {type: opensearch, dashboards: true}
          valkey-team-a-cache: {type: valkey, replica: true}
          valkey-team-a-slow: {type: valkey, state: REBUILDING}
          some-kafka: {type: kafka, users: [existing_user]}   # extra pre-existing users
      nav-prod:
        services:
          nav-prod-kafka: {type: kafka, schema_registry: false}

Service keys: `type` (kafka | opensearch | valkey, required), `state` (default RUNNING),
`replica` (valkey, default false), `schema_registry` (kafka, default true), `dashboards`
(opensearch, default true), `users` (list of extra regular usernames, default none).
A project may be given with no services (`nav-dev: {}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

SERVICE_TYPES = ("kafka", "opensearch", "valkey")
_SERVICE_KEYS = {"type", "state", "replica", "schema_registry", "dashboards", "users"}


@dataclass(frozen=True)
class ServiceSeed:
    name: str
    service_type: str
    state: str = "RUNNING"
    replica: bool = False
    schema_registry: bool = True
    dashboards: bool = True
    users: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectSeed:
    name: str
    services: tuple[ServiceSeed, ...] = ()


@dataclass(frozen=True)
class Seed:
    projects: tuple[ProjectSeed, ...] = ()

    @classmethod
    def from_mapping(cls, data: object) -> Seed:
        """Build a seed from parsed YAML/JSON; raises ValueError with a readable reason."""
        if not isinstance(data, Mapping):
            raise ValueError("seed: top level must be a mapping with a 'projects' key")
        unknown = set(data) - {"projects"}
        if unknown:
            raise ValueError(f"seed: unknown top-level keys {sorted(unknown)}")
        projects_raw = _or_empty(data.get("projects"), {})
        if not isinstance(projects_raw, Mapping):
            raise ValueError("seed: 'projects' must be a mapping of project name -> project")
        projects = []
        for pname, praw in projects_raw.items():
            if not isinstance(pname, str) or not pname:
                raise ValueError("seed: project names must be non-empty strings")
            praw = _or_empty(praw, {})
            if not isinstance(praw, Mapping) or set(praw) - {"services"}:
                raise ValueError(f"seed: project {pname!r} must be a mapping with an optional 'services' key")
            services_raw = _or_empty(praw.get("services"), {})
            if not isinstance(services_raw, Mapping):
                raise ValueError(f"seed: project {pname!r}: 'services' must be a mapping")
            services = tuple(_service(pname, sname, sraw) for sname, sraw in services_raw.items())
            projects.append(ProjectSeed(name=pname, services=services))
        return cls(projects=tuple(projects))

    def to_mapping(self) -> dict[str, object]:
        """The file form of this seed (round-trips through `from_mapping`)."""
        return {
            "projects": {
                p.name: {
                    "services": {
                        s.name: {
                            "type": s.service_type,
                            "state": s.state,
                            "replica": s.replica,
                            "schema_registry": s.schema_registry,
                            "dashboards": s.dashboards,
                            "users": list(s.users),
                        }
                        for s in p.services
                    }
                }
                for p in self.projects
            }
        }


def _or_empty(value: object, empty: object) -> object:
    """YAML gives None for an empty key (`services:`); only that means empty, not [] or ""."""
    return empty if value is None else value


def _service(project: str, name: object, raw: object) -> ServiceSeed:
    where = f"seed: service {project}/{name}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"seed: project {project!r}: service names must be non-empty strings")
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: must be a mapping with at least 'type'")
    unknown = set(raw) - _SERVICE_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    stype = raw.get("type")
    if stype not in SERVICE_TYPES:
        raise ValueError(f"{where}: 'type' must be one of {', '.join(SERVICE_TYPES)}")
    state = raw.get("state", "RUNNING")
    if not isinstance(state, str) or not state:
        raise ValueError(f"{where}: 'state' must be a non-empty string")
    flags: dict[str, bool] = {}
    for key, default in (("replica", False), ("schema_registry", True), ("dashboards", True)):
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {key!r} must be true or false")
        flags[key] = value
    users = _or_empty(raw.get("users"), [])
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise ValueError(f"{where}: 'users' must be a list of usernames")
    return ServiceSeed(
        name=name,
        service_type=str(stype),
        state=state,
        replica=flags["replica"],
        schema_registry=flags["schema_registry"],
        dashboards=flags["dashboards"],
        users=tuple(users),
    )


def load_seed(path: str | Path) -> Seed:
    """Read a seed file; `.json` is parsed as JSON, anything else as YAML (a superset of JSON)."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return Seed.from_mapping(data)


#: The documented default seed (see the package docstring).
DEFAULT_SEED = Seed(
    projects=(
        ProjectSeed(
            name="dev-nais-dev",
            services=(
                ServiceSeed("kafka", "kafka", schema_registry=True),
                ServiceSeed("opensearch-team-a-logs", "opensearch"),
                ServiceSeed("legacy-search", "opensearch", dashboards=False),
                ServiceSeed("valkey-team-a-cache", "valkey", replica=True),
                ServiceSeed("valkey-team-a-sessions", "valkey", replica=False),
            ),
        ),
        ProjectSeed(
            name="nav-prod",
            services=(ServiceSeed("nav-prod-kafka", "kafka", schema_registry=True),),
        ),
    )
)
