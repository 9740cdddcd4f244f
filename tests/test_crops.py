"""From an MTCNN box to the classifier input: geometry, padding and grayscale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.crops import crop_face, crop_faces, square_region, to_gray


def test_square_region_is_centred_and_larger_than_the_box() -> None:
    left, top, side = square_region((100, 50, 80, 100), margin=0.2)
    assert side == 120  # longer side 100, plus 20 %
    assert (left + side / 2, top + side / 2) == (140, 100)  # the box centre


def test_crop_is_48x48_uint8_and_shows_the_face_region() -> None:
    gray = np.zeros((200, 200), np.uint8)
    gray[60:140, 60:140] = 255  # the "face"
    crop = crop_face(gray, (60, 60, 80, 80), margin=0.0)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop.min() == 255  # no margin: only the face


def test_margin_adds_context_around_the_face() -> None:
    gray = np.zeros((200, 200), np.uint8)
    gray[60:140, 60:140] = 255
    crop = crop_face(gray, (60, 60, 80, 80), margin=0.5)
    assert crop[0, 0] == 0 and crop[24, 24] == 255


def test_box_at_the_edge_is_padded_with_edge_pixels() -> None:
    gray = np.full((100, 100), 7, np.uint8)
    crop = crop_face(gray, (0, 0, 30, 40), margin=0.2)
    assert crop.shape == (48, 48)
    assert (crop == 7).all()


def test_grayscale_uses_luma_weights() -> None:
    rgb = np.zeros((1, 3, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    assert to_gray(rgb)[0].tolist() == pytest.approx([76, 150, 29], abs=1)


def test_crop_faces_stacks_and_handles_no_boxes() -> None:
    rgb = np.zeros((100, 100, 3), np.uint8)
    assert crop_faces(rgb, []).shape == (0, 48, 48)
    assert crop_faces(rgb, [(10, 10, 20, 20), (50, 50, 30, 30)]).shape == (2, 48, 48)


def test_shipped_crop_reproduces_the_fer2013_framing(shared_data: Path) -> None:
    """Re-detected FER2013 faces, cropped as the worker crops, look like the training images."""
    from models.crops import DEFAULT_MARGIN
    from models.data import load_split
    from models.detector import FaceDetector
    from models.reframe import as_photo, correlation

    split = load_split(shared_data / "fer2013.npz", "PrivateTest")
    faces = split.images[np.random.default_rng(7).permutation(len(split))[:200]]
    detector = FaceDetector()
    similarity: dict[float, list[float]] = {DEFAULT_MARGIN - 0.2: [], DEFAULT_MARGIN: [], DEFAULT_MARGIN + 0.2: []}
    for face in faces:
        photo = as_photo(face)
        detections = detector.detect(photo)
        if len(detections) != 1:
            continue
        for margin, scores in similarity.items():
            scores.append(correlation(crop_face(to_gray(photo), detections[0].box, margin), face))
    medians = {margin: float(np.median(scores)) for margin, scores in similarity.items()}
    assert len(similarity[DEFAULT_MARGIN]) >= 150
    assert medians[DEFAULT_MARGIN] >= 0.6, medians
    assert medians[DEFAULT_MARGIN] > max(medians[DEFAULT_MARGIN - 0.2], medians[DEFAULT_MARGIN + 0.2]), medians
