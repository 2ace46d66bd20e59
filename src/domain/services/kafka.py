"""Kafka: one Secret with client certificate, key, stores and endpoints (product spec §4.1)."""

from __future__ import annotations

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
#: Stores protected by a shorter password (such as the Go operator's constant) are rebuilt with a
#: new random password instead of being reused.
MIN_REUSED_PASSWORD_LENGTH = 16

ANNOTATION_KEYS = frozenset({labels.KAFKA_SERVICE_USER, labels.KAFKA_POOL, labels.KAFKA_SERVICE_NAME})


def service_candidates(pool: str) -> tuple[str, ...]:
    """Kafka service names to try in the pool's project, in order."""
    return ("kafka", f"{pool}-kafka")


def _stores(inp: ApplyInput, cert: str, key: str) -> Result[tuple[str, bytes, bytes], str]:
    """Reuse the existing stores and password when they hold the same material; else build new ones."""
    old_password = inp.existing_data.get(CREDSTORE_PASSWORD, b"").decode("utf-8", "replace")
    old_keystore = inp.existing_data.get(KEYSTORE)
    old_truststore = inp.existing_data.get(TRUSTSTORE)
    if (
        len(old_password) >= MIN_REUSED_PASSWORD_LENGTH
        and old_keystore is not None
        and old_truststore is not None
        and keystores.keystore_holds(old_keystore, old_password, cert, key)
        and keystores.truststore_holds(old_truststore, old_password, inp.project_ca)
    ):
        return Success((old_password, old_keystore, old_truststore))
    password = inp.new_store_password or old_password
    if not password:
        return Failure("no password for new key and trust stores")
    match keystores.build_keystore(cert, key, password), keystores.build_truststore(inp.project_ca, password):
        case Success(keystore), Success(truststore):
            return Success((password, keystore, truststore))
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
