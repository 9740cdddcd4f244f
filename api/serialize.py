"""Rows to JSON-ready dicts: the one place that decides the API's field names and formats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.vocabulary import DONE, EMOTIONS, PROCESSING, QUEUED
from db import Batch, Face, Image
from db.windows import as_utc


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a "Z"; SQLite hands back naive datetimes, which are UTC by construction."""
    value = as_utc(value)
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def batch_status(counts: dict[str, int], total: int) -> str:
    """Nothing started yet, nothing left to do, or in between."""
    if counts[QUEUED] == total:
        return QUEUED
    if counts[QUEUED] + counts[PROCESSING] == 0:
        return DONE
    return PROCESSING


def batch_json(batch: Batch, counts: dict[str, int]) -> dict[str, Any]:
    """A batch with its progress; `counts` is its entry from `db.queries.batch_counts`."""
    return {
        "id": batch.id,
        "name": batch.name,
        "platform": batch.platform,
        "created_at": iso(batch.created_at),
        "total": batch.total,
        **counts,
        "status": batch_status(counts, batch.total),
        "callback": callback_json(batch),
    }


def callback_json(batch: Batch) -> dict[str, Any] | None:
    """The batch-end callback's delivery state; null when none was asked for."""
    if not batch.callback_url:
        return None
    return {
        "state": batch.callback_state,
        "attempts": batch.callback_attempts or 0,
        "last_status": batch.callback_last_status,
        "last_error": batch.callback_last_error,
    }


def face_json(face: Face, *, listing: bool = False) -> dict[str, Any]:
    """A face; in the `/faces` listing it also says where and when it was found."""
    data: dict[str, Any] = {
        "id": face.id,
        "image_id": face.image_id,
        "box": face.box,
        "confidence": face.confidence,
        "emotion": face.emotion,
        "scores": face.scores,
        "size_px": face.size_px,
        "low_resolution": face.low_resolution,
        "uncertain": face.uncertain,
    }
    if listing:
        data.update(platform=face.platform, batch_id=face.batch_id, analyzed_at=iso(face.analyzed_at))
    return data


def image_json(image: Image) -> dict[str, Any]:
    """An image with its outcome and faces (load `Image.faces` eagerly when serialising many)."""
    error = {"code": image.error_code, "message": image.error_message} if image.error_code else None
    return {
        "id": image.id,
        "batch_id": image.batch_id,
        "url": image.url,
        "platform": image.platform,
        "status": image.status,
        "error": error,
        "width": image.width,
        "height": image.height,
        "content_type": image.content_type,
        "byte_size": image.byte_size,
        "face_count": image.face_count,
        "attempts": image.attempts,
        "timings": {"fetch_ms": image.fetch_ms, "analyze_ms": image.analyze_ms},
        "created_at": iso(image.created_at),
        "started_at": iso(image.started_at),
        "finished_at": iso(image.finished_at),
        "detection": {
            "min_face_px": image.min_face_px,
            "scan_capped": bool(image.scan_capped),
            "faces_beyond_cap": image.faces_beyond_cap or 0,
        },
        "faces": [face_json(face) for face in image.faces],
    }


def timeline_json(data: dict[str, Any]) -> dict[str, Any]:
    """`db.queries.timeline` with its times as ISO 8601 strings."""
    return {
        "bucket": data["bucket"],
        "start": iso(data["start"]),
        "end": iso(data["end"]),
        "items": [{**item, "start": iso(item["start"])} for item in data["items"]],
    }


EXPORT_FIELDS = (
    "face_id",
    "image_id",
    "batch_id",
    "platform",
    "analyzed_at",
    "image_url",
    "x",
    "y",
    "w",
    "h",
    "confidence",
    "emotion",
    *(f"score_{name}" for name in EMOTIONS),
    "size_px",
    "low_resolution",
    "uncertain",
)


def export_json(face: Face, url: str) -> dict[str, Any]:
    """A face as the JSON export writes it: the `/faces` listing plus the image's URL."""
    return {**face_json(face, listing=True), "image_url": url}


def export_row(face: Face, url: str) -> list[Any]:
    """A face as the CSV export writes it, flat, in EXPORT_FIELDS order."""
    return [
        face.id,
        face.image_id,
        face.batch_id,
        face.platform,
        iso(face.analyzed_at),
        url,
        *face.box,
        face.confidence,
        face.emotion,
        *face.scores.values(),
        face.size_px,
        int(face.low_resolution),
        int(face.uncertain),
    ]
