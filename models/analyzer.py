"""Faces and their expressions in one RGB image: detect, crop, classify in one batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.classifier import EmotionClassifier
from models.crops import DEFAULT_MARGIN, crop_faces
from models.detector import DEFAULT_MIN_FACE_PX, Detection, FaceDetector
from models.labels import EMOTIONS

DEFAULT_MAX_FACES = 256  # per image (SOCIALFER_MAX_FACES): a crowd beyond it keeps its largest faces


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]
    confidence: float
    emotion: str
    scores: dict[str, float]
    uncertain: bool = False  # the top probability is under the classifier's `abstain_below`

    @property
    def size_px(self) -> int:
        """The shorter side of the box: how many pixels the classifier's 48 x 48 crop was made from."""
        return min(self.box[2], self.box[3])

    def to_dict(self) -> dict:
        return {
            "box": list(self.box),
            "size_px": self.size_px,
            "confidence": self.confidence,
            "emotion": self.emotion,
            "scores": self.scores,
            "uncertain": self.uncertain,
        }


@dataclass(frozen=True)
class ImageAnalysis:
    """Everything one image gave: its faces (reading order) and what the detector could not cover."""

    faces: list[FaceResult] = field(default_factory=list)
    faces_beyond_cap: int = 0  # faces found beyond `max_faces`, the smallest ones, not classified
    min_face_px: int = DEFAULT_MIN_FACE_PX  # the smallest face looked for (above the setting when capped or gated)
    scan_capped: bool = False  # the detector's pixel ceiling bound on this image


def largest(detections: list[Detection], limit: int) -> list[Detection]:
    """At most `limit` detections, the largest (then most confident) kept: they classify best."""
    if len(detections) <= limit:
        return detections
    return sorted(detections, key=lambda d: (-min(d.box[2], d.box[3]), -d.confidence))[:limit]


def reading_order(detections: list[Detection]) -> list[Detection]:
    """Rows from top to bottom, left to right in a row: a face's number then says where to look.

    A face joins the current row while its centre is within half a median face height of the row's first.
    """
    if not detections:
        return []
    tolerance = float(np.median([d.box[3] for d in detections])) / 2
    by_top = sorted(detections, key=lambda d: d.box[1] + d.box[3] / 2)
    rows: list[list[Detection]] = [[by_top[0]]]
    for detection in by_top[1:]:
        first = rows[-1][0]
        if abs((detection.box[1] + detection.box[3] / 2) - (first.box[1] + first.box[3] / 2)) <= tolerance:
            rows[-1].append(detection)
        else:
            rows.append([detection])
    return [d for row in rows for d in sorted(row, key=lambda d: d.box[0])]


class FaceAnalyzer:
    """Holds one detector and one classifier; build it once per process and reuse it.

    Faces are found by the detector's scan but cropped from the full image, so the classifier
    sees as much detail as the photo has.
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        classifier: EmotionClassifier | None = None,
        margin: float = DEFAULT_MARGIN,
        max_faces: int = DEFAULT_MAX_FACES,
    ):
        self.detector = detector or FaceDetector()
        self.classifier = classifier or EmotionClassifier()
        self.margin = margin
        self.max_faces = max_faces

    def warm_up(self) -> None:
        """Trace the detector and classifier graphs before the first real image."""
        self.detector.warm_up()
        self.classifier.predict(np.zeros((1, 48, 48), np.uint8))

    def analyze_image(self, rgb: np.ndarray) -> ImageAnalysis:
        found = self.detector.scan(rgb)
        kept = reading_order(largest(found.faces, self.max_faces))
        analysis = ImageAnalysis(
            faces_beyond_cap=len(found.faces) - len(kept), min_face_px=found.min_face_px, scan_capped=found.capped
        )
        if not kept:
            return analysis
        probs = self.classifier.predict(crop_faces(rgb, [d.box for d in kept], self.margin))
        # The model card's abstention threshold, where the classifier has one (None: never uncertain).
        abstain_below = getattr(self.classifier, "abstain_below", None)
        faces = [
            FaceResult(
                box=d.box,
                confidence=d.confidence,
                emotion=EMOTIONS[int(p.argmax())],
                scores={name: float(p[i]) for i, name in enumerate(EMOTIONS)},
                uncertain=abstain_below is not None and float(p.max()) < abstain_below,
            )
            for d, p in zip(kept, probs, strict=True)
        ]
        return ImageAnalysis(faces, analysis.faces_beyond_cap, analysis.min_face_px, analysis.scan_capped)

    def analyze(self, rgb: np.ndarray) -> list[FaceResult]:
        return self.analyze_image(rgb).faces
