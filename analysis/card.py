"""The confusion matrices the model card ships, read from its JSON (never from the model code).

The card sits next to the model file (`emotion_cnn.keras` -> `emotion_cnn.json`) and holds
`confusion_matrices`: `order` (the class order), and per named set a list of rows, true class
by row, predicted class by column, counts. Reading the JSON keeps the API clear of TensorFlow
and of `models/`; the card is re-read when the file changes (a retrained model ships a new one).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from analysis.correction import Confusion
from core.vocabulary import EMOTIONS

# models.weights.DEFAULT_MODEL_PATH, spelled out here: analysis/ and api/ do not import models/.
COMMITTED_MODEL = Path(__file__).resolve().parent.parent / "models" / "weights" / "emotion_cnn.keras"
PRIOR_MATRIX = "fer2013_publictest"  # its rows shape the prior of every matrix's thin rows
# The matrices the card ships (models/evaluate.py, shipped_confusion_matrices): what the API documents.
SHIPPED_MATRICES = ("wild_calibration", "fer2013_publictest", "wild_heldout")


class CardError(ValueError):
    """The card is missing, unreadable, or has no such matrix."""


def card_path(model_path: Path | None) -> Path:
    """The model card of the configured model (None: the committed one)."""
    return (model_path or COMMITTED_MODEL).with_suffix(".json")


@lru_cache(maxsize=8)
def read_matrices(path: Path, modified: int) -> dict[str, np.ndarray]:
    """Every K x K matrix in the card's `confusion_matrices`, reordered to EMOTIONS; `modified` keys the cache."""
    try:
        section = json.loads(path.read_text(encoding="utf-8"))["confusion_matrices"]
        order = list(section.get("order", EMOTIONS))
        index = [order.index(name) for name in EMOTIONS]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CardError(f"{path}: no readable confusion_matrices ({exc.__class__.__name__})") from None
    found = {name: as_matrix(rows, len(order)) for name, rows in section.items() if name != "order"}
    return {name: matrix[np.ix_(index, index)] for name, matrix in found.items() if matrix is not None}


def as_matrix(rows: object, size: int) -> np.ndarray | None:
    """`rows` as a size x size matrix of finite non-negative counts, else None (the card's other keys)."""
    try:
        matrix = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        return None
    if matrix.shape != (size, size) or not np.isfinite(matrix).all() or (matrix < 0).any():
        return None
    return matrix


def matrices(model_path: Path | None) -> dict[str, np.ndarray]:
    path = card_path(model_path)
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        raise CardError(f"{path}: model card not found") from None
    return read_matrices(path, modified)


@lru_cache(maxsize=8)
def read_effective_faces(path: Path, modified: int) -> dict[str, np.ndarray]:
    """The card's `confusion_matrices.effective_faces`: per matrix, each row's effective faces (K numbers,
    reordered to EMOTIONS); matrices it does not name, or a card without it, count faces as independent."""
    try:
        section = json.loads(path.read_text(encoding="utf-8"))["confusion_matrices"]
        order = list(section.get("order", EMOTIONS))
        index = [order.index(name) for name in EMOTIONS]
        given = section.get("effective_faces", {})
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    found = {}
    for name, sizes in given.items() if isinstance(given, dict) else ():
        try:
            values = np.asarray(sizes, dtype=float)
        except (TypeError, ValueError):
            continue
        if values.shape == (len(order),) and np.isfinite(values).all() and (values >= 0).all():
            found[name] = values[index]
    return found


@lru_cache(maxsize=16)
def cached_confusion(path: Path, modified: int, name: str) -> Confusion:
    available = read_matrices(path, modified)
    effective = read_effective_faces(path, modified).get(name)
    return Confusion(name, available[name], available.get(PRIOR_MATRIX), effective_faces=effective)


def confusion(model_path: Path | None, name: str) -> Confusion:
    """The named matrix as a `Confusion` (one object per card version, so its draws are made once)."""
    available = matrices(model_path)
    if name not in available:
        raise CardError(f"the model card has no confusion matrix {name!r} (it has {', '.join(sorted(available))})")
    path = card_path(model_path)
    return cached_confusion(path, path.stat().st_mtime_ns, name)
