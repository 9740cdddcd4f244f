"""The filter value and the rollup window arithmetic: UTC once, and windows covered exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.filters import Filters, to_utc
from db.windows import split_window

T = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_times_are_normalised_to_utc_once() -> None:
    plus_two = timezone(timedelta(hours=2))
    filters = Filters(since=datetime(2025, 3, 1, 14, 0, tzinfo=plus_two), until=datetime(2025, 3, 2))
    assert filters.since == T and filters.since.tzinfo == UTC
    assert filters.until == datetime(2025, 3, 2, tzinfo=UTC)  # naive means UTC


@pytest.mark.parametrize(
    "edge",
    [
        datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_a_time_outside_the_range_of_dates_in_utc_is_refused(edge: datetime) -> None:
    with pytest.raises(ValueError, match="outside the range of dates"):
        to_utc(edge)
    with pytest.raises(ValueError):
        Filters(since=edge)


def test_an_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError, match="platform"):
        Filters(platform="myspace")


def test_whole_hours_come_from_the_rollups_and_the_ends_from_the_rows() -> None:
    window = split_window(Filters(since=T + timedelta(minutes=20), until=T + timedelta(hours=3, minutes=10)))
    assert window.hours == (T + timedelta(hours=1), T + timedelta(hours=3))
    assert window.rows == [
        (T + timedelta(minutes=20), T + timedelta(hours=1)),
        (T + timedelta(hours=3), T + timedelta(hours=3, minutes=10)),
    ]


def test_a_batch_or_a_window_inside_one_hour_comes_from_the_rows() -> None:
    assert split_window(Filters(batch_id=3)).hours is None
    inside = Filters(since=T + timedelta(minutes=5), until=T + timedelta(minutes=50))
    assert split_window(inside).hours is None and split_window(inside).rows == [(inside.since, inside.until)]


def test_an_open_window_is_all_rollup() -> None:
    window = split_window(Filters())
    assert window.hours == (None, None) and window.rows == []
