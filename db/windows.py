"""Rollup window arithmetic: which part of a time window the hourly rollups can count.

The rollups (image_hours, face_hours) count whole UTC hours; a window [since, until) is
split into the whole hours inside it, read from a rollup, and the partial hours at its
ends (under an hour each), read from the rows. Together they cover the window once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from core.filters import Filters

ONE_HOUR = timedelta(hours=1)
Range = tuple[datetime | None, datetime | None]  # [since, until), either end open when None


def as_utc(value: datetime | str | None) -> datetime | None:
    """An aware UTC datetime from what either database hands back (SQLite: naive, or text from strftime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor_hour(value: datetime) -> datetime:
    """The start of the UTC hour `value` falls in."""
    return as_utc(value).replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime | None:
    """The first UTC hour start at or after `value`; None in the last hour a datetime can hold."""
    start = floor_hour(value)
    if start == as_utc(value):
        return start
    return None if datetime.max.replace(tzinfo=UTC) - start < ONE_HOUR else start + ONE_HOUR


def time_range(time_column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    """`since` is inclusive and `until` exclusive."""
    clauses: list[ColumnElement[bool]] = []
    if since is not None:
        clauses.append(time_column >= since)
    if until is not None:
        clauses.append(time_column < until)
    return clauses


def within(time_column: Any, ranges: list[Range]) -> list[ColumnElement[bool]]:
    """`time_column` in any of `ranges` (each bounded, or the only one)."""
    if len(ranges) == 1:
        return time_range(time_column, *ranges[0])
    return [or_(*(and_(*time_range(time_column, since, until)) for since, until in ranges))]


@dataclass(frozen=True)
class Window:
    """How a count over [since, until) is split: `hours` from a rollup (None: not at all), `rows` from the table."""

    hours: Range | None
    rows: list[Range]


def split_window(filters: Filters) -> Window:
    """Whole hours from the rollups; a batch (at most 1000 images, the rollups do not know
    batches), a choice of faces (the rollups know neither face sizes nor abstentions) or a
    window shorter than its whole hours comes from the rows alone."""
    since, until = filters.since, filters.until
    if filters.batch_id is not None or filters.chooses_faces:
        return Window(None, [(since, until)])
    first = None if since is None else ceil_hour(since)
    last = None if until is None else floor_hour(until)
    if (since is not None and first is None) or (first is not None and last is not None and first >= last):
        return Window(None, [(since, until)])
    rows: list[Range] = []
    if since is not None and first is not None and since < first:
        rows.append((since, first))
    if until is not None and last is not None and last < until:
        rows.append((last, until))
    return Window((first, last), rows)
