"""From a detector box to the classifier's 48x48 grayscale input.

FER2013 faces are square, centred crops from brows-and-hair to chin. MTCNN boxes on
those same faces (bench/crop_margin.py re-detects 800 of them) are about as tall as the
48x48 image and 0.8 as wide, so the crop is the square of the box's longer side around
the box centre (margin 0): it correlates best with the original faces and the classifier
scores on it as on the originals, while a 0.2 margin loses about 2 points. Where the
square leaves the image it is padded with edge pixels; then grayscale with the ITU-R 601
luma weights (as the FER2013 JPEGs were made), and resized to 48x48 (`resize_to_face`).
"""

from __future__ import annotations

import cv2
import numpy as np

from models.labels import FACE_SIZE

DEFAULT_MARGIN = 0.0  # measured: bench/crop_margin.py


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) to grayscale uint8 (H, W); Y = 0.299 R + 0.587 G + 0.114 B."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def square_region(box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int]:
    """The (left, top, side) of the square crop for a box [x, y, w, h]."""
    x, y, w, h = box
    side = max(1, int(round(max(w, h) * (1 + margin))))
    left = int(round(x + w / 2 - side / 2))
    top = int(round(y + h / 2 - side / 2))
    return left, top, side


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """A 48x48 uint8 crop of `gray` around `box`, edge-padded where the square leaves the image."""
    left, top, side = square_region(box, margin)
    height, width = gray.shape
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    return resize_to_face(gray[top : top + side, left : left + side])


def resize_to_face(region: np.ndarray) -> np.ndarray:
    """A square uint8 region at 48x48: area averaging down, bicubic up.

    Bicubic rather than bilinear for faces under 48 px, chosen on the choosing sets with v4
    (faces shrunk by area averaging, then scaled back): PublicTest accuracy at 24 px 0.633 ->
    0.649, at 32 px 0.673 -> 0.678, at 16 and 40 px up too; the real-photo calibration fold at
    24 px 0.834 -> 0.842 (macro recall 0.641 -> 0.659), at 32 and 40 px up a little. The
    sharper face is nearer the 48 px faces the net learned from (BENCHMARKS.md, small faces).
    """
    interpolation = cv2.INTER_AREA if region.shape[0] > FACE_SIZE else cv2.INTER_CUBIC
    return cv2.resize(region, (FACE_SIZE, FACE_SIZE), interpolation=interpolation)


def crop_faces(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """(N, 48, 48) uint8 crops for every box, converting the image to grayscale once."""
    if not boxes:
        return np.zeros((0, FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    gray = to_gray(rgb)
    return np.stack([crop_face(gray, box, margin) for box in boxes])
