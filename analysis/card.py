"""The confusion matrices the model card ships, read from its JSON (never from the model code).

The card sits next to the model file (`emotion_cnn.keras` -> `emotion_cnn.json`) and holds
`confusion_matrices`: `order` (the class order), and per named set a list of rows, true class
by row, predicted class by column, counts. Reading the JSON keeps the API clear of TensorFlow
and of `models/`; the card is re-read when the file changes (a retrained model ships a new one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
EFFECTIVE_KEY = "effective_faces"  # models/evaluate.py, shipped_confusion_matrices
# Which faces each matrix was measured on, by its name's prefix (models/evaluate.py names them).
REAL_PHOTOS, FER2013_CROPS = "real_photos", "fer2013_crops"
MEASURED_ON_PREFIXES = {"wild_": REAL_PHOTOS, "fer2013_": FER2013_CROPS}
OTHER_FACES_WARNING = (
    "this matrix was measured on {faces}, not on faces from real photos: the correction assumes the classifier "
    "errs on the photos analysed as it did on those faces, and on held-out real photos a FER2013 matrix moved the "
    "shares further from the truth than no correction (docs/statistics.md, section 5); wild_calibration was "
    "measured on real photos"
)


class CardError(ValueError):
    """The card is missing, unreadable, or has no such matrix."""


def card_path(model_path: Path | None) -> Path:
    """The model card of the configured model (None: the committed one)."""
    return (model_path or COMMITTED_MODEL).with_suffix(".json")


@dataclass(frozen=True)
class CardMatrices:
    """What the card's `confusion_matrices` holds, reordered to EMOTIONS: every K x K matrix, and per
    matrix its rows' effective faces (`effective_faces`; a matrix it does not name counts faces as
    independent)."""

    matrices: dict[str, np.ndarray]
    effective_faces: dict[str, np.ndarray]


@lru_cache(maxsize=8)
def read_card_matrices(path: Path, modified: int) -> CardMatrices:
    """The card's `confusion_matrices`, read and checked once per card version (`modified` keys the cache)."""
    try:
        section = json.loads(path.read_text(encoding="utf-8"))["confusion_matrices"]
        order = list(section.get("order", EMOTIONS))
        index = [order.index(name) for name in EMOTIONS]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CardError(f"{path}: no readable confusion_matrices ({exc.__class__.__name__})") from None
    size = len(order)
    found = {
        name: as_counts(rows, (size, size)) for name, rows in section.items() if name not in ("order", EFFECTIVE_KEY)
    }
    given = section.get(EFFECTIVE_KEY)
    sizes = {name: as_counts(values, (size,)) for name, values in given.items()} if isinstance(given, dict) else {}
    return CardMatrices(
        {name: matrix[np.ix_(index, index)] for name, matrix in found.items() if matrix is not None},
        {name: values[index] for name, values in sizes.items() if values is not None},
    )


def as_counts(values: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """`values` as an array of `shape` of finite non-negative numbers, else None (the card's other keys)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    if array.shape != shape or not np.isfinite(array).all() or (array < 0).any():
        return None
    return array


def matrices(model_path: Path | None) -> dict[str, np.ndarray]:
    path = card_path(model_path)
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        raise CardError(f"{path}: model card not found") from None
    return read_card_matrices(path, modified).matrices


@lru_cache(maxsize=16)
def cached_confusion(path: Path, modified: int, name: str) -> Confusion:
    card = read_card_matrices(path, modified)
    available = card.matrices
    return Confusion(name, available[name], available.get(PRIOR_MATRIX), effective_faces=card.effective_faces.get(name))


def confusion(model_path: Path | None, name: str) -> Confusion:
    """The named matrix as a `Confusion` (one object per card version, so its draws are made once)."""
    available = matrices(model_path)
    if name not in available:
        raise CardError(f"the model card has no confusion matrix {name!r} (it has {', '.join(sorted(available))})")
    path = card_path(model_path)
    return cached_confusion(path, path.stat().st_mtime_ns, name)


def measured_on(name: str) -> str | None:
    """`real_photos` or `fer2013_crops` for the matrices the card ships, None for a name it does not explain."""
    return next((faces for prefix, faces in MEASURED_ON_PREFIXES.items() if name.startswith(prefix)), None)


def transfer_warning(name: str) -> str | None:
    """What an analyst must know when correcting real photos with a matrix not measured on them; None otherwise."""
    faces = measured_on(name)
    if faces == REAL_PHOTOS:
        return None
    return OTHER_FACES_WARNING.format(faces="FER2013's 48x48 crops" if faces == FER2013_CROPS else "unknown faces")
