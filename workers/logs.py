"""Worker log lines that say which image they are about.

Each task binds its task id and image id (and, once claimed, the batch id and then the
outcome) in a context variable, from Celery's task_prerun to its task_postrun signal; a
filter copies them onto every record, so each line a pool process writes while on an
image carries them, Celery's own "succeeded" line included.
The main process's "Task ... received" line gets them from the message Celery logs with it.
With `SOCIALFER_LOG_FORMAT=json` each record is one JSON object on one line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("image_id", "batch_id", "task_id", "outcome")
TEXT_FORMAT = "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s"
_current: ContextVar[dict | None] = ContextVar("socialfer_image_log", default=None)
FIRST_INT = re.compile(r"\d+")


def begin_task(task_id: str | None, image_id: int | None = None, batch_id: int | None = None) -> None:
    """Bind a task's ids until `end_task` (Celery's prerun/postrun signals, which enclose its "succeeded" line)."""
    _current.set({"image_id": image_id, "batch_id": batch_id, "task_id": task_id, "outcome": None})


def end_task() -> None:
    _current.set(None)


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
    logging.captureWarnings(True)  # Celery's warnings too, as log lines of the same format


def wrap_native_output() -> None:
    """Make what bypasses logging (TensorFlow's C++ notices, Celery's prints) JSON lines too.

    File descriptors 1 and 2 (inherited by pool processes) become a pipe; a thread passes
    JSON lines through to the real stderr and wraps any other line as a record of its own.
    """
    real = os.fdopen(os.dup(2), "w", buffering=1, errors="replace")
    read_end, write_end = os.pipe()
    for fd in (1, 2):
        os.dup2(write_end, fd)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, errors="replace") as pipe:
            for line in pipe:
                text = line.rstrip("\n")
                if text.startswith("{"):
                    real.write(text + "\n")
                elif text.strip():
                    record = {"level": "INFO", "name": "output", "message": text}
                    real.write(json.dumps(record | dict.fromkeys(FIELDS)) + "\n")

    threading.Thread(target=pump, name="socialfer-log-pump", daemon=True).start()
