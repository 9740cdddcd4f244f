"""Query-string parsing: a bad value is a 400 naming the parameter, never a silent default."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter, Map

from api.context import settings
from api.errors import ApiError
from db import PLATFORMS

# Ids are 32-bit INTEGER columns: a larger value could never match, and Postgres rejects it.
MAX_ID = 2**31 - 1
DIGITS = re.compile(r"[0-9]+")
# Filters must stay a day inside Python's datetime range, so no offset or hour rounding can overflow.
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
# "...T12:00:00+02:00" sent unencoded arrives as "...T12:00:00 02:00" (a query-string "+" is a space).
SPACE_FOR_PLUS = re.compile(r"([T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name}: {message}")


def raw_arg(name: str) -> str | None:
    """The parameter's value; absent and empty (`?platform=`) both mean "not given"."""
    value = request.args.get(name)
    return value if value not in (None, "") else None


class InvalidPathId(BadRequest):
    """A path id spelled in digits other than ASCII's (`/batches/١`): a 400, not a lookup of batch 1."""

    api_code = "invalid_parameter"
    description = "the id in the path must be written with the digits 0-9"


class IdConverter(IntegerConverter):
    """`<id:name>` in routes: a positive id that fits the column; a non-number or one out of range is a 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)

    def to_python(self, value: str) -> int:
        if not value.isascii():  # the route's \d+ matches any Unicode digit, and int() reads them all
            raise InvalidPathId()
        return super().to_python(value)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text, or None: NUL (Postgres refuses it), lone surrogates (not UTF-8)."""
    if "\x00" in value:
        return "contains U+0000, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not valid Unicode"  # kept for form fields, which skip the guard
    return None


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
    """ISO 8601 date or datetime, as an aware UTC datetime; no offset means UTC."""
    parsed = datetime.fromisoformat(SPACE_FOR_PLUS.sub(r"\1+\2", value))
    try:
        aware = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first representable instant
        raise ValueError("out of range") from None
    if not EARLIEST <= aware <= LATEST:
        raise ValueError("out of range")
    return aware


def datetime_arg(name: str) -> datetime | None:
    raw = raw_arg(name)
    if raw is None:
        return None
    try:
        return parse_datetime(raw)
    except ValueError:
        message = "must be an ISO 8601 date or datetime from 0001-01-02 to 9999-12-30, e.g. 2025-01-31T12:00:00Z"
        raise invalid(name, message) from None


def window_args() -> dict[str, Any]:
    """The filters `/faces` and `/stats` share, as keyword arguments for `db.queries`."""
    return {
        "platform": choice_arg("platform", PLATFORMS),
        "batch_id": int_arg("batch_id"),
        "since": datetime_arg("since"),
        "until": datetime_arg("until"),
    }
