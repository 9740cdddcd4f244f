"""The committed expression model and the analyzer built on it (no training here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from core.vocabulary import EMOTIONS
from models import EmotionClassifier, FaceAnalyzer
from models.calibration import apply_temperature, expected_calibration_error, log_loss, share_distance
from models.data import file_sha256, load_split
from models.evaluate import metrics
from models.resolution import resolution_curve
from models.weights import DEFAULT_MODEL_PATH, model_card_path
from models.wild import load_wild
from tests.support import EXPECTED_FACES
from workers.imaging import decode_image

# Floors a little under the shipped model's figures measured on these fixed subsets (the comments say
# what was measured): room for numeric differences between machines only.
PRIVATE_SUBSET_FLOOR = 0.685  # v4 measured 0.693 (bf16, as delivered: flip averaging, the photos profile)
WILD_HELDOUT_MACRO_RECALL_FLOOR = 0.55  # v4 measured 0.568 on the held-out fold 0 (all 2,160 faces); issue 15's goal
WILD_HELDOUT_SHARE_DISTANCE_CEILING = 0.05  # v4 measured 0.031
# v4 on the PrivateTest subset with the bicubic crop: 0.682 at 32 px and 0.666 at 24 px (float32 and bfloat16 within
# 0.001); with the bilinear crop before it, 0.675 and 0.648, under the 24 px floor
SMALL_FACE_FLOORS = {32: 0.67, 24: 0.655}


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="module")
def private_subset(shared_data: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_split(shared_data / "fer2013.npz", "PrivateTest")
    subset = np.random.default_rng(2013).permutation(len(split))[:1000]
    return split.images[subset], split.labels[subset]


@pytest.fixture(scope="module")
def wild_heldout(shared_data: Path):
    return load_wild(shared_data / "faces_in_the_wild" / "muxspace_dev.npz").heldout()


# The shipped classifier's probabilities on the two fixed sets, computed once for the module: several tests
# read them, and each pass over the 2,160 held-out faces with flip averaging is seconds of CPU.
@pytest.fixture(scope="module")
def private_probs(classifier: EmotionClassifier, private_subset) -> np.ndarray:
    return classifier.predict(private_subset[0])


@pytest.fixture(scope="module")
def heldout_probs(classifier: EmotionClassifier, wild_heldout) -> np.ndarray:
    return classifier.predict(wild_heldout.images)


def test_model_card_records_how_the_model_was_made(shared_data: Path) -> None:
    card = json.loads(model_card_path(DEFAULT_MODEL_PATH).read_text())
    assert card["classes"] == list(EMOTIONS)
    assert card["data_sha256"] == file_sha256(shared_data / "fer2013.npz")
    # v4 with the fer2013 profile: 0.692 (v3 0.698; v2 0.702): it traded FER2013 for real photos.
    assert card["private_test_accuracy"] >= 0.69
    assert card["sets"]["fer2013_privatetest"]["profile"] == "fer2013"
    assert card["wild_sha256"] == file_sha256(shared_data / "faces_in_the_wild" / "muxspace_dev.npz")
    assert DEFAULT_MODEL_PATH.stat().st_size < 20 * 1024 * 1024
    assert card["calibration"]["temperature"] > 0 and 0 < card["abstention"]["threshold"] < 1


def test_card_ships_confusion_matrices_of_the_choosing_and_heldout_sets(shared_data: Path, wild_heldout) -> None:
    matrices = json.loads(model_card_path(DEFAULT_MODEL_PATH).read_text())["confusion_matrices"]
    assert matrices["rows"] == "true class" and matrices["order"] == list(EMOTIONS)
    public = load_split(shared_data / "fer2013.npz", "PublicTest")
    for name in ("fer2013_publictest", "wild_calibration", "wild_heldout"):
        assert np.array(matrices[name]).shape == (7, 7)
    assert np.array(matrices["fer2013_publictest"]).sum(1).tolist() == np.bincount(public.labels, minlength=7).tolist()
    assert np.array(matrices["wild_heldout"]).sum(1).tolist() == np.bincount(wild_heldout.labels, minlength=7).tolist()


def test_predict_returns_probabilities(classifier: EmotionClassifier) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = classifier.predict(faces)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    assert classifier.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError):
        classifier.predict(np.zeros((2, 64, 64), np.uint8))


def test_flip_averaging_is_the_mean_of_both_views_before_the_temperature(classifier: EmotionClassifier) -> None:
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    raw = EmotionClassifier(DEFAULT_MODEL_PATH, flip_tta=False, temperature=1.0)
    plain, mirrored = raw.predict(faces), raw.predict(faces[:, :, ::-1])
    assert classifier.flip_tta  # as the card ships it
    expected = apply_temperature((plain + mirrored) / 2, classifier.temperature)
    assert np.allclose(classifier.predict(faces), expected, atol=1e-5)


def test_accuracy_floor_on_a_fixed_private_test_subset(private_probs: np.ndarray, private_subset) -> None:
    accuracy = float((private_probs.argmax(1) == private_subset[1]).mean())
    assert accuracy >= PRIVATE_SUBSET_FLOOR, accuracy


def test_shares_and_macro_recall_on_the_heldout_real_photo_faces(heldout_probs: np.ndarray, wild_heldout) -> None:
    predicted = heldout_probs.argmax(1)
    recall = metrics(wild_heldout.labels, np.eye(7)[predicted])["macro_recall"]
    assert recall >= WILD_HELDOUT_MACRO_RECALL_FLOOR, recall
    distance = share_distance(wild_heldout.labels, predicted)
    assert distance <= WILD_HELDOUT_SHARE_DISTANCE_CEILING, distance


def test_small_faces_keep_their_accuracy(classifier: EmotionClassifier, private_subset) -> None:
    images, labels = private_subset
    curve = resolution_curve(classifier.predict, images, labels, sides=tuple(SMALL_FACE_FLOORS))
    assert all(curve[side] >= floor for side, floor in SMALL_FACE_FLOORS.items()), curve


def test_the_photos_profile_is_a_temperature_that_calibrates_real_photos(
    classifier: EmotionClassifier, wild_heldout, heldout_probs: np.ndarray
) -> None:
    """The product's profile sharpens (T < 1: the model is under-confident on real photos) and moves no argmax;
    measured on all of fold 0 (v4): ECE 0.017 after it (BENCHMARKS.md)."""
    raw = EmotionClassifier(DEFAULT_MODEL_PATH, temperature=1.0)
    assert classifier.profile == "photos" and classifier.temperature < 1.0 and classifier.bias is None
    calibrated, uncalibrated = heldout_probs, raw.predict(wild_heldout.images)
    assert (calibrated.argmax(1) == uncalibrated.argmax(1)).all()  # accuracy untouched
    assert expected_calibration_error(wild_heldout.labels, calibrated) <= 0.03
    assert expected_calibration_error(wild_heldout.labels, uncalibrated) > 0.06
    assert log_loss(wild_heldout.labels, calibrated) < log_loss(wild_heldout.labels, uncalibrated)


def test_each_profile_calibrates_its_own_kind_of_face_better_than_the_other(
    classifier: EmotionClassifier, private_subset, wild_heldout, private_probs: np.ndarray, heldout_probs: np.ndarray
) -> None:
    """One scaling cannot serve both kinds (BENCHMARKS.md): on each set its own profile has the lower ECE."""
    fer = EmotionClassifier(DEFAULT_MODEL_PATH, profile="fer2013")
    assert fer.bias is not None and fer.abstain_below != classifier.abstain_below
    images, labels = private_subset
    assert expected_calibration_error(labels, fer.predict(images)) + 0.03 < expected_calibration_error(
        labels, private_probs
    )
    assert expected_calibration_error(wild_heldout.labels, heldout_probs) + 0.03 < (
        expected_calibration_error(wild_heldout.labels, fer.predict(wild_heldout.images))
    )
    with pytest.raises(ValueError, match="no calibration profile 'cartoons'"):
        EmotionClassifier(DEFAULT_MODEL_PATH, profile="cartoons")


def test_faces_kept_above_the_abstention_threshold_are_right_four_times_in_five(
    classifier: EmotionClassifier, private_subset, wild_heldout, private_probs: np.ndarray, heldout_probs: np.ndarray
) -> None:
    card = json.loads(model_card_path(DEFAULT_MODEL_PATH).read_text())
    photos = card["calibration"]["profiles"]["photos"]
    assert classifier.abstain_below == card["abstention"]["threshold"] == photos["abstain_below"]
    for probs, labels in ((private_probs, private_subset[1]), (heldout_probs, wild_heldout.labels)):
        uncertain = classifier.is_uncertain(probs)
        assert 0.1 < uncertain.mean() < 0.7  # it abstains on some faces, not on most
        assert (probs[~uncertain].argmax(1) == labels[~uncertain]).mean() >= 0.80


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


def test_auto_precision_is_the_faster_one_measured_once_per_model(monkeypatch, tmp_path: Path) -> None:
    """On a CPU with bfloat16 units "auto" times both precisions on a probe batch and keeps the faster
    (here a bfloat16 pass made slow on purpose); a second classifier of the same file reuses the choice."""
    import keras

    import models.classifier as classifier
    import models.hardware as hardware

    path = tmp_path / "tiny.keras"
    inputs = keras.Input((48, 48, 1))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs))
    keras.Model(inputs, keras.layers.Dense(7, activation="softmax", name="emotion")(flat)).save(path)
    real_forward, probed, slow = classifier.compiled_forward, [], {"policy": "mixed_bfloat16"}

    def forward(model: keras.Model):
        run = real_forward(model)
        policy = model.layers[1].dtype_policy.name

        def timed_run(x: np.ndarray) -> np.ndarray:
            probed.append(policy)
            if policy == slow["policy"]:
                time.sleep(0.05)
            return run(x)

        return timed_run

    monkeypatch.setattr(classifier, "compiled_forward", forward)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(classifier, "FASTEST", {})
    first = EmotionClassifier(path)
    assert first.precision == "float32" and {"float32", "mixed_bfloat16"} <= set(probed)
    probed.clear()
    second = EmotionClassifier(path)
    assert second.precision == "float32" and probed == []  # built once, not timed again
    assert second.predict(np.zeros((3, 48, 48), np.uint8)).shape == (3, 7)
    # Where bfloat16 is the faster, it is the one kept.
    monkeypatch.setattr(classifier, "FASTEST", {})
    slow["policy"] = "float32"
    assert EmotionClassifier(path).precision == "mixed_bfloat16"
    assert EmotionClassifier(path, precision="float32").precision == "float32"


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        EmotionClassifier(DEFAULT_MODEL_PATH, precision="int4")
