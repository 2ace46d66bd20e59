"""Kafka: one Secret with client certificate, key, stores and endpoints (product spec §4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aivenator.domain import keystores, labels
from aivenator.domain.actions import Action, DeleteServiceUser
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import OpenSearchRule, ServiceFacts, ServiceType, ValkeyAccessControl
from aivenator.domain.names import NameChoice, kafka_username
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

CERTIFICATE = "KAFKA_CERTIFICATE"
PRIVATE_KEY = "KAFKA_PRIVATE_KEY"
CA = "KAFKA_CA"
BROKERS = "KAFKA_BROKERS"
SCHEMA_REGISTRY = "KAFKA_SCHEMA_REGISTRY"
SCHEMA_REGISTRY_USER = "KAFKA_SCHEMA_REGISTRY_USER"
SCHEMA_REGISTRY_PASSWORD = "KAFKA_SCHEMA_REGISTRY_PASSWORD"
CREDSTORE_PASSWORD = "KAFKA_CREDSTORE_PASSWORD"
SECRET_UPDATED = "KAFKA_SECRET_UPDATED"
KEYSTORE = "client.keystore.p12"
TRUSTSTORE = "client.truststore.jks"

DATA_KEYS = frozenset(
    {
        CERTIFICATE,
        PRIVATE_KEY,
        CA,
        BROKERS,
        SCHEMA_REGISTRY,
        SCHEMA_REGISTRY_USER,
        SCHEMA_REGISTRY_PASSWORD,
        CREDSTORE_PASSWORD,
        SECRET_UPDATED,
        KEYSTORE,
        TRUSTSTORE,
    }
)
ANNOTATION_KEYS = frozenset({labels.KAFKA_SERVICE_USER, labels.KAFKA_POOL, labels.KAFKA_SERVICE_NAME})


def service_candidates(pool: str) -> tuple[str, ...]:
    """Kafka service names to try in the pool's project, in order."""
    return ("kafka", f"{pool}-kafka")


@dataclass(frozen=True, slots=True)
class StorePlan:
    """Which key/trust stores to keep and under which password; None means build it anew."""

    password: str
    keystore: bytes | None
    truststore: bytes | None
    #: Why the password is what it is (for tests and logs; never contains a secret).
    reason: str


def plan_stores(
    existing_data: Mapping[str, bytes], cert: str, key: str, ca: str, new_password: str
) -> StorePlan:
    """Keep the Secret's stores and password unless the credentials they protect changed.

    A purely computational function. Stores that open with the Secret's current
    `KAFKA_CREDSTORE_PASSWORD` and hold exactly this certificate/key (keystore) and CA
    (truststore) are kept byte for byte, whatever the password looks like (the Go operator's
    constant `changeme` included): pods that read the password from the environment and the
    stores from a mounted volume must never see one change without the other. When the
    credentials are the same but a store must be rebuilt (the CA rotated, a store was damaged),
    the old password is kept too. A new password (`new_password`, drawn by the shell) comes only
    with new credentials (a new user or certificate), when pods restart anyway.
    """
    old_password = existing_data.get(CREDSTORE_PASSWORD, b"").decode("utf-8", "replace")
    old_keystore = existing_data.get(KEYSTORE)
    old_truststore = existing_data.get(TRUSTSTORE)
    keystore_ok = bool(old_password) and (
        old_keystore is not None and keystores.keystore_holds(old_keystore, old_password, cert, key)
    )
    truststore_ok = bool(old_password) and (
        old_truststore is not None and keystores.truststore_holds(old_truststore, old_password, ca)
    )
    if keystore_ok and truststore_ok:
        return StorePlan(old_password, old_keystore, old_truststore, "stores hold the current credentials")
    same_credentials = keystore_ok or (
        existing_data.get(CERTIFICATE) == cert.encode() and existing_data.get(PRIVATE_KEY) == key.encode()
    )
    if same_credentials and old_password:
        return StorePlan(
            old_password,
            old_keystore if keystore_ok else None,
            old_truststore if truststore_ok else None,
            "same credentials: stores rebuilt under the existing password",
        )
    return StorePlan(new_password or old_password, None, None, "new credentials: new password")


