"""The registry of service handlers. Adding a service: one module, one line in `SERVICES`."""

from __future__ import annotations

from domain.actions import Action
from domain.application import AivenApplication
from domain.facts import ServiceType
from domain.services.base import SecretMeta, Section, ServiceHandler
from domain.services.kafka import KafkaHandler
from domain.services.opensearch import OpenSearchHandler
from domain.services.valkey import ValkeyHandler

SERVICES: tuple[ServiceHandler, ...] = (KafkaHandler(), OpenSearchHandler(), ValkeyHandler())


def handler_for(service_type: ServiceType) -> ServiceHandler:
    for handler in SERVICES:
        if handler.service_type is service_type:
            return handler
    raise KeyError(service_type)  # a bug: every ServiceType has a handler


def all_sections(app: AivenApplication) -> tuple[tuple[ServiceHandler, Section], ...]:
    """Every (handler, section) of `app`, in registry order."""
    return tuple((h, s) for h in SERVICES for s in h.sections(app))


def cleanup_actions(secret: SecretMeta) -> tuple[Action, ...]:
    """Every Aiven clean-up a Secret's annotations ask for, across all services (unchecked: the
    finalizer applies `domain.names.owner_matches` and each action's `requires`)."""
    return tuple(a for h in SERVICES for a in h.cleanup(secret))
