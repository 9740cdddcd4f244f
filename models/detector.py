"""Face detection with MTCNN (the `mtcnn` package, weights ship inside it)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

DEFAULT_MIN_CONFIDENCE = 0.95  # 0.90 admits a 15 px false positive on facebook/2
DEFAULT_MIN_FACE_SIZE = 20


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    confidence: float


class FaceDetector:
    """MTCNN with a confidence floor; boxes are clipped to the image."""

    def __init__(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE, min_face_size: int = DEFAULT_MIN_FACE_SIZE):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from mtcnn import MTCNN

        self.mtcnn = MTCNN(device="CPU:0")
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        if min(rgb.shape[:2]) < self.min_face_size:
            return []
        found = self.mtcnn.detect_faces(rgb, min_face_size=self.min_face_size)
        detections = []
        for face in found:
            if face["confidence"] < self.min_confidence:
                continue
            x, y, w, h = (int(round(v)) for v in face["box"])
            x, y = max(0, x), max(0, y)
            w, h = min(w, rgb.shape[1] - x), min(h, rgb.shape[0] - y)
            if w > 0 and h > 0:
                detections.append(Detection((x, y, w, h), float(face["confidence"])))
        return detections
