"""Decoding downloaded bytes into an RGB array (OpenCV), with a clear code when that fails."""

from __future__ import annotations

import cv2
import numpy as np

MAX_PIXELS = 40_000_000  # a decompression-bomb guard: 40 megapixels


class DecodeError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def decode_image(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB; EXIF orientation applied; refuses non-images and oversized images."""
    if not data:
        raise DecodeError("empty_body", "no image data")
    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise DecodeError("not_an_image", f"cannot decode image: {exc}") from exc
    if bgr is None:
        raise DecodeError("not_an_image", "the data is not an image OpenCV can decode")
    height, width = bgr.shape[:2]
    if height * width > MAX_PIXELS:
        raise DecodeError("too_large", f"image is {width}x{height}, over {MAX_PIXELS:,} pixels")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
