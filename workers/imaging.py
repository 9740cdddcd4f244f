"""Decoding downloaded bytes into an RGB array, with a clear code when that fails.

Pillow reads the header first, so the cost of an image is judged before a pixel is
decoded, and refused when it is out of bounds:
- pixels (`MAX_PIXELS`), each side (`MAX_SIDE`) and the aspect ratio (`MAX_ASPECT_RATIO`):
  a 76 KB PNG of 1 x 39,000,000 pixels is refused from its 33-byte header;
- for JPEG, the work of a progressive decode, which grows with scans x pixels
  (`MAX_JPEG_SCANS`, `MAX_SCAN_MEGAPIXELS`): thousands of refinement scans in a few hundred
  KB are `too_complex`;
- a JPEG whose entropy-coded data is too short to hold one bit per 8x8 block cannot be a
  whole image: truncated data closed with an EOI marker (which libjpeg would fill with grey)
  is `corrupt_image`, as is a file that simply ends (Pillow's LOAD_TRUNCATED_IMAGES stays off);
- the decoder reads through `BudgetReader`, which stops it once the attempt's deadline has
  passed (`too_complex`).
Then: EXIF orientation applied, the first frame of an animation, CMYK / 16-bit / palette /
alpha images converted to 8-bit RGB (transparency composited on white).
"""

from __future__ import annotations

import io
import re
import warnings
from math import ceil

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from workers.deadline import Deadline

MAX_PIXELS = 40_000_000  # 40 megapixels
MAX_SIDE = 20_000  # pixels on either side
MAX_ASPECT_RATIO = 25  # longer side over shorter side; MTCNN could not find a face in a thinner strip anyway
MAX_JPEG_SCANS = 100  # encoders write 1 (baseline) to about 12 (progressive); libjpeg-turbo's tools suggest 100s
MAX_SCAN_MEGAPIXELS = 1_000  # scans x megapixels: 10 scans of a 40 MP photo pass, 4,000 of one do not
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, as a second line
ImageFile.LOAD_TRUNCATED_IMAGES = False

# JPEG markers: start-of-frame types, the arithmetic/hierarchical ones (no browser decodes them), scans.
SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
UNSUPPORTED_SOF = frozenset({0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
SOS, EOI = 0xDA, 0xD9
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # ends an entropy-coded segment (not stuffing or RSTn)


class DecodeError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class BudgetReader(io.BytesIO):
    """The image bytes as a file whose reads fail once the deadline has passed.

    Pillow's decoders pull their input in blocks, so this bounds the decode to the deadline
    plus the work of one block (which the limits above keep small).
    """

    def __init__(self, data: bytes, deadline: Deadline | None):
        super().__init__(data)
        self.deadline = deadline

    def read(self, size: int | None = -1) -> bytes:
        if self.deadline is not None and self.deadline.expired():
            raise DecodeError("too_complex", f"decoding did not finish within the {self.deadline.seconds:g} s deadline")
        return super().read(size)


def check_dimensions(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise DecodeError("too_large", f"image is {width}x{height}, over {MAX_PIXELS:,} pixels")
    if max(width, height) > MAX_SIDE:
        raise DecodeError("too_large", f"image is {width}x{height}, a side over {MAX_SIDE:,} pixels")
    if min(width, height) < 1:
        raise DecodeError("corrupt_image", f"image is {width}x{height}")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise DecodeError("bad_aspect_ratio", f"image is {width}x{height}, longer than {MAX_ASPECT_RATIO}:1")


def jpeg_blocks(frame: bytes) -> int:
    """8x8 blocks over all components of a start-of-frame segment's payload (height, width, sampling)."""
    height, width, count = int.from_bytes(frame[1:3]), int.from_bytes(frame[3:5]), frame[5]
    factors = [(frame[7 + 3 * i] >> 4, frame[7 + 3 * i] & 15) for i in range(count)]
    h_max, v_max = max(h for h, _ in factors), max(v for _, v in factors)
    return sum(ceil(ceil(width * h / h_max) / 8) * ceil(ceil(height * v / v_max) / 8) for h, v in factors)


def check_jpeg(data: bytes, width: int, height: int) -> None:
    """Walk the markers (linear: a regular expression finds each scan's end) and judge the decode's work."""
    at, scans, entropy_bytes, frame = 2, 0, 0, None
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise DecodeError("corrupt_image", f"no JPEG marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == EOI:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
            continue
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4])
        if marker in SOF_MARKERS and frame is None:
            if marker in UNSUPPORTED_SOF:
                raise DecodeError("not_an_image", f"arithmetic-coded or hierarchical JPEG (SOF{marker - 0xC0})")
            frame = data[at + 4 : end]
        if marker == SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise DecodeError("too_complex", f"the JPEG has over {MAX_JPEG_SCANS} scans")
            following = NEXT_MARKER.search(data, end)
            stop = following.start() if following else len(data)
            entropy_bytes, end = entropy_bytes + stop - end, stop
        at = end
    if scans * width * height > MAX_SCAN_MEGAPIXELS * 1_000_000:
        work = f"{scans} scans of {width}x{height} pixels"
        raise DecodeError("too_complex", f"{work}: over {MAX_SCAN_MEGAPIXELS} megapixel-scans")
    if frame is not None and len(frame) >= 6 and entropy_bytes * 8 < jpeg_blocks(frame):
        raise DecodeError(
            "corrupt_image", f"truncated: {entropy_bytes:,} bytes of image data cannot code {width}x{height} pixels"
        )


def decode_image(data: bytes, deadline: Deadline | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright; else DecodeError with its code (`too_large`, `too_complex`, ...)."""
    if not data:
        raise DecodeError("empty_body", "no image data")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(BudgetReader(data, deadline))
            check_dimensions(*image.size)
            if image.format in ("JPEG", "MPO"):
                check_jpeg(data, *image.size)
            image.seek(0)  # the first frame of an animation
            ImageFile.LOAD_TRUNCATED_IMAGES = False  # whatever another library set: a short file is corrupt
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
