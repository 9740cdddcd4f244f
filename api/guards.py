"""Checks on every request body before any route, schema library or database sees it.

They live here, at the edge, so they hold whatever validates the fields later:
- JSON nested deeper than `MAX_JSON_DEPTH` is refused (a body of 100,000 `[` made the
  parser raise RecursionError, a 500);
- lone surrogates (`\\ud800`: not Unicode, so neither UTF-8 nor any database can hold them)
  are refused anywhere in the body, keys included.
Each is a 400 `invalid_json` naming the place (`$.urls[3]`). NUL, which is valid JSON text
but which Postgres cannot store, is refused by the fields that are stored (`invalid_name`,
`invalid_url`), so an unknown field holding one is ignored like any unknown field.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from api.errors import ApiError

MAX_JSON_DEPTH = 32  # the API's own bodies nest 2 deep
LONE_SURROGATE = "contains a lone surrogate, which is not valid Unicode"


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_problem(body: Any) -> str | None:
    """Where and why a parsed body is refused, walking it without recursion."""
    pending: list[tuple[Any, str, int]] = [(body, "$", 1)]
    while pending:
        value, where, depth = pending.pop()
        if isinstance(value, (dict, list)) and depth > MAX_JSON_DEPTH:
            return f"{where}: nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not is_unicode(key):
                    return f"{where}: a key {LONE_SURROGATE}"
                pending.append((item, f"{where}.{key}", depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str) and not is_unicode(value):
            return f"{where}: {LONE_SURROGATE}"
    return None


def check_json_body() -> None:
    """Parse a JSON body once (cached for the route) and refuse what must never reach the handlers."""
    if not request.is_json or not request.content_length and not request.headers.get("Transfer-Encoding"):
        return
    try:
        body = request.get_json(silent=True, cache=True)
    except RecursionError:
        raise ApiError(400, "invalid_json", f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if body is not None and (problem := json_problem(body)):
        raise ApiError(400, "invalid_json", problem)


def register_input_guards(app: Flask) -> None:
    app.before_request(check_json_body)
