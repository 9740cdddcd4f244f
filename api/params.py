"""Query-string parsing: a bad value is a 400 naming the parameter, never a silent default."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime

from flask import request
from werkzeug.routing import IntegerConverter, Map

from api.context import settings
from api.errors import ApiError
from core.filters import Filters, to_utc
from core.vocabulary import PLATFORMS

# Ids are 32-bit INTEGER columns: a larger value could never match, and Postgres rejects it.
MAX_ID = 2**31 - 1
DIGITS = re.compile(r"[0-9]+")
# "...T12:00:00+02:00" sent unencoded arrives as "...T12:00:00 02:00" (a query-string "+" is a space).
SPACE_FOR_PLUS = re.compile(r"([T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name}: {message}")


def raw_arg(name: str) -> str | None:
    """The parameter's value; absent and empty (`?platform=`) both mean "not given"."""
    value = request.args.get(name)
    return value if value not in (None, "") else None


class IdConverter(IntegerConverter):
    """`<id:name>` in routes: a positive id that fits the column; anything else is a 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def int_arg(name: str) -> int | None:
    """A positive integer parameter (ids, pages, sizes), or None when absent."""
    raw = raw_arg(name)
    if raw is None:
        return None
    if not DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_ID:
        raise invalid(name, f"must be an integer from 1 to {MAX_ID}")
    return int(raw)


def page_size_arg(name: str) -> int:
    """A page size: the configured default when absent, capped at the configured maximum."""
    config = settings()
    return min(int_arg(name) or config.page_size, config.max_page_size)


def choice_arg(name: str, choices: Collection[str]) -> str | None:
    raw = raw_arg(name)
    if raw is not None and raw not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}")
    return raw


def parse_datetime(value: str) -> datetime:
    """ISO 8601 date or datetime, as an aware UTC datetime; no offset means UTC. ValueError if invalid."""
    return to_utc(datetime.fromisoformat(SPACE_FOR_PLUS.sub(r"\1+\2", value)))


def datetime_arg(name: str) -> datetime | None:
    raw = raw_arg(name)
    if raw is None:
        return None
    try:
        return parse_datetime(raw)
    except ValueError as exc:
        reason = str(exc) if "range of dates" in str(exc) else "must be an ISO 8601 date or datetime"
        raise invalid(name, f"{reason}, e.g. 2025-01-31 or 2025-01-31T12:00:00Z") from None


def filters_arg(prefix: str = "") -> Filters:
    """The filters every listing and aggregate shares, as the one value `db.queries` takes.

    `prefix` reads a named set of them (`a.platform`, `a.batch_id`, ...), as /compare does.
    """
    return Filters(
        platform=choice_arg(f"{prefix}platform", PLATFORMS),
        batch_id=int_arg(f"{prefix}batch_id"),
        since=datetime_arg(f"{prefix}since"),
        until=datetime_arg(f"{prefix}until"),
    )
