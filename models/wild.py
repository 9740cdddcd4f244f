"""The shared set of expression-labelled faces from real photos, split by identity.

`../shared/data/faces_in_the_wild/muxspace_dev.npz` (see its README) holds news and film
faces cut as the product cuts them. One person can have hundreds of photos, so every split
is by identity, never by image: a face's fold is a stable hash of its person's name, the
same on every machine and in every run. The roles of the five folds:

- `HELDOUT_FOLD` (0): never trained on, never used to choose anything; where the model is
  judged on real photos, and where the statistics' corrections are scored.
- `CALIBRATION_FOLD` (4): not trained on; temperature, abstention threshold, model choice and
  the confusion matrix the statistics correct with are all fitted here.
- the rest (1, 2, 3): training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.labels import EMOTIONS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WILD_PATH = PROJECT_ROOT.parent / "shared" / "data" / "faces_in_the_wild" / "muxspace_dev.npz"
FOLDS = 5
HELDOUT_FOLD = 0
CALIBRATION_FOLD = 4


def identity_fold(identity: str, folds: int = FOLDS) -> int:
    """The fold of one person: sha256 of the name, modulo `folds`."""
    return int(hashlib.sha256(identity.encode("utf-8")).hexdigest(), 16) % folds


@dataclass(frozen=True)
class WildFaces:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) uint8, index into EMOTIONS
    identity: np.ndarray  # (N,) str
    fold: np.ndarray  # (N,) int8, identity_fold of each face

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> WildFaces:
        return WildFaces(self.images[mask], self.labels[mask], self.identity[mask], self.fold[mask])

    def heldout(self) -> WildFaces:
        """The held-out identities: for reporting only."""
        return self.select(self.fold == HELDOUT_FOLD)

    def calibration(self) -> WildFaces:
        """The calibration fold: not trained on; calibration, selection, the shipped confusion matrix."""
        return self.select(self.fold == CALIBRATION_FOLD)

    def training(self) -> WildFaces:
        """The training folds."""
        return self.select((self.fold != HELDOUT_FOLD) & (self.fold != CALIBRATION_FOLD))


def load_wild(path: Path | str = DEFAULT_WILD_PATH) -> WildFaces:
    """The whole set, labels mapped onto the FER2013 order of `EMOTIONS`."""
    with np.load(path) as data:
        names = [str(label) for label in data["labels"]]
        identity = np.array([str(i) for i in data["identity"]])
        images = data["images"]
    unknown = sorted(set(names) - set(EMOTIONS))
    if unknown:
        raise ValueError(f"{path}: labels outside the FER2013 set: {unknown}")
    labels = np.array([EMOTIONS.index(name) for name in names], dtype=np.uint8)
    fold = np.array([identity_fold(i) for i in identity], dtype=np.int8)
    return WildFaces(images, labels, identity, fold)
