"""Image formats the worker decodes, recognised by their first bytes.

File names, URLs and declared Content-Types say nothing reliable about what a body is;
the API (uploads) and the fetcher (downloads) both judge by these signatures.
"""

from __future__ import annotations

SNIFF_BYTES = 12
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff_image_type(head: bytes) -> str | None:
    """The content type that the first bytes show, or None if they are not an image we decode."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((content_type for magic, content_type in SIGNATURES if head.startswith(magic)), None)
