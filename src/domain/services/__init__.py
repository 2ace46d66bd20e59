"""The registry of service handlers.

Adding a service is one handler module and one line in `SERVICES` for everything the handler
protocol covers (sections, targets, names, access, Secret content, required keys, cleanup). It is
not yet only that: `aivenator.domain.facts.ServiceType` is a closed enum that the shell iterates, constructs
from Aiven's `service_type` and compares by identity, so it needs a member too, and some rules
still branch on it outside the handlers: ownership and scheme checks (`aivenator.domain.names`), the
finalizer's namespace proof (`aivenator.domain.finalizer`), drift checks on annotations and condition types
(`aivenator.domain.sync`), endpoint purposes and credential completeness (`aivenator.adapters.aiven_wire`), and the
shell's Kafka-only paths. Turning ServiceType into handler-declared strings would break those
users (including `entrypoints`), so it is left as an enum on purpose.
"""

from __future__ import annotations

from aivenator.domain.actions import Action
from aivenator.domain.application import AivenApplication
from aivenator.domain.facts import ServiceType
from aivenator.domain.services.base import SecretMeta, Section, ServiceHandler
from aivenator.domain.services.kafka import KafkaHandler
from aivenator.domain.services.opensearch import OpenSearchHandler
from aivenator.domain.services.valkey import ValkeyHandler

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
    finalizer applies `aivenator.domain.names.owner_matches` and each action's `requires`)."""
    return tuple(a for h in SERVICES for a in h.cleanup(secret))
