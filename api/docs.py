"""The hand-written OpenAPI document, served as-is so clients can generate code from it."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("docs", __name__, url_prefix="/api/v1")


@cache
def openapi_document() -> dict[str, Any]:
    """Parsed once per process; the file ships inside the package (see pyproject package-data)."""
    return json.loads(files("api").joinpath("openapi.json").read_text(encoding="utf-8"))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
