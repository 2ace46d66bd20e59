"""The ensure-user decisions: create first, read only when needed (aivenator.domain.user_ensure)."""

from __future__ import annotations

import pytest
from aivenator.domain.facts import AivenError, Conflict, NotFound, Rejected, Throttled, Unavailable
from aivenator.domain.user_ensure import EnsureStep, after_create, after_read, first_step
from hypothesis import given
from hypothesis import strategies as st


@given(st.text(min_size=1), st.frozensets(st.text(min_size=1)))
def test_an_unknown_user_is_created_a_known_one_read(username: str, known: frozenset[str]) -> None:
    expected = EnsureStep.READ if username in known else EnsureStep.CREATE
    assert first_step(username, known) is expected
    assert first_step(username, known | {username}) is EnsureStep.READ
    assert first_step(username, known - {username}) is EnsureStep.CREATE


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (None, EnsureStep.USE),
        (Conflict("exists"), EnsureStep.ADOPT),
        (Unavailable("timed out"), EnsureStep.BACK_OFF_AND_READ),  # may have committed: never re-POST
        (Unavailable("503", retry_after=2.0), EnsureStep.BACK_OFF_AND_READ),
        (Throttled(1.0), EnsureStep.FAIL),  # nothing was created: the caller retries later
        (Rejected("bad name"), EnsureStep.FAIL),
        (NotFound("Service kafka does not exist"), EnsureStep.FAIL),
    ],
)
def test_after_create(error: AivenError | None, step: EnsureStep) -> None:
    assert after_create(error) is step


@pytest.mark.parametrize(
    ("error", "step"),
    [
        (None, EnsureStep.USE),
        (NotFound("no such user"), EnsureStep.CREATE),
        (Unavailable("503"), EnsureStep.FAIL),  # the read itself was already retried
        (Throttled(1.0), EnsureStep.FAIL),
        (Rejected("forbidden", status=403), EnsureStep.FAIL),
        (Conflict("?"), EnsureStep.FAIL),
    ],
)
def test_after_read(error: AivenError | None, step: EnsureStep) -> None:
    assert after_read(error) is step


def test_no_outcome_of_a_create_leads_to_another_create() -> None:
    errors: list[AivenError | None] = [
        None,
        Conflict(""),
        Unavailable(""),
        Throttled(0.0),
        Rejected(""),
        NotFound(""),
    ]
    assert all(after_create(e) is not EnsureStep.CREATE for e in errors)
