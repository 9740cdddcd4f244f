"""What the worker keeps of a photo, by `SOCIALFER_PREVIEWS`: the preview, one with every face blurred, or none.

A blurred preview still lets an analyst check the boxes and labels the dashboard draws on
it, without keeping a recognisable face. Blurring happens on the full-size image before
downscaling, each box widened a little so hair and chin go too, with a Gaussian whose
width follows the face, so a large face is as unrecognisable as a small one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from workers.imaging import encode_preview

FACE_PADDING = 0.15  # of the box's size, on each side
BLUR_SIGMA_PER_SIDE = 1 / 6  # sigma as a share of the box's longer side


def blur_faces(rgb: np.ndarray, boxes: Iterable[Sequence[int]]) -> np.ndarray:
    """A copy of `rgb` with each (x, y, w, h) box, padded, heavily blurred; the rest unchanged."""
    out = rgb.copy()
    height, width = rgb.shape[:2]
    for x, y, w, h in boxes:
        pad_x, pad_y = round(w * FACE_PADDING), round(h * FACE_PADDING)
        left, top = max(0, x - pad_x), max(0, y - pad_y)
        right, bottom = min(width, x + w + pad_x), min(height, y + h + pad_y)
        if right <= left or bottom <= top:
            continue
        sigma = max(2.0, max(w, h) * BLUR_SIGMA_PER_SIDE)
        region = out[top:bottom, left:right]
        out[top:bottom, left:right] = cv2.GaussianBlur(region, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return out


def preview_to_keep(rgb: np.ndarray, boxes: Iterable[Sequence[int]], mode: str, max_side: int) -> bytes | None:
    """The preview bytes for `mode` (`on`, `blurred` or `off`)."""
    if mode == "off":
        return None
    if mode == "blurred":
        rgb = blur_faces(rgb, boxes)
    return encode_preview(rgb, max_side)
