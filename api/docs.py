"""The OpenAPI document, generated from the route declarations and `api.schemas`, and Swagger UI
to browse it at `/api/docs`.

The UI's scripts and styles are the static files that the flask-openapi3-swagger package ships,
served from here: the page loads nothing from outside this server.
"""

from __future__ import annotations

from pathlib import Path

import flask_openapi3_swagger
from flask import Response, current_app, jsonify, render_template
from flask_openapi3 import APIBlueprint

from api.openapi import TAGS, media_answer

SWAGGER_UI_FILES = Path(flask_openapi3_swagger.__file__).parent / "templates" / "swagger"

bp = APIBlueprint(
    "docs",
    __name__,
    abp_tags=[TAGS["service"]],
    static_folder=str(SWAGGER_UI_FILES),
    static_url_path="/api/docs/assets",
)


@bp.get(
    "/api/v1/openapi.json",
    operation_id="openapi",
    summary="This OpenAPI document",
    responses={200: media_answer("The OpenAPI 3.1 document.", "application/json", {"type": "object"})},
)
def openapi() -> Response:
    """Built once per app, on first request, by flask-openapi3 (see `api.openapi.ApiApp`)."""
    return jsonify(current_app.api_doc)  # type: ignore[attr-defined] - create_app makes an ApiApp


@bp.get(
    "/api/docs",
    operation_id="apiDocs",
    summary="This document in Swagger UI, to read and try each operation",
    responses={200: media_answer("The page.", "text/html")},
)
def api_docs() -> str:
    return render_template("api_docs.html")
