"""Awkward and hostile image files, made in code, with the outcome each must have."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_header_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file whose header claims an enormous image."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def exif_rotated_jpeg() -> bytes:
    """40 wide, 20 high as stored, with EXIF orientation 6 (display rotated 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(Image.new("RGB", (40, 20), (200, 30, 30)), "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def sixteen_bit_png() -> bytes:
    ramp = np.tile(np.array([0, 32768, 65535], dtype=np.uint16), (4, 1))
    return encode(Image.fromarray(ramp), "PNG")


def palette_with_transparency_png() -> bytes:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0] * 256)
    return encode(image, "PNG", transparency=0)


def good_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 48), (120, 140, 160)), "JPEG", quality=90)


# name -> (bytes, expected outcome): an error code, or ("ok", height, width)
def corpus() -> dict[str, tuple[bytes, object]]:
    jpeg = good_jpeg()
    return {
        "empty": (b"", "empty_body"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "corrupt_image"),
        "page.html": (b"<!doctype html><html><body>not an image</body></html>", "not_an_image"),
        "notes.txt": (b"just some text\n" * 20, "not_an_image"),
        "bomb.png": (encode(Image.new("L", (10_000, 5_000)), "PNG"), "too_large"),
        "huge-header.png": (huge_header_png(), "too_large"),
        "cmyk.jpg": (encode(Image.new("CMYK", (30, 20), (0, 255, 255, 0)), "JPEG"), ("ok", 20, 30)),
        "sixteen-bit.png": (sixteen_bit_png(), ("ok", 4, 3)),
        "animated.gif": (animated_gif(), ("ok", 16, 16)),
        "exif-rotated.jpg": (exif_rotated_jpeg(), ("ok", 40, 20)),
        "palette-alpha.png": (palette_with_transparency_png(), ("ok", 8, 8)),
        "rgba.png": (encode(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), "PNG"), ("ok", 10, 10)),
        "image.webp": (encode(Image.new("RGB", (12, 12), (10, 200, 10)), "WEBP"), ("ok", 12, 12)),
        "image.bmp": (encode(Image.new("RGB", (12, 9), (10, 10, 200)), "BMP"), ("ok", 9, 12)),
    }
