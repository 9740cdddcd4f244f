"""Decoding downloaded bytes into an RGB array, with a clear code when that fails.

Pillow reads the header first, so an image that would need more than `MAX_PIXELS` is
refused before a single pixel is decoded (decompression bombs). Then: EXIF orientation
applied, the first frame of an animation, CMYK / 16-bit / palette / alpha images
converted to 8-bit RGB (transparency composited on white).
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # 40 megapixels
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, as a second line


class DecodeError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def decode_image(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright; raises DecodeError with `not_an_image`, `too_large` or `corrupt_image`."""
    if not data:
        raise DecodeError("empty_body", "no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DecodeError("too_large", f"image is {width}x{height}, over {MAX_PIXELS:,} pixels")
            image.seek(0)  # the first frame of an animation
            image.load()
            rgb = to_rgb(ImageOps.exif_transpose(image))
    except DecodeError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        code = "not_an_image" if isinstance(exc, UnidentifiedImageError) else "too_large"
        raise DecodeError(code, f"cannot use this image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError("corrupt_image", f"the image is truncated or corrupt: {exc}") from exc
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise DecodeError("corrupt_image", "the image has no pixels")
    return rgb


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        wide = np.asarray(image, dtype=np.uint32)
        top = 65535 if image.mode.startswith("I;16") or wide.max() > 255 else 255
        gray = (wide * 255 // max(top, 1)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def encode_preview(rgb: np.ndarray, max_side: int, quality: int = 85) -> bytes:
    """A JPEG no larger than `max_side` on its longer side, kept for the dashboard."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DecodeError("internal_error", "could not encode the preview")
    return encoded.tobytes()
