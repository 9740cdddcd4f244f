"""Worker log lines that say which image they are about.

The task binds its task id and image id (and, once claimed, the batch id and then the
outcome) in a context variable; a filter copies them onto every record, so each line a
pool process writes while on an image carries them, Celery's own "succeeded" line included.
The main process's "Task ... received" line gets them from the message Celery logs with it.
With `SOCIALFER_LOG_FORMAT=json` each record is one JSON object on one line.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("image_id", "batch_id", "task_id", "outcome")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s"
_current: ContextVar[dict | None] = ContextVar("socialfer_image_log", default=None)
FIRST_INT = re.compile(r"\d+")


@contextmanager
def image_context(task_id: str | None, image_id: int) -> Iterator[dict]:
    """Bind the task's image for the log lines written inside the block; returns the dict to `bind` into."""
    fields = {"image_id": image_id, "batch_id": None, "task_id": task_id, "outcome": None}
    token = _current.set(fields)
    try:
        yield fields
    finally:
        _current.reset(token)


def bind(**fields) -> None:
    """Add to the current image's fields (no-op outside a task)."""
    current = _current.get()
    if current is not None:
        current.update(fields)


class ImageFields(logging.Filter):
    """Puts image_id, batch_id, task_id and outcome on every record (None when not about an image)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get() or fields_from_celery(record)
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, current.get(name))
        return True


def fields_from_celery(record: logging.LogRecord) -> dict:
    """Celery logs task events with a `data` dict: the task id and the arguments' repr (our image id)."""
    data = getattr(record, "data", None)
    if not isinstance(data, dict):
        return {}
    image = FIRST_INT.search(str(data.get("args", "")))
    return {"task_id": data.get("id"), "image_id": int(image.group()) if image else None}


def configure_logging(log_format: str, level: str | int = "INFO") -> None:
    """Root logging for a worker: text (Celery's look) or one JSON object per line, image fields on both."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ImageFields())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(JSON_FORMAT, rename_fields={"asctime": "time", "levelname": "level"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
