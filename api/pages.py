"""The analyst's pages: the dashboard at `/` and one image at `/images/<id>`.

They are shells: their scripts (api/static) fetch every number from the JSON API, so the
page can never disagree with it, and nothing is loaded from outside this server.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from api.context import settings
from core.vocabulary import EMOTIONS, PLATFORMS

bp = Blueprint("pages", __name__)


def page_config() -> dict[str, object]:
    """What the scripts need to know about this server beyond the API's answers."""
    config = settings()
    return {
        "emotions": list(EMOTIONS),
        "platforms": list(PLATFORMS),
        "max_batch_urls": config.max_batch_urls,
        "max_image_bytes": config.max_image_bytes,
        "preview_retention_days": config.preview_retention_days,
        "api_keys_required": bool(config.api_keys),
    }


@bp.get("/")
def dashboard() -> str:
    return render_template("dashboard.html", config=page_config())


@bp.get("/images/<id:image_id>")
def image_page(image_id: int) -> str:
    return render_template("image.html", config=page_config(), image_id=image_id)
