"""Faces and their expressions in one RGB image: detect, crop, classify in one batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.classifier import EmotionClassifier
from models.crops import DEFAULT_MARGIN, crop_faces
from models.detector import FaceDetector
from models.labels import EMOTIONS


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]
    confidence: float
    emotion: str
    scores: dict[str, float]

    def to_dict(self) -> dict:
        return {"box": list(self.box), "confidence": self.confidence, "emotion": self.emotion, "scores": self.scores}


class FaceAnalyzer:
    """Holds one detector and one classifier; build it once per process and reuse it.

    Faces are found on a reduced copy but cropped from the full image, so the classifier
    sees as much detail as the photo has.
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        classifier: EmotionClassifier | None = None,
        margin: float = DEFAULT_MARGIN,
    ):
        self.detector = detector or FaceDetector()
        self.classifier = classifier or EmotionClassifier()
        self.margin = margin

    def warm_up(self) -> None:
        """Trace the detector and classifier graphs before the first real image."""
        self.detector.warm_up()
        self.classifier.predict(np.zeros((1, 48, 48), np.uint8))

    def analyze(self, rgb: np.ndarray) -> list[FaceResult]:
        detections = self.detector.detect(rgb)
        if not detections:
            return []
        probs = self.classifier.predict(crop_faces(rgb, [d.box for d in detections], self.margin))
        return [
            FaceResult(
                box=d.box,
                confidence=d.confidence,
                emotion=EMOTIONS[int(p.argmax())],
                scores={name: float(p[i]) for i, name in enumerate(EMOTIONS)},
            )
            for d, p in zip(detections, probs, strict=True)
        ]
