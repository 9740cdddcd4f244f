"""How accuracy falls as faces get small: FER2013 faces shrunk and scaled back as the crop does.

A face `side` px wide in a photo reaches the classifier scaled up to 48x48 with bicubic
interpolation (`models.crops.resize_to_face`). Shrinking a 48x48 face with area averaging and
scaling it back the same way gives what the classifier sees of a face that small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from models.crops import resize_to_face
from models.labels import FACE_SIZE

SIDES = (48, 40, 32, 24, 16)
LOW_RESOLUTION_DROP = 0.05  # a face is low-resolution where accuracy is this far under the 48 px figure


def shrink_and_restore(faces: np.ndarray, side: int) -> np.ndarray:
    """(N, 48, 48) uint8 faces as a `side` px photo shows them, back at 48x48."""
    if side >= FACE_SIZE:
        return faces
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        out[i] = resize_to_face(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA))
    return out


def resolution_curve(
    predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray, sides: Sequence[int] = SIDES
) -> dict[int, float]:
    """Accuracy at each side."""
    return {side: float((predict(shrink_and_restore(images, side)).argmax(1) == labels).mean()) for side in sides}


def low_resolution_threshold(curve: dict[int, float], drop: float = LOW_RESOLUTION_DROP) -> float | None:
    """The side (px, linearly interpolated between measured sides) where accuracy is `drop` under the 48 px figure.

    None when no measured side falls that far.
    """
    floor = curve[FACE_SIZE] - drop
    sides = sorted(curve, reverse=True)
    for larger, smaller in zip(sides, sides[1:], strict=False):
        if curve[smaller] <= floor:  # the first side that low; the larger one is still above the floor
            return float(larger - (larger - smaller) * (curve[larger] - floor) / (curve[larger] - curve[smaller]))
    return None
