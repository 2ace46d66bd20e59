"""OpenSearch: one Secret with user, password and endpoints; ACL rules per user (spec §4.2)."""

from __future__ import annotations

from aivenator.domain import labels
from aivenator.domain.actions import Action, DeleteServiceUser, RemoveOpenSearchAcl, RequiredObject
from aivenator.domain.application import Access, AivenApplication
from aivenator.domain.facts import OpenSearchRule, ServiceFacts, ServiceType, ValkeyAccessControl
from aivenator.domain.names import NameChoice, opensearch_username
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

USERNAME = "OPEN_SEARCH_USERNAME"
PASSWORD = "OPEN_SEARCH_PASSWORD"
URI = "OPEN_SEARCH_URI"
HOST = "OPEN_SEARCH_HOST"
PORT = "OPEN_SEARCH_PORT"
DASHBOARD_URI = "OPEN_SEARCH_DASHBOARD_URI"
DASHBOARD_HOST = "OPEN_SEARCH_DASHBOARD_HOST"
DASHBOARD_PORT = "OPEN_SEARCH_DASHBOARD_PORT"

DATA_KEYS = frozenset({USERNAME, PASSWORD, URI, HOST, PORT, DASHBOARD_URI, DASHBOARD_HOST, DASHBOARD_PORT})
ANNOTATION_KEYS = frozenset(
    {labels.OPENSEARCH_SERVICE_USER, labels.OPENSEARCH_SERVICE_NAME, labels.OPENSEARCH_PROJECT}
)


def required_object(namespace: str, service: str) -> RequiredObject:
    return RequiredObject(labels.AIVEN_IO_API_VERSION, labels.OPENSEARCH_KIND, namespace, service)


class OpenSearchHandler:
    @property
    def service_type(self) -> ServiceType:
        return ServiceType.OPENSEARCH

    def sections(self, app: AivenApplication) -> tuple[Section, ...]:
        spec = app.opensearch
        if spec is None:
            return ()
        return (
            Section(ServiceType.OPENSEARCH, spec.secret_name, instance=spec.instance, access=spec.access),
        )

    def target(self, app: AivenApplication, section: Section, config: ServiceConfig) -> Target:
        names = (f"opensearch-{app.namespace}-{section.instance}", section.instance)
        return Target(
            ServiceType.OPENSEARCH,
            config.main_project,
            tuple(ServiceCandidate(n, required_object(app.namespace, n)) for n in names),
        )

    def username(self, app: AivenApplication, section: Section, alternative: int = 0) -> NameChoice:
        return opensearch_username(app.namespace, app.name, app.generation, section.access, alternative)

    def access_control(self, section: Section) -> ValkeyAccessControl | None:
        return None

    def acl_rules(self, section: Section) -> tuple[OpenSearchRule, ...]:
        permission = str(section.access or Access.READ)
        return (OpenSearchRule("_*", permission), OpenSearchRule("*", permission))

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
        return ()

    def apply(self, inp: ApplyInput) -> Result[SecretContent, RenderError]:
        endpoint = inp.facts.endpoint("opensearch")
        if endpoint is None:
            return Failure(
                RenderError(inp.section.key, f"OpenSearch service {inp.facts.name} has no endpoint")
            )
        dashboard = inp.facts.endpoint("opensearch_dashboards")
        data = {
            USERNAME: inp.user.username,
            PASSWORD: inp.user.password,
            URI: f"https://{endpoint.host}:{endpoint.port}",
            HOST: endpoint.host,
            PORT: str(endpoint.port),
            DASHBOARD_URI: f"https://{dashboard.host}:{dashboard.port}" if dashboard else "",
            DASHBOARD_HOST: dashboard.host if dashboard else "",
            DASHBOARD_PORT: str(dashboard.port) if dashboard else "0",
        }
        annotations = {
            labels.OPENSEARCH_SERVICE_USER: inp.user.username,
            labels.OPENSEARCH_SERVICE_NAME: inp.facts.name,
            labels.OPENSEARCH_PROJECT: inp.facts.project,
        }
        return Success(SecretContent({k: v.encode() for k, v in data.items()}, annotations))

    def cleanup(self, secret: SecretMeta) -> tuple[Action, ...]:
        username = secret.annotations.get(labels.OPENSEARCH_SERVICE_USER, "")
        service = secret.annotations.get(labels.OPENSEARCH_SERVICE_NAME, "")
        project = secret.annotations.get(labels.OPENSEARCH_PROJECT, "")
        if not (username and service and project):
            return ()
        guard = required_object(secret.namespace, service)
        return (
            RemoveOpenSearchAcl(project, service, username, guard),
            DeleteServiceUser(ServiceType.OPENSEARCH, project, service, username, guard),
        )
