"""Faces across all batches: newest first, filtered and keyset-paginated, or exported whole."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from flask import Response, jsonify, stream_with_context
from flask_openapi3 import APIBlueprint

from api import schemas
from api.context import database
from api.openapi import DATA_ROUTE_ERRORS, READ_ERRORS, TAGS
from api.schemas import page_size
from api.serialize import EXPORT_FIELDS, export_json, export_row, face_json
from db import Face
from db.queries import faces_for_export, faces_page
from db.schema import utcnow

bp = APIBlueprint("faces", __name__, url_prefix="/api/v1", abp_tags=[TAGS["faces"]], abp_responses=DATA_ROUTE_ERRORS)

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@bp.get(
    "/faces",
    operation_id="listFaces",
    summary="Faces, newest first, filtered, with keyset pagination",
    description="Pass `next_cursor` from a page as `cursor` to get the next one; null means the last page.",
    responses={200: schemas.FacePage, **READ_ERRORS},
)
def list_faces(query: schemas.FaceListQuery) -> Response:
    limit = page_size(query.limit)
    with database().session() as session:
        faces, next_cursor = faces_page(
            session, query.filters(), emotion=query.emotion, limit=limit, cursor=query.cursor
        )
        return jsonify({"items": [face_json(face, listing=True) for face in faces], "next_cursor": next_cursor})


def csv_chunks(rows: Iterable[tuple[Face, str]]) -> Iterator[str]:
    """A header line, then one line per face; written through `csv` so URLs with commas stay quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for face, url in rows:
        writer.writerow(export_row(face, url))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_chunks(rows: Iterable[tuple[Face, str]]) -> Iterator[str]:
    """A JSON array written one face at a time."""
    separator = "\n"
    yield "["
    for face, url in rows:
        yield separator + json.dumps(export_json(face, url))
        separator = ",\n"
    yield "\n]\n"


@bp.get(
    "/faces/export",
    operation_id="exportFaces",
    summary="Every face under the filters, as a CSV or JSON download",
    description=f"Newest first, streamed. CSV columns: {', '.join(EXPORT_FIELDS)} (box `x, y, w, h` in original "
    "pixels). JSON: an array of `ExportedFace`.",
    responses={200: schemas.FaceExport, **READ_ERRORS},
)
def export_faces(query: schemas.FaceExportQuery) -> Response:
    """Every face under the filters, as a download: streamed, so its size is not bounded by memory."""
    filters, emotion, export_format = query.filters(), query.emotion, query.format
    db = database()

    def rows() -> Iterator[tuple[Face, str]]:
        with db.session() as session:
            yield from faces_for_export(session, filters, emotion)

    chunks = csv_chunks(rows()) if export_format == "csv" else json_chunks(rows())
    filename = f"socialfer-faces-{utcnow():%Y%m%dT%H%M%SZ}.{export_format}"
    return Response(
        stream_with_context(chunks),
        content_type=EXPORT_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
