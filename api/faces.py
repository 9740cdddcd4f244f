"""Faces across all batches: newest first, filtered and keyset-paginated, or exported whole."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from flask import Blueprint, Response, jsonify, stream_with_context

from api.context import database
from api.params import choice_arg, filters_arg, int_arg, page_size_arg
from api.serialize import EXPORT_FIELDS, export_json, export_row, face_json
from core.vocabulary import EMOTIONS
from db import Face
from db.queries import faces_for_export, faces_page
from db.schema import utcnow

bp = Blueprint("faces", __name__, url_prefix="/api/v1")

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


@bp.get("/faces")
def list_faces() -> Response:
    filters = filters_arg()
    emotion = choice_arg("emotion", EMOTIONS)
    limit, cursor = page_size_arg("limit"), int_arg("cursor")
    with database().session() as session:
        faces, next_cursor = faces_page(session, filters, emotion=emotion, limit=limit, cursor=cursor)
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


@bp.get("/faces/export")
def export_faces() -> Response:
    """Every face under the filters, as a download: streamed, so its size is not bounded by memory."""
    filters, emotion = filters_arg(), choice_arg("emotion", EMOTIONS)
    export_format = choice_arg("format", EXPORT_TYPES) or "csv"
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