def _stores(inp: ApplyInput, cert: str, key: str) -> Result[tuple[str, bytes, bytes], str]:
    plan = plan_stores(inp.existing_data, cert, key, inp.project_ca, inp.new_store_password)
    if not plan.password:
        return Failure("no password for new key and trust stores")
    keystore: Result[bytes, str] = (
        Success(plan.keystore)
        if plan.keystore is not None
        else keystores.build_keystore(cert, key, plan.password)
    )
    truststore: Result[bytes, str] = (
        Success(plan.truststore)
        if plan.truststore is not None
        else keystores.build_truststore(inp.project_ca, plan.password)
    )
    match keystore, truststore:
        case Success(built_keystore), Success(built_truststore):
            return Success((plan.password, built_keystore, built_truststore))
        case Failure(reason), _:
            return Failure(reason)
        case _, Failure(reason):
            return Failure(reason)
    return Failure("unreachable")  # pragma: no cover


class KafkaHandler:
    @property
    def service_type(self) -> ServiceType:
        return ServiceType.KAFKA

    def sections(self, app: AivenApplication) -> tuple[Section, ...]:
        if app.kafka is None:
            return ()
        return (Section(ServiceType.KAFKA, app.kafka.secret_name, pool=app.kafka.pool),)

    def target(self, app: AivenApplication, section: Section, config: ServiceConfig) -> Target:
        return Target(
            ServiceType.KAFKA,
            section.pool,
            tuple(ServiceCandidate(name) for name in service_candidates(section.pool)),
        )

    def username(self, app: AivenApplication, section: Section, alternative: int = 0) -> NameChoice:
        return kafka_username(app.namespace, app.name, app.generation, alternative)

    def access_control(self, section: Section) -> ValkeyAccessControl | None:
        return None

    def acl_rules(self, section: Section) -> tuple[OpenSearchRule, ...]:
        return ()

    def owned_data_keys(self, section: Section) -> frozenset[str]:
        return DATA_KEYS

    def required_data_keys(
        self, section: Section, facts: ServiceFacts | None = None, present: frozenset[str] = frozenset()
    ) -> frozenset[str]:
        # Every key is written whatever the service offers (absent endpoints give empty values).
        return DATA_KEYS

    def owned_annotation_keys(self, section: Section) -> frozenset[str]:
        return ANNOTATION_KEYS

    def timestamp_keys(self, section: Section) -> tuple[str, ...]:
        return (SECRET_UPDATED,)

    def apply(self, inp: ApplyInput) -> Result[SecretContent, RenderError]:
        key = inp.section.key
        cert, private_key = inp.user.access_cert, inp.user.access_key
        if not cert or not private_key:
            return Failure(
                RenderError(key, f"Kafka user {inp.user.username} has no client certificate and key")
            )
        brokers = inp.facts.endpoint("kafka")
        if brokers is None:
            return Failure(RenderError(key, f"Kafka service {inp.facts.name} has no certificate listener"))
        registry = inp.facts.endpoint("schema_registry")
        match _stores(inp, cert, private_key):
            case Success((password, keystore, truststore)):
                pass
            case Failure(reason):
                return Failure(RenderError(key, reason))
        data = {
            CERTIFICATE: cert.encode(),
            PRIVATE_KEY: private_key.encode(),
            CA: inp.project_ca.encode(),
            BROKERS: f"{brokers.host}:{brokers.port}".encode(),
            SCHEMA_REGISTRY: (f"https://{registry.host}:{registry.port}" if registry else "").encode(),
            SCHEMA_REGISTRY_USER: inp.user.username.encode(),
            SCHEMA_REGISTRY_PASSWORD: inp.user.password.encode(),
            CREDSTORE_PASSWORD: password.encode(),
            KEYSTORE: keystore,
            TRUSTSTORE: truststore,
        }
        annotations = {
            labels.KAFKA_SERVICE_USER: inp.user.username,
            labels.KAFKA_POOL: inp.facts.project,
            labels.KAFKA_SERVICE_NAME: inp.facts.name,
        }
        return Success(SecretContent(data, annotations))

    def cleanup(self, secret: SecretMeta) -> tuple[Action, ...]:
        username = secret.annotations.get(labels.KAFKA_SERVICE_USER, "")
        pool = secret.annotations.get(labels.KAFKA_POOL, "")
        if not username or not pool:
            return ()
        service = secret.annotations.get(labels.KAFKA_SERVICE_NAME, "")
        # Secrets from the Go operator do not record the service: try every candidate (a missing
        # service or user counts as already cleaned up).
        services = (service,) if service else service_candidates(pool)
        return tuple(DeleteServiceUser(ServiceType.KAFKA, pool, s, username) for s in services)
