"""Face detection with MTCNN (the `mtcnn` package's networks and weights), scanned as models/scan.py plans.

Speed, measured in bench/pipeline_speed.py and bench/detection_recall.py: MTCNN's cost grows
with the pixels it scans and, in `mtcnn` 1.0, with one eager TensorFlow call per pyramid level
and stage. So every stage runs as one traced graph that accepts any input size, the whole
image is scanned only for the faces a small copy cannot show, and only where that can pay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from models.scan import MtcnnScanner, ScanOptions

# ONet's own default threshold. On copies scaled to 480 px the 13 faces of the example photos
# score 0.85 to 1.0 and nothing else passes; at full size a 15 px patch on facebook/2 scores 0.90.
DEFAULT_MIN_CONFIDENCE = ScanOptions.onet_threshold
DEFAULT_MIN_FACE_PX = 24  # original pixels: the smallest face looked for (SOCIALFER_MIN_FACE_PX)


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in full-image pixels
    confidence: float


@dataclass(frozen=True)
class Detections:
    """The faces of one image and how far down the scan looked."""

    faces: list[Detection]
    min_face_px: int  # the smallest face looked for, original pixels (over the setting when capped or gated)
    capped: bool  # the scan's pixel ceiling bound: faces from the setting up to `min_face_px` were not looked for


def compile_stages(mtcnn) -> None:
    """Swap each stage's Keras network for a traced function of any batch and image size.

    Traced once per process instead of running eagerly op by op: about half the time per image.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, 3), tf.float32)
    for stage in mtcnn.stages:
        network = stage._model  # mtcnn 1.0 (pinned) keeps the network here and calls it with one batch tensor
        stage._model = tf.function(network.__call__, input_signature=[spec])


def load_scanner(compiled: bool = True) -> MtcnnScanner:
    """MTCNN's networks, loaded (and traced) once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mtcnn import MTCNN

    mtcnn = MTCNN(device="CPU:0")
    if compiled:
        compile_stages(mtcnn)
    return MtcnnScanner(mtcnn)


def to_detections(boxes: np.ndarray, scores: np.ndarray, height: int, width: int) -> list[Detection]:
    """Boxes (x1, y1, x2, y2) rounded and clipped to the image; empty ones dropped."""
    detections = []
    for (x1, y1, x2, y2), confidence in zip(boxes, scores, strict=True):
        x, y = max(0, int(round(x1))), max(0, int(round(y1)))
        w, h = min(int(round(x2 - x1)), width - x), min(int(round(y2 - y1)), height - y)
        if w > 0 and h > 0:
            detections.append(Detection((x, y, w, h), float(confidence)))
    return detections


class FaceDetector:
    """MTCNN over the scan `options` plan; build it once per process (the networks load once)."""

    def __init__(
        self, min_face_px: float = DEFAULT_MIN_FACE_PX, options: ScanOptions | None = None, compiled: bool = True
    ):
        self.options = options or ScanOptions(min_face_px=min_face_px)
        self.scanner = load_scanner(compiled)

    def warm_up(self) -> None:
        """Trace every stage now (a worker does this at start, so its first image is not slow)."""
        import tensorflow as tf

        for network, side in zip((self.scanner.pnet, self.scanner.rnet, self.scanner.onet), (64, 24, 48), strict=True):
            network(tf.zeros((1, side, side, 3)))

    def scan(self, rgb: np.ndarray) -> Detections:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        found = self.scanner.scan(rgb, self.options)
        height, width = rgb.shape[:2]
        faces = to_detections(found.boxes, found.scores, height, width)
        return Detections(faces, int(np.ceil(found.min_face_px)), found.capped)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return self.scan(rgb).faces
