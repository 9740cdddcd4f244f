"""Photos sent from the analyst's computer: one batch through the same queue as URLs.

The bytes wait in the database (`image_files`, kind "upload") so any worker on any host
can read them; the image's URL is `upload:<file name>`.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from api.batches import MAX_NAME_LENGTH, NewBatch, accept_batch, parse_name, parse_platform
from api.context import settings
from api.errors import ApiError
from core.settings import Settings
from db import UPLOAD_URL_PREFIX
from db.lifecycle import UploadedFile
from workers.formats import SNIFF_BYTES, sniff_image_type

bp = Blueprint("uploads", __name__, url_prefix="/api/v1")

MIB = 1024 * 1024
MAX_UPLOAD_REQUEST = 256 * MIB  # one request's body, whatever the per-file and per-batch limits allow
PART_OVERHEAD = 1024  # multipart headers and boundary around each file
FORM_FIELDS = 8  # parts besides the files: platform, name, and slack for what browsers add


def upload_limit(config: Settings) -> int:
    """Enough for the largest batch of the largest files, but never more than MAX_UPLOAD_REQUEST."""
    return min(config.max_batch_urls * (config.max_image_bytes + PART_OVERHEAD) + PART_OVERHEAD, MAX_UPLOAD_REQUEST)


def upload_url(filename: str | None, index: int) -> str:
    """`upload:` and a file name safe to show and export (ASCII letters, digits, `._-`)."""
    name = secure_filename(filename or "")[:MAX_NAME_LENGTH] or f"photo-{index + 1}"
    return UPLOAD_URL_PREFIX + name


def read_upload(storage: FileStorage, index: int, max_bytes: int) -> UploadedFile:
    """The file's bytes, refused early when too large, empty or not an image the worker can decode."""
    label = f"files[{index}] ({(storage.filename or 'unnamed')[:100]})"
    data = storage.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "file_too_large", f"{label}: larger than the {max_bytes} bytes allowed per image")
    content_type = sniff_image_type(data[:SNIFF_BYTES])
    if content_type is None:
        raise ApiError(400, "invalid_file", f"{label}: not a JPEG, PNG, GIF, WebP or BMP image")
    return UploadedFile(data=data, content_type=content_type)


def form_files(config: Settings) -> list[FileStorage]:
    """The `files` parts, parsed under this route's own body limits (the global one fits URL batches)."""
    limit = upload_limit(config)
    request.max_content_length = limit
    request.max_form_parts = config.max_batch_urls + FORM_FIELDS
    try:
        return request.files.getlist("files")
    except RequestEntityTooLarge:
        raise ApiError(
            413,
            "payload_too_large",
            f"an upload carries at most {config.max_batch_urls} files and {limit // MIB} MiB in all",
        ) from None


@bp.post("/uploads")
def create_upload() -> tuple[Response, int, dict[str, str]]:
    """Validate every file before storing any, then store, publish and answer as `POST /batches` does."""
    config = settings()
    files = form_files(config)
    if not 1 <= len(files) <= config.max_batch_urls:
        raise ApiError(
            400,
            "invalid_files",
            f"files: send 1 to {config.max_batch_urls} images as multipart/form-data parts named `files`, "
            f"got {len(files)}",
        )
    uploads = [read_upload(storage, index, config.max_image_bytes) for index, storage in enumerate(files)]
    new = NewBatch(
        urls=[upload_url(storage.filename, index) for index, storage in enumerate(files)],
        platform=parse_platform(request.form.get("platform") or None),
        name=parse_name(request.form.get("name")),
        files=uploads,
    )
    return accept_batch(new)
