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


def encode_preview(rgb: np.ndarray, max_side: int, quality: int = 85) -> bytes:
    """A JPEG no larger than `max_side` on its longer side, kept for the dashboard."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DecodeError("internal_error", "could not encode the preview")
    return encoded.tobytes()
