"""Face detection with MTCNN (the `mtcnn` package, weights ship inside it).

Speed, measured in bench/pipeline_speed.py: MTCNN's cost grows with the pixels it scans
and, in `mtcnn` 1.0, with one eager TensorFlow call per pyramid level and stage. So the
detector scans a copy no larger than `max_side` (boxes are mapped back to the full image)
and runs each stage's network as one traced graph that accepts any input size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

# ONet's own default threshold. On copies scaled to 480 px the 13 faces of the example photos
# score 0.85 to 1.0 and nothing else passes; at full size a 15 px patch on facebook/2 scores 0.90.
DEFAULT_MIN_CONFIDENCE = 0.80
DEFAULT_MIN_FACE_SIZE = 20  # pixels in the scanned copy: faces under ~4 % of a 480 px side are not looked for
DEFAULT_MAX_SIDE = 480


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in full-image pixels
    confidence: float


def compile_stages(mtcnn) -> None:
    """Swap each stage's Keras network for a traced function of any batch and image size.

    Traced once per process instead of running eagerly op by op: about half the time per image.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, 3), tf.float32)
    for stage in mtcnn.stages:
        network = stage._model  # mtcnn 1.0 (pinned) keeps the network here and calls it with one batch tensor
        stage._model = tf.function(network.__call__, input_signature=[spec])


class FaceDetector:
    """MTCNN on a copy at most `max_side` pixels long (None: full size), with a confidence floor."""

    def __init__(
        self,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        max_side: int | None = DEFAULT_MAX_SIDE,
        compiled: bool = True,
    ):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from mtcnn import MTCNN

        self.mtcnn = MTCNN(device="CPU:0")
        if compiled:
            compile_stages(self.mtcnn)
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size
        self.max_side = max_side

    def warm_up(self) -> None:
        """Trace every stage now (a worker does this at start, so its first image is not slow)."""
        import tensorflow as tf

        for stage, side in zip(self.mtcnn.stages, (64, 24, 48), strict=True):
            stage._model(tf.zeros((1, side, side, 3)))

    def scan_copy(self, rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The image to scan and its scale relative to the original."""
        longest = max(rgb.shape[:2])
        if self.max_side is None or longest <= self.max_side:
            return rgb, 1.0
        scale = self.max_side / longest
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        scanned, scale = self.scan_copy(rgb)
        if min(scanned.shape[:2]) < self.min_face_size:
            return []
        found = self.mtcnn.detect_faces(scanned, min_face_size=self.min_face_size)
        height, width = rgb.shape[:2]
        detections = []
        for face in found:
            if face["confidence"] < self.min_confidence:
                continue
            x, y, w, h = (int(round(v / scale)) for v in face["box"])
            x, y = max(0, x), max(0, y)
            w, h = min(w, width - x), min(h, height - y)
            if w > 0 and h > 0:
                detections.append(Detection((x, y, w, h), float(face["confidence"])))
        return detections
