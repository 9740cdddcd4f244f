"""Loading the FER2013 NPZ (see ../shared/data/README.md) into its official splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("Training", "PublicTest", "PrivateTest")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_data_path() -> Path:
    """The shared copy beside the project (the CLI passes `SOCIALFER_FER2013` instead when it is set)."""
    return PROJECT_ROOT.parent / "shared" / "data" / "fer2013.npz"


@dataclass(frozen=True)
class Split:
    name: str
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)


def load_split(path: Path | str, name: str) -> Split:
    """One official split; raises ValueError for an unknown name."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
    with np.load(path) as data:
        usage_names = [str(u) for u in data["usage_names"]]
        mask = data["usage"] == usage_names.index(name)
        return Split(name, data["images"][mask], data["labels"][mask])


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
