"""Valkey: one Secret per `valkey[]` entry, keys suffixed by the instance (product spec §4.3)."""

from __future__ import annotations

import re

from aivenator.domain import labels
from aivenator.domain.actions import Action, DeleteServiceUser, RequiredObject
from aivenator.domain.application import Access, AivenApplication
from aivenator.domain.facts import OpenSearchRule, ServiceFacts, ServiceType, ValkeyAccessControl
from aivenator.domain.names import NameChoice, valkey_username
from aivenator.domain.services.base import (
    ApplyInput,
    RenderError,
    SecretContent,
    SecretMeta,
    Section,
    ServiceCandidate,
    ServiceConfig,
    Target,
)
from returns.result import Failure, Result, Success

_BASE_CATEGORIES = ("-@all", "+@connection", "+@scripting", "+@pubsub", "+@transaction")
_ACCESS_CATEGORIES: dict[Access, tuple[str, ...]] = {
    Access.READ: ("+@read",),
    Access.WRITE: ("+@write",),
    Access.READWRITE: ("+@write", "+@read"),
    Access.ADMIN: ("+@admin", "+@write", "+@read"),
}
_BASE_KEYS = ("USERNAME", "PASSWORD", "URI", "HOST", "PORT")
_REPLICA_KEYS = ("REPLICA_URI", "REPLICA_HOST", "REPLICA_PORT")


#: `ServiceFacts.endpoints` purposes this handler reads.
ENDPOINT = "valkey"
REPLICA_ENDPOINT = "valkey_replica"


def _base_keys(instance: str) -> frozenset[str]:
    i = env_suffix(instance)
    return frozenset({f"VALKEY_{k}_{i}" for k in _BASE_KEYS} | {f"REDIS_{k}_{i}" for k in _BASE_KEYS})


def _replica_keys(instance: str) -> frozenset[str]:
    i = env_suffix(instance)
    return frozenset(f"VALKEY_{k}_{i}" for k in _REPLICA_KEYS)


def env_suffix(instance: str) -> str:
    """`<I>`: characters outside `[a-z0-9]` become `_`, then upper-cased."""
    return re.sub(r"[^a-z0-9]", "_", instance).upper()


def service_name(namespace: str, instance: str) -> str:
    return f"valkey-{namespace}-{instance}"


def required_object(namespace: str, service: str) -> RequiredObject:
    return RequiredObject(labels.AIVEN_IO_API_VERSION, labels.VALKEY_KIND, namespace, service)


def access_control_for(access: Access | None) -> ValkeyAccessControl:
    return ValkeyAccessControl(
        categories=_BASE_CATEGORIES + _ACCESS_CATEGORIES[access or Access.READ],
        commands=("+info", "+cluster|slots"),
        keys=("*",),
        channels=("*",),
    )


class ValkeyHandler:
    @property
    def service_type(self) -> ServiceType:
        return ServiceType.VALKEY

    def sections(self, app: AivenApplication) -> tuple[Section, ...]:
        return tuple(
            Section(ServiceType.VALKEY, v.secret_name, instance=v.instance, access=v.access)
            for v in app.valkey
        )

    def target(self, app: AivenApplication, section: Section, config: ServiceConfig) -> Target:
        name = service_name(app.namespace, section.instance)
        return Target(
            ServiceType.VALKEY,
            config.main_project,
            (ServiceCandidate(name, required_object(app.namespace, name)),),
        )

    def username(self, app: AivenApplication, section: Section, alternative: int = 0) -> NameChoice:
        return valkey_username(app.name, app.generation, section.access, alternative)

    def access_control(self, section: Section) -> ValkeyAccessControl | None:
        return access_control_for(section.access)

    def acl_rules(self, section: Section) -> tuple[OpenSearchRule, ...]:
        return ()

    def owned_data_keys(self, section: Section) -> frozenset[str]:
        return _base_keys(section.instance) | _replica_keys(section.instance)

    def required_data_keys(
        self, section: Section, facts: ServiceFacts | None = None, present: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        base = _base_keys(section.instance)
        replica = _replica_keys(section.instance)
        if facts is not None:
            has_replica = facts.endpoint(REPLICA_ENDPOINT) is not None
        else:
            # Without facts the Secret itself says whether the service had a replica: the
            # replica keys are written together, so some but not all of them is drift.
            has_replica = bool(replica & present)
        return base | replica if has_replica else base

    def owned_annotation_keys(self, section: Section) -> frozenset[str]:
        return frozenset(
            {
                labels.valkey_service_user_annotation(section.instance),
                labels.valkey_service_name_annotation(section.instance),
                labels.VALKEY_PROJECT,
            }
        )

    def timestamp_keys(self, section: Section) -> tuple[str, ...]:
        return ()

    def apply(self, inp: ApplyInput) -> Result[SecretContent, RenderError]:
        endpoint = inp.facts.endpoint(ENDPOINT)
        if endpoint is None:
            return Failure(RenderError(inp.section.key, f"Valkey service {inp.facts.name} has no endpoint"))
        i = env_suffix(inp.section.instance)
        hostport = f"{endpoint.host}:{endpoint.port}"
        data = {
            f"VALKEY_USERNAME_{i}": inp.user.username,
            f"VALKEY_PASSWORD_{i}": inp.user.password,
            f"VALKEY_URI_{i}": f"valkeys://{hostport}",
            f"VALKEY_HOST_{i}": endpoint.host,
            f"VALKEY_PORT_{i}": str(endpoint.port),
            f"REDIS_USERNAME_{i}": inp.user.username,
            f"REDIS_PASSWORD_{i}": inp.user.password,
            f"REDIS_URI_{i}": f"rediss://{hostport}",
            f"REDIS_HOST_{i}": endpoint.host,
            f"REDIS_PORT_{i}": str(endpoint.port),
        }
        replica = inp.facts.endpoint(REPLICA_ENDPOINT)
        if replica is not None:
            data[f"VALKEY_REPLICA_URI_{i}"] = f"valkeys://{replica.host}:{replica.port}"
            data[f"VALKEY_REPLICA_HOST_{i}"] = replica.host
            data[f"VALKEY_REPLICA_PORT_{i}"] = str(replica.port)
        annotations = {
            labels.valkey_service_user_annotation(inp.section.instance): inp.user.username,
            labels.valkey_service_name_annotation(inp.section.instance): inp.facts.name,
            labels.VALKEY_PROJECT: inp.facts.project,
        }
        return Success(SecretContent({k: v.encode() for k, v in data.items()}, annotations))

    def cleanup(self, secret: SecretMeta) -> tuple[Action, ...]:
        project = secret.annotations.get(labels.VALKEY_PROJECT, "")
        if not project:
            return ()
        actions: list[Action] = []
        for key, username in sorted(secret.annotations.items()):
            if not key.endswith(labels.VALKEY_SERVICE_USER_SUFFIX) or not username:
                continue
            prefix = key[: -len(labels.VALKEY_SERVICE_USER_SUFFIX)]
            service = secret.annotations.get(prefix + labels.VALKEY_SERVICE_NAME_SUFFIX, "")
            if service:
                guard = required_object(secret.namespace, service)
                actions.append(DeleteServiceUser(ServiceType.VALKEY, project, service, username, guard))
        return tuple(actions)
