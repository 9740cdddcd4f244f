"""Calibration, abstention, share distance and the low-resolution threshold on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    abstention_threshold,
    apply_scaling,
    apply_temperature,
    apply_top_label_map,
    expected_calibration_error,
    fit_temperature,
    fit_top_label_map,
    fit_vector_scaling,
    kept_figures,
    log_loss,
    share_distance,
)
from models.resolution import low_resolution_threshold, shrink_and_restore


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def overconfident_set(true_temperature: float = 2.5, n: int = 20000, seed: int = 0):
    """Labels drawn from softmax(z); the model reports softmax(z * T): too sure by a factor T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 7))
    truth = softmax(logits)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    return labels, softmax(logits * true_temperature)


def test_temperature_recovers_the_overconfidence_and_ece_falls() -> None:
    labels, probs = overconfident_set()
    temperature = fit_temperature(labels, probs)
    assert temperature == pytest.approx(2.5, rel=0.05)
    calibrated = apply_temperature(probs, temperature)
    assert (calibrated.argmax(1) == probs.argmax(1)).all()  # accuracy untouched
    assert expected_calibration_error(labels, calibrated) < 0.02 < expected_calibration_error(labels, probs)
    assert log_loss(labels, calibrated) < log_loss(labels, probs)


def test_vector_scaling_recovers_a_temperature_and_class_biases() -> None:
    """The model reports softmax(z * 2 - b): too sure, and shifted away from some classes; the fit undoes both."""
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 1.5, (20000, 7))
    labels = np.array([rng.choice(7, p=p) for p in softmax(logits)])
    shift = np.array([0.8, -0.5, 0.3, 0.0, -0.7, 0.4, 0.0])  # the last class is the reference (bias 0)
    probs = softmax(logits * 2.0 - shift * 2.0)
    temperature, bias = fit_vector_scaling(labels, probs)
    assert temperature == pytest.approx(2.0, rel=0.05)
    assert np.allclose(bias, shift, atol=0.08), bias
    calibrated = apply_scaling(probs, temperature, bias)
    assert expected_calibration_error(labels, calibrated) < 0.02 < expected_calibration_error(labels, probs)
    assert log_loss(labels, calibrated) < log_loss(labels, apply_temperature(probs, fit_temperature(labels, probs)))


def test_top_label_map_fixes_what_no_scaling_can_and_keeps_the_argmax() -> None:
    """A model sure in the middle and unsure at the top (a bend no temperature straightens): the isotonic
    map of the top probability learns it on one half and holds on the other; no face changes class."""
    labels, probs = overconfident_set(1.0, n=20000, seed=5)
    top = probs.max(1, keepdims=True)
    bent = np.where(probs == top, np.sqrt(top), probs * (1 - np.sqrt(top)) / np.maximum(1 - top, 1e-12))
    fit, check = slice(0, 10000), slice(10000, None)
    mapping = fit_top_label_map(labels[fit], bent[fit])
    assert np.all(np.diff(mapping["accuracy"]) >= 0) and np.all(np.diff(mapping["top"]) >= 0)
    mapped = apply_top_label_map(bent[check], mapping)
    assert (mapped.argmax(1) == bent[check].argmax(1)).all()
    np.testing.assert_allclose(mapped.sum(1), 1.0, atol=1e-5)
    scaled = apply_temperature(bent[check], fit_temperature(labels[fit], bent[fit]))
    assert expected_calibration_error(labels[check], mapped) < 0.02 < expected_calibration_error(labels[check], scaled)
    # A map that would put the top below the runner-up is held at the runner-up instead.
    flat = apply_top_label_map(np.array([[0.5, 0.4, 0.1, 0, 0, 0, 0]]), {"top": [0.0, 1.0], "accuracy": [0.1, 0.1]})
    assert flat.argmax() == 0 and flat[0, 0] >= flat[0, 1]


def test_apply_temperature_one_is_the_identity_and_large_flattens() -> None:
    probs = softmax(np.array([[2.0, 0.0, -1.0, 0, 0, 0, 0]]))
    assert np.allclose(apply_temperature(probs, 1.0), probs, atol=1e-6)
    assert np.allclose(apply_temperature(probs, 1e6), 1 / 7, atol=1e-4)


def test_ece_by_hand() -> None:
    # Two faces at confidence 0.9 (one right), two at 0.6 (both right): |0.5-0.9|/2 + |1-0.6|/2 = 0.4.
    probs = np.full((4, 7), 0.0)
    probs[:2, 0], probs[:2, 1] = 0.9, 0.1
    probs[2:, 0], probs[2:, 1] = 0.6, 0.4
    labels = np.array([0, 1, 0, 0])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.4)


def test_abstention_threshold_keeps_faces_right_at_least_the_target() -> None:
    labels, probs = overconfident_set(1.0, n=5000, seed=3)
    threshold = abstention_threshold({"a": (labels, probs)}, target=0.8)
    kept = kept_figures(labels, probs, threshold)
    assert kept["accuracy"] >= 0.8 and 0 < kept["coverage"] < 1
    just_under = kept_figures(labels, probs, threshold - 0.005)
    assert just_under["accuracy"] < 0.8  # the lowest threshold that reaches the target
    other = overconfident_set(1.0, n=5000, seed=4)
    assert abstention_threshold({"a": (labels, probs), "b": other}) >= threshold - 0.005


def test_share_distance_by_hand() -> None:
    labels = np.array([6, 6, 6, 3])  # 75 % neutral, 25 % happy
    predicted = np.array([0, 6, 6, 3])  # one neutral read as angry
    assert share_distance(labels, predicted) == pytest.approx(0.25)
    assert share_distance(labels, labels) == 0.0


def test_low_resolution_threshold_interpolates_the_five_point_drop() -> None:
    curve = {48: 0.70, 40: 0.70, 32: 0.68, 24: 0.63, 16: 0.50}
    assert low_resolution_threshold(curve) == pytest.approx(32 - 8 * (0.68 - 0.65) / (0.68 - 0.63))
    assert low_resolution_threshold({48: 0.7, 32: 0.69, 16: 0.68}) is None


def test_shrink_and_restore_loses_detail_and_keeps_48() -> None:
    checker = (np.indices((48, 48)).sum(0) % 2 * 255).astype(np.uint8)[None]
    assert np.array_equal(shrink_and_restore(checker, 48), checker)
    small = shrink_and_restore(checker, 16)
    assert small.shape == (1, 48, 48) and small.std() < 0.2 * checker.std()
