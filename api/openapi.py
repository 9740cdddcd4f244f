"""The OpenAPI side of the app: flask-openapi3's Flask subclass, set up for this API.

Routes declare their inputs and answers with the models in `api.schemas`; this module holds
what every route shares: the document's title and tags, the security scheme, the documented
error answers, and the translation of a pydantic validation failure into our error shape.
"""

from __future__ import annotations

from typing import Any, NoReturn

from flask_openapi3 import Info, OpenAPI, Tag
from pydantic import ValidationError

from api.errors import ApiError
from api.schemas import Error, error_for

INFO = Info(
    title="socialfer API",
    version="1.0.0",
    description=(
        "Submit batches of social-media image URLs for face and emotion analysis, follow their progress, and "
        "query the faces found and aggregate statistics. Every error is JSON of the `Error` shape. When the server "
        "has API keys (`socialfer keys create`, or `SOCIALFER_API_KEYS`), every data route needs "
        "`Authorization: Bearer <key>` (or the dashboard's session cookie) of the right scope: `read` for reads, "
        "`write` to submit and upload, `admin` to delete and manage keys; with no key at all the server is open. "
        "Writes from a browser must come from the app's own origin and, through the cookie, carry `X-CSRF-Token`. "
        "The dashboard at `/` and the image pages at `/images/{id}` are drawn from these endpoints; "
        "`/api/docs` shows this document."
    ),
)
TAGS = {
    "batches": Tag(name="batches", description="Submitting URLs and following a batch's progress."),
    "images": Tag(name="images", description="One image's outcome and faces."),
    "faces": Tag(name="faces", description="Faces across batches."),
    "stats": Tag(name="stats", description="Aggregates over analysed images."),
    "service": Tag(name="service", description="Health and this document."),
    "access": Tag(name="access", description="Signing in, API keys and the audit log."),
    "pages": Tag(name="pages", description="HTML pages for people; their scripts read this API."),
}
SECURITY_SCHEMES = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
# A key is needed only when the server has keys configured; the empty requirement says "or none".
WRITE_SECURITY: list[dict[str, list[Any]]] = [{"bearerAuth": []}, {}]
ERROR_REF = {"$ref": "#/components/schemas/Error"}


def error_answer(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A documented error answer: the `Error` shape, with the codes it may carry in `description`."""
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
    if headers:
        answer["headers"] = headers
    return answer


def media_answer(description: str, media_type: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A documented answer that is not JSON: a page, an image."""
    return {"description": description, "content": {media_type: {"schema": schema or {"type": "string"}}}}


INVALID_PARAMETER = error_answer("`invalid_parameter`: a query parameter is malformed; the message names it.")
NOT_FOUND = error_answer("`not_found`.")
UNAUTHORIZED = error_answer(
    "`unauthorized`: API keys are configured and none valid was given.",
    {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
)
FORBIDDEN = error_answer(
    "`forbidden`: the key's scope does not allow this; `cross_origin`: a write started by a page on another "
    "origin; `csrf_failed`: a write through the session cookie without its `X-CSRF-Token`."
)
RATE_LIMITED = error_answer(
    "`rate_limited`: too many writes for this key; retry after `Retry-After` seconds.",
    {"Retry-After": {"schema": {"type": "integer"}}},
)
PAYLOAD_TOO_LARGE = error_answer("`payload_too_large`: the body exceeds the largest valid batch.")
BROKER_UNAVAILABLE = error_answer("`broker_unavailable`: the job queue could not take the tasks; nothing was stored.")
INTERNAL_ERROR = error_answer("`internal_error`: an unexpected failure; details are only in the server log.")
# What every read under /api/v1 may answer besides its own result.
READ_ERRORS: dict[int, Any] = {400: INVALID_PARAMETER, 401: UNAUTHORIZED, 403: FORBIDDEN, 500: INTERNAL_ERROR}
# What every route behind access control may answer, whatever it does (blueprints' abp_responses).
DATA_ROUTE_ERRORS: dict[int, Any] = {401: UNAUTHORIZED, 403: FORBIDDEN, 500: INTERNAL_ERROR}
# What a write may answer besides its own errors.
WRITE_ERRORS: dict[int, Any] = {401: UNAUTHORIZED, 403: FORBIDDEN, 429: RATE_LIMITED}


def reject(exc: ValidationError) -> NoReturn:
    """flask-openapi3's validation-error callback: answer in our error shape, 400, with the field's code."""
    code, message = error_for(exc)
    raise ApiError(400, code, message)


class ApiApp(OpenAPI):
    """The Flask app, documenting itself; no UI of flask-openapi3's own (ours is at `/api/docs`)."""

    def __init__(self, import_name: str) -> None:
        super().__init__(
            import_name,
            info=INFO,
            security_schemes=SECURITY_SCHEMES,
            doc_ui=False,
            validation_error_status=400,
            validation_error_model=Error,
            validation_error_callback=reject,
        )

    def generate_spec_json(self) -> None:
        """The library's document, less the generic 400 (a list of errors) it adds to every operation
        without one: ours answer a single `Error`, and only the operations that take input do.
        Answers are listed by status."""
        super().generate_spec_json()
        generic = {"type": "array", "items": ERROR_REF}
        for path_item in self.spec_json["paths"].values():
            for operation in path_item.values():
                answers = operation["responses"]
                if answers.get("400", {}).get("content", {}).get("application/json", {}).get("schema") == generic:
                    del answers["400"]
                operation["responses"] = dict(sorted(answers.items()))
