"""Photos sent from the analyst's computer: one batch through the same queue as URLs.

The bytes wait in the database (`image_files`, kind "upload") so any worker on any host
can read them; the image's URL is `upload:<file name>`. No file is held whole in memory:
each part is spooled to a temporary file past `SPOOL_BYTES`, judged by its first bytes and
its size, and copied into the database a block at a time (`db.upload_store`).
"""

from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import BinaryIO

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
from db.upload_store import UploadStream
from workers.formats import SNIFF_BYTES, sniff_image_type

bp = APIBlueprint(
    "uploads", __name__, url_prefix="/api/v1", abp_tags=[TAGS["batches"]], abp_responses=DATA_ROUTE_ERRORS
)

MIB = 1024 * 1024
MAX_UPLOAD_REQUEST = 256 * MIB  # one request's body, whatever the per-file and per-batch limits allow
PART_OVERHEAD = 1024  # multipart headers and boundary around each file
FORM_FIELDS = 8  # parts besides the files: platform, name, and slack for what browsers add
SPOOL_BYTES = 64 * 1024  # an uploaded part larger than this waits on disk, not in memory


def upload_limit(config: Settings) -> int:
    """Enough for the largest batch of the largest files, but never more than MAX_UPLOAD_REQUEST."""
    return min(config.max_batch_urls * (config.max_image_bytes + PART_OVERHEAD) + PART_OVERHEAD, MAX_UPLOAD_REQUEST)


def upload_url(filename: str | None, index: int) -> str:
    """`upload:` and a file name safe to show and export (ASCII letters, digits, `._-`)."""
    name = secure_filename(filename or "")[:MAX_NAME_LENGTH] or f"photo-{index + 1}"
    return UPLOAD_URL_PREFIX + name


def read_upload(storage: FileStorage, index: int, max_bytes: int) -> UploadStream:
    """The file's spool, refused early when too large, empty or not an image the worker can decode."""
    label = f"files[{index}] ({(storage.filename or 'unnamed')[:100]})"
    stream = storage.stream
    size = stream.seek(0, 2)
    if size > max_bytes:
        raise ApiError(413, "file_too_large", f"{label}: larger than the {max_bytes} bytes allowed per image")
    stream.seek(0)
    content_type = sniff_image_type(stream.read(SNIFF_BYTES))
    if content_type is None:
        raise ApiError(400, "invalid_file", f"{label}: not a JPEG, PNG, GIF, WebP or BMP image")
    return UploadStream(stream=stream, size=size, content_type=content_type)


def spooled_file_stream(*_args, **_kwargs) -> BinaryIO:
    """Werkzeug's stream factory for file parts, with a smaller in-memory spool than its 500 KB."""
    return SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="rb+")  # type: ignore[return-value]


def form_files(config: Settings) -> list[FileStorage]:
    """The `files` parts, parsed under this route's own body limits (the global one fits URL batches)."""
    limit = upload_limit(config)
    request.max_content_length = limit
    request.max_form_parts = config.max_batch_urls + FORM_FIELDS
    request._get_file_stream = spooled_file_stream  # werkzeug documents this hook for overriding
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
        507: error_answer(
            "`upload_queue_full`: the uploads waiting for a worker already occupy the configured bound "
            "(`SOCIALFER_MAX_QUEUED_UPLOAD_BYTES`); nothing was stored, retry later."
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
