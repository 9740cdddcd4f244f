"""The committed expression model and the analyzer built on it (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.vocabulary import EMOTIONS
from models import EmotionClassifier, FaceAnalyzer
from models.data import file_sha256, load_split
from models.weights import DEFAULT_MODEL_PATH, model_card_path
from tests.support import EXPECTED_FACES
from workers.imaging import decode_image

# Measured 0.701 on this subset (bf16; 0.702 in float32, BENCHMARKS.md); the floor leaves room for
# numeric differences between machines only.
PRIVATE_SUBSET_FLOOR = 0.69


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier(DEFAULT_MODEL_PATH)


def test_model_card_records_how_the_model_was_made(shared_data: Path) -> None:
    card = json.loads(model_card_path(DEFAULT_MODEL_PATH).read_text())
    assert card["classes"] == list(EMOTIONS)
    assert card["data_sha256"] == file_sha256(shared_data / "fer2013.npz")
    assert card["private_test_accuracy"] >= 0.70  # issue 3's bar, as the product delivers it
    assert DEFAULT_MODEL_PATH.stat().st_size < 20 * 1024 * 1024


def test_predict_returns_probabilities(classifier: EmotionClassifier) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = classifier.predict(faces)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert classifier.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError):
        classifier.predict(np.zeros((2, 64, 64), np.uint8))


def test_flip_averaging_is_the_mean_of_both_views(classifier: EmotionClassifier) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    plain, mirrored = classifier.predict(faces), classifier.predict(faces[:, :, ::-1])
    classifier.flip_tta = True
    try:
        both = classifier.predict(faces)
    finally:
        classifier.flip_tta = False
    assert np.allclose(both, (plain + mirrored) / 2, atol=1e-5)


def test_accuracy_floor_on_a_fixed_private_test_subset(classifier: EmotionClassifier, shared_data: Path) -> None:
    split = load_split(shared_data / "fer2013.npz", "PrivateTest")
    subset = np.random.default_rng(2013).permutation(len(split))[:1000]
    accuracy = float((classifier.predict(split.images[subset]).argmax(1) == split.labels[subset]).mean())
    assert accuracy >= PRIVATE_SUBSET_FLOOR, accuracy


def test_analyzer_finds_the_faces_in_the_examples(shared_data: Path, classifier: EmotionClassifier) -> None:
    analyzer = FaceAnalyzer(classifier=classifier)
    found = {}
    for name in EXPECTED_FACES:
        rgb = decode_image((shared_data / "social_examples" / f"{name}.jpeg").read_bytes())
        faces = analyzer.analyze(rgb)
        found[name] = len(faces)
        for face in faces:
            x, y, w, h = face.box
            assert x >= 0 and y >= 0 and x + w <= rgb.shape[1] and y + h <= rgb.shape[0]
            assert face.emotion in EMOTIONS and abs(sum(face.scores.values()) - 1) < 1e-3
    assert found == EXPECTED_FACES


def test_bfloat16_inference_agrees_with_float32(shared_data: Path) -> None:
    faces = load_split(shared_data / "fer2013.npz", "PrivateTest").images[:500]
    exact = EmotionClassifier(DEFAULT_MODEL_PATH, precision="float32").predict(faces)
    fast = EmotionClassifier(DEFAULT_MODEL_PATH, precision="mixed_bfloat16").predict(faces)
    assert fast.dtype == np.float32 and np.allclose(fast.sum(1), 1.0, atol=1e-3)
    assert np.abs(fast - exact).max() < 0.1
    assert (fast.argmax(1) == exact.argmax(1)).mean() >= 0.98


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        EmotionClassifier(DEFAULT_MODEL_PATH, precision="int4")
