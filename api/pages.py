"""The analyst's pages: the dashboard at `/` and one image at `/images/<id>`.

They are shells: their scripts (api/static) fetch every number from the JSON API, so the
page can never disagree with it, and nothing is loaded from outside this server.
"""

from __future__ import annotations

from flask import render_template
from flask_openapi3 import APIBlueprint

from api import schemas
from api.context import settings
from api.openapi import TAGS, media_answer
from core.vocabulary import EMOTIONS, PLATFORMS

bp = APIBlueprint("pages", __name__, abp_tags=[TAGS["pages"]])


def page_config() -> dict[str, object]:
    """What the scripts need to know about this server beyond the API's answers."""
    config = settings()
    return {
        "emotions": list(EMOTIONS),
        "platforms": list(PLATFORMS),
        "max_batch_urls": config.max_batch_urls,
        "max_image_bytes": config.max_image_bytes,
        "preview_retention_days": config.preview_retention_days,
        "previews": config.previews,
        "min_face_px": config.min_face_px,
        "max_faces": config.max_faces,
        "low_resolution_px": config.low_resolution_px,
    }


@bp.get(
    "/",
    operation_id="dashboard",
    summary="The dashboard: headline counts, emotion and per-platform charts, timeline, batches with live progress, "
    "recent annotated images, submit and export, all under shareable filters",
    description="An HTML shell; its script fetches every number from `/api/v1/stats`, `/queue`, `/timeline`, "
    "`/batches` and `/images` with the page's own query string (`platform`, `batch_id`, `since`, `until`).",
    responses={200: media_answer("The dashboard.", "text/html")},
)
def dashboard() -> str:
    return render_template("dashboard.html", config=page_config())


@bp.get(
    "/images/<id:image_id>",
    operation_id="imagePage",
    summary="One image, annotated, with the seven probabilities of each face",
    description="An HTML shell for any id; its script reads `/api/v1/images/{image_id}` and its preview, and says "
    "so when the image does not exist.",
    responses={200: media_answer("The image page.", "text/html")},
)
def image_page(path: schemas.ImagePath) -> str:
    return render_template("image.html", config=page_config(), image_id=path.image_id)


@bp.get(
    "/signin",
    operation_id="signinPage",
    summary="Sign in with an API key",
    description="An HTML form whose script posts the key to `/api/v1/session` once; the key becomes an HttpOnly "
    "session cookie and is kept nowhere in the browser.",
    responses={200: media_answer("The sign-in page.", "text/html")},
)
def signin_page() -> str:
    return render_template("signin.html", config=page_config())
