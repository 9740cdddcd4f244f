"""Batched expression classification of 48x48 grayscale faces."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from models.labels import EMOTIONS, FACE_SIZE
from models.weights import DEFAULT_MODEL_PATH


class EmotionClassifier:
    """Loads the committed model (or `$SOCIALFER_MODEL`) once; `predict` maps (N, 48, 48) uint8 to (N, 7) probabilities.

    With `flip_tta` (default on) each face is also classified mirrored and the two
    answers averaged: faces are left-right symmetric, so this is free accuracy.
    """

    def __init__(self, model_path: Path | str | None = None, *, flip_tta: bool = True, batch_size: int = 256):
        self.model_path = Path(model_path or os.environ.get("SOCIALFER_MODEL") or DEFAULT_MODEL_PATH)
        if not self.model_path.exists():
            raise FileNotFoundError(f"expression model not found: {self.model_path}")
        self.model = keras.models.load_model(self.model_path, compile=False)
        self.flip_tta = flip_tta
        self.batch_size = batch_size
        self.classes = EMOTIONS

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"expected faces of shape (N, {FACE_SIZE}, {FACE_SIZE}), got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        x = faces.astype(np.float32)[..., None]
        probs = self._forward(x)
        if self.flip_tta:
            probs = (probs + self._forward(x[:, :, ::-1])) / 2
        return probs

    def _forward(self, x: np.ndarray) -> np.ndarray:
        out = [
            keras.ops.convert_to_numpy(self.model(x[i : i + self.batch_size], training=False))
            for i in range(0, len(x), self.batch_size)
        ]
        return np.concatenate(out).astype(np.float32)
