"""Photos sent from the analyst's computer: one batch through the same queue as URLs.

The bytes wait in the database (`image_files`, kind "upload") so any worker on any host
can read them; the image's URL is `upload:<file name>`.
"""

from __future__ import annotations

from flask import Response, request
from flask_openapi3 import APIBlueprint
from pydantic import ValidationError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from api import schemas
from api.batches import SUBMIT_ERRORS, NewBatch, accept_batch
from api.context import settings
from api.errors import ApiError
from api.openapi import DATA_ROUTE_ERRORS, TAGS, WRITE_SECURITY, error_answer, reject
from api.schemas import MAX_NAME_LENGTH
from core.settings import Settings
from db import UPLOAD_URL_PREFIX
from db.lifecycle import UploadedFile
from workers.formats import SNIFF_BYTES, sniff_image_type

bp = APIBlueprint(
    "uploads", __name__, url_prefix="/api/v1", abp_tags=[TAGS["batches"]], abp_responses=DATA_ROUTE_ERRORS
)

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


def form_fields(files: list[FileStorage]) -> schemas.UploadForm:
    """The form validated by its schema, read by hand rather than by flask-openapi3, whose form reader
    would parse text fields as JSON (a name "123" would become a number) and read the files under the
    global body limit."""
    fields = {
        "files": files,
        "platform": request.form.get("platform") or None,
        "name": request.form.get("name"),
        "callback_url": request.form.get("callback_url") or None,
    }
    try:
        return schemas.UploadForm.model_validate(fields)
    except ValidationError as exc:
        reject(exc)


@bp.post(
    "/uploads",
    operation_id="createUpload",
    summary="Submit photos as files: one batch, through the same queue as URLs",
    description="Every file is checked before anything is stored: its first bytes must be a JPEG, PNG, GIF, WebP, "
    "BMP or TIFF signature, and it must fit the per-image byte limit (`SOCIALFER_MAX_IMAGE_BYTES`). Then the "
    "batch, its images (URL `upload:<file name>`, made safe) and the files' bytes are stored in one transaction "
    "and one analysis task per image is queued. Platform is the `platform` field, else `other`.",
    security=WRITE_SECURITY,
    openapi_extensions={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": schemas.UploadForm.model_json_schema()}},
        }
    },
    responses={
        202: schemas.BatchAccepted,
        400: error_answer(
            "Invalid request. Codes: `invalid_files` (no `files` part, or more than the batch limit), `invalid_file` "
            "(not an image of a supported format; the message names the file), `invalid_platform`, `invalid_name`."
        ),
        **SUBMIT_ERRORS,
        413: error_answer(
            "`file_too_large` (one file over the per-image limit; the message names it) or `payload_too_large` (the "
            "request over the upload limit: the batch limit times the per-image limit, at most 256 MiB)."
        ),
    },
)
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
    form = form_fields(files)
    new = NewBatch(
        urls=[upload_url(storage.filename, index) for index, storage in enumerate(files)],
        platform=form.platform,
        name=form.name,
        files=uploads,
        callback_url=form.callback_url,
    )
    return accept_batch(new)
