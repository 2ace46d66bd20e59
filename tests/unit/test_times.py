from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from aivenator.domain.times import format_time, parse_time


def test_format_is_utc_seconds_with_z_and_naive_means_utc() -> None:
    oslo = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 11, 27, 13, 0, 0, 999_999, tzinfo=oslo)) == "2026-11-27T12:00:00Z"
    assert format_time(datetime(2026, 11, 27, 12, 0, 0)) == "2026-11-27T12:00:00Z"


@pytest.mark.parametrize(
    "text",
    ["2026-11-27T12:00:00Z", "2026-11-27T12:00:00z", " 2026-11-27T13:00:00+01:00 ", "2026-11-27T12:00:00"],
)
def test_parse_reads_what_the_api_server_and_we_write(text: str) -> None:
    assert parse_time(text) == datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "  ", "yesterday", 1700000000, "2026-13-01T00:00:00Z"])
def test_parse_gives_none_for_anything_else(value: object) -> None:
    assert parse_time(value) is None


def test_round_trip() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time(format_time(moment)) == moment
