"""Decoding awkward and hostile images: each gets its documented outcome, none crashes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.image_corpus import animated_gif, corpus, encode, exif_rotated_jpeg, sixteen_bit_png
from workers.imaging import DecodeError, decode_image

CORPUS = corpus()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_file_gets_its_documented_outcome(name: str) -> None:
    data, expected = CORPUS[name]
    if isinstance(expected, str):
        with pytest.raises(DecodeError) as caught:
            decode_image(data)
        assert caught.value.code == expected
    else:
        rgb = decode_image(data)
        assert rgb.dtype == np.uint8 and rgb.shape == (expected[1], expected[2], 3)


def test_cmyk_colours_come_out_as_rgb() -> None:
    from PIL import Image

    red = decode_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=100))
    assert red[4, 4].tolist() == pytest.approx([255, 0, 0], abs=12)


def test_sixteen_bit_values_are_scaled_not_clipped() -> None:
    assert decode_image(sixteen_bit_png())[0, :, 0].tolist() == [0, 127, 255]


def test_animation_uses_the_first_frame() -> None:
    assert decode_image(animated_gif())[0, 0].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied() -> None:
    assert decode_image(exif_rotated_jpeg()).shape[:2] == (40, 20)


def test_transparency_is_composited_on_white() -> None:
    assert decode_image(CORPUS["rgba.png"][0])[0, 0].tolist() == [255, 255, 255]


def test_exactly_at_the_pixel_limit_is_accepted(monkeypatch) -> None:
    from PIL import Image

    import workers.imaging as imaging

    monkeypatch.setattr(imaging, "MAX_PIXELS", 100 * 100)
    assert decode_image(encode(Image.new("L", (100, 100)), "PNG")).shape == (100, 100, 3)
    with pytest.raises(DecodeError):
        decode_image(encode(Image.new("L", (101, 100)), "PNG"))
