"""Expired applications and the next time-driven wake-up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aivenator.domain.application import AivenApplication
from aivenator.domain.expiry import expired, next_wakeup, renewal_time, worth_scheduling
from aivenator.domain.parse import parse_application
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from tests.unit.workload_strategies import moments, raw_applications

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def app(name: str, expires_at: str | None = None, namespace: str = "team-a") -> AivenApplication:
    spec: dict[str, Any] = {"kafka": {"pool": "dev-nais-dev", "secretName": f"{name}-kafka"}}
    if expires_at is not None:
        spec["expiresAt"] = expires_at
    raw = {"metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": spec}
    parsed = parse_application(raw, frozenset({"dev-nais-dev"}))
    assert isinstance(parsed, Success), parsed
    parsed_app: AivenApplication = parsed.unwrap().app
    return parsed_app


def test_an_application_past_its_expiry_is_expired() -> None:
    apps = [
        app("past", "2026-06-01T11:59:59Z"),
        app("exactly-now", "2026-06-01T12:00:00Z"),
        app("future", "2026-06-01T12:00:01Z"),
        app("forever"),
    ]
    assert expired(apps, NOW) == (("team-a", "exactly-now"), ("team-a", "past"))


def test_an_application_already_being_deleted_is_not_expired_again() -> None:
    going = replace(app("past", "2026-01-01T00:00:00Z"), deletion_requested=True)
    assert expired([going], NOW) == ()


def test_the_next_wakeup_is_the_earliest_future_expiry() -> None:
    apps = [
        app("a", "2026-06-03T00:00:00Z"),
        app("b", "2026-06-02T00:00:00Z"),
        app("past", "2026-05-01T00:00:00Z"),
    ]
    assert next_wakeup(apps, NOW) == datetime(2026, 6, 2, tzinfo=UTC)


def test_nothing_to_wait_for_gives_none() -> None:
    assert next_wakeup([app("forever"), app("past", "2026-05-01T00:00:00Z")], NOW) is None
    assert next_wakeup([], NOW, {}, timedelta(days=7)) is None


def test_a_certificate_wakes_the_operator_when_its_renewal_window_opens() -> None:
    certs = {("team-a", "app-kafka"): datetime(2026, 6, 20, tzinfo=UTC)}
    wakeup = next_wakeup([app("a", "2026-07-01T00:00:00Z")], NOW, certs, timedelta(days=14))
    assert (
        wakeup
        == datetime(2026, 6, 6, tzinfo=UTC)
        == renewal_time(datetime(2026, 6, 20, tzinfo=UTC), timedelta(days=14))
    )


def test_a_renewal_window_that_is_already_open_is_not_a_future_wakeup() -> None:
    certs = {"s": datetime(2026, 6, 5, tzinfo=UTC)}
    assert next_wakeup([], NOW, certs, timedelta(days=14)) is None


@settings(max_examples=60)
@given(
    st.lists(
        raw_applications(),
        max_size=6,
        unique_by=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"]),
    ),
    moments,
    st.dictionaries(st.integers(0, 5), moments, max_size=3),
)
def test_the_wakeup_is_in_the_future_and_no_candidate_comes_before_it(
    raws: list[dict[str, Any]], now: datetime, certs: dict[int, datetime]
) -> None:
    apps = [
        r.unwrap().app
        for r in (parse_application(raw, frozenset({"dev-nais-dev"})) for raw in raws)
        if isinstance(r, Success)
    ]
    window = timedelta(days=3)
    wakeup = next_wakeup(apps, now, certs, window)
    candidates = [a.expires_at for a in apps if a.expires_at is not None and a.expires_at > now]
    candidates += [c - window for c in certs.values() if c - window > now]
    assert wakeup == (min(candidates) if candidates else None)
    assert wakeup is None or wakeup > now
    for a in apps:
        is_expired = (a.namespace, a.name) in expired(apps, now)
        assert is_expired == (a.expires_at is not None and a.expires_at <= now)


def test_a_wakeup_beyond_the_next_resync_is_left_to_the_resync() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert worth_scheduling(None, now, hour) is None
    assert worth_scheduling(now + timedelta(days=300), now, hour) is None  # a renewal months away
    assert worth_scheduling(now + hour, now, hour) == now + hour  # the last resync before it sets it
    assert worth_scheduling(now + timedelta(minutes=5), now, hour) == now + timedelta(minutes=5)
