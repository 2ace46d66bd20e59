"""Ensuring an Aiven service user: which request comes next, decided from what is known.

Create first, read only when needed: a user whose name is not among the service's known users
is created with one POST (whose answer carries the credentials); a user the service is known to
have is read. A 409 means it exists after all (another worker, process or an earlier try made
it): adopt it by reading. A failure after the create may have reached Aiven (timeout, dropped
connection, 5xx) is ambiguous: read next, never repeat the POST blindly, so a create that
committed leaves exactly one user. A read answering 404 means the user is not there: create it.
Anything else (throttled, rejected) is the answer.

The adapter executes these steps; this module only decides them (no I/O).
"""

from __future__ import annotations

from collections.abc import Container
from enum import Enum

from aivenator.domain.facts import AivenError, Conflict, NotFound, Unavailable


class EnsureStep(Enum):
    CREATE = "create"  # POST the user
    READ = "read"  # GET the user
    USE = "use"  # the last answer carries the user: use it (completing lagging credentials)
    ADOPT = "adopt"  # the user exists (409): read it, tolerating the API's short lag
    BACK_OFF_AND_READ = "back_off_and_read"  # ambiguous failure: wait, then read (round used up)
    FAIL = "fail"  # answer with the last error


def first_step(username: str, known_usernames: Container[str]) -> EnsureStep:
    """Create unless the service is known to have the user already."""
    return EnsureStep.READ if username in known_usernames else EnsureStep.CREATE


def after_read(error: AivenError | None) -> EnsureStep:
    """Next step after a GET of the user answered `error` (None: it answered the user)."""
    if error is None:
        return EnsureStep.USE
    if isinstance(error, NotFound):
        return EnsureStep.CREATE
    return EnsureStep.FAIL


def after_create(error: AivenError | None) -> EnsureStep:
    """Next step after a POST of the user answered `error` (None: it answered the user)."""
    if error is None:
        return EnsureStep.USE
    if isinstance(error, Conflict):
        return EnsureStep.ADOPT
    if isinstance(error, Unavailable):
        return EnsureStep.BACK_OFF_AND_READ
    return EnsureStep.FAIL
