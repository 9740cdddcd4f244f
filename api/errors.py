"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`.

Clients branch on `code` (stable, snake_case); `message` is for people. Unexpected
exceptions become a bare 500 so no stack trace or SQL leaks to the caller.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

# Codes for the HTTP errors Werkzeug raises itself (routing, body size); others derive from the name.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ApiError(Exception):
    """An error the API answers on purpose, with its status and machine-readable code."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def http_error_code(exc: HTTPException) -> str:
    status = exc.code or 500
    derived = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
    return getattr(exc, "api_code", None) or HTTP_CODES.get(status) or derived


def handle_api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def handle_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's HTML error pages, as JSON; keeps headers such as 405's `Allow`."""
    headers = {key: value for key, value in exc.get_headers() if key.lower() != "content-type"}
    return error_response(exc.code or 500, http_error_code(exc), exc.description or exc.name, headers)


def handle_unexpected(exc: Exception) -> Response:
    current_app.logger.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
