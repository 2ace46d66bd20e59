"""Which Aiven service a section uses (product spec section 2), one candidate at a time.

A purely computational module. A section's `Target` lists candidate service names in order;
the shell looks each one up lazily (the gating `aiven.io` object first, then the Aiven service)
and asks here what the observation means: use this service, try the next candidate, or note
why the candidate is not usable yet. `no_usable_service` words the wait when none is usable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aivenator.domain.facts import ServiceFacts
from aivenator.domain.services.base import ServiceCandidate, Target


@dataclass(frozen=True, slots=True)
class LookUp:
    """Look the candidate up at Aiven."""


@dataclass(frozen=True, slots=True)
class Use:
    facts: ServiceFacts


@dataclass(frozen=True, slots=True)
class Skip:
    """Not this candidate; `waiting` says why it is not usable yet (empty: it does not exist)."""

    waiting: str = ""


ObjectGate = LookUp | Skip
ServiceGate = Use | Skip


def gate_on_object(candidate: ServiceCandidate, namespace: str, state: str | None) -> ObjectGate:
    """The candidate's required `aiven.io` object was found in `namespace` with `state` (None: no
    such object). Only a RUNNING object lets the candidate be looked up."""
    required = candidate.required_object
    if required is None:
        return LookUp()
    if state is None:
        return Skip()
    if state != "RUNNING":
        return Skip(f"{required.kind} {required.name} in namespace {namespace} is {state or 'not reporting a state'}")
    return LookUp()


def gate_on_service(found: ServiceFacts | None) -> ServiceGate:
    """Aiven returned `found` for the candidate (None: no such service)."""
    if found is None:
        return Skip()
    if not found.usable:
        return Skip(f"Aiven service {found.name} is {found.state}")
    return Use(found)


def no_usable_service(target: Target, namespace: str, waiting: Sequence[str]) -> str:
    """Why the section waits when no candidate was usable."""
    if waiting:
        return "; ".join(waiting)
    names = ", ".join(c.service for c in target.candidates)
    kinds = {c.required_object.kind for c in target.candidates if c.required_object is not None}
    where = f" ({'/'.join(sorted(kinds))} object in namespace {namespace})" if kinds else ""
    return f"no usable {target.service_type} service {names} in project {target.project}{where}"
