"""Calibration, abstention and share figures for the expression model's probabilities.

Temperature scaling divides the log-probabilities by one number fitted by log-loss on
sets the model never trained on; it changes no argmax, so accuracy is untouched while the
probabilities come to mean what they say. The abstention threshold on the top probability
is the lowest at which the faces kept are right often enough on every calibration set.
"""

from __future__ import annotations

import numpy as np

from models.labels import EMOTIONS

ECE_BINS = 15
EPSILON = 1e-7


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T): the same as dividing the logits by T."""
    logits = np.log(np.clip(probs, EPSILON, 1.0)) / temperature
    logits -= logits.max(1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(1, keepdims=True)).astype(np.float32)


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], EPSILON, 1.0)).mean())


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width bins of the top probability: the mean gap between confidence and accuracy."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            gap += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(gap)


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per bin: its range, count, mean confidence and accuracy (the reliability diagram's points)."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": int(inside.sum()),
                "confidence": float(confidence[inside].mean()) if inside.any() else None,
                "accuracy": float(correct[inside].mean()) if inside.any() else None,
            }
        )
    return rows


def fit_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    """The temperature minimising log-loss: golden-section search on log T in [-2, 2] (T from 0.14 to 7.4)."""
    low, high = -2.0, 2.0
    ratio = (np.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return log_loss(labels, apply_temperature(probs, float(np.exp(log_t))))

    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    for _ in range(60):
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return float(np.exp((low + high) / 2))


def kept_figures(labels: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """Coverage (share of faces kept) and the accuracy of the kept faces at a top-probability threshold."""
    kept = probs.max(1) >= threshold
    accuracy = float((probs[kept].argmax(1) == labels[kept]).mean()) if kept.any() else 0.0
    return {"coverage": float(kept.mean()), "accuracy": accuracy, "n": int(len(labels))}


def abstention_threshold(sets: dict[str, tuple[np.ndarray, np.ndarray]], target: float = 0.80) -> float:
    """The lowest top-probability threshold at which the kept faces of every set are right at least `target`.

    Thresholds are tried on a grid of 0.005; for each set the lowest one reaching the target
    counts, and the strictest set decides.
    """
    thresholds = np.round(np.arange(0.0, 1.0, 0.005), 3)
    needed = []
    for labels, probs in sets.values():
        reach = [t for t in thresholds if kept_figures(labels, probs, t)["accuracy"] >= target]
        needed.append(reach[0] if reach else 1.0)
    return float(max(needed))


def shares(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=len(EMOTIONS)) / max(len(labels), 1)


def share_distance(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Total variation between the predicted and the true class shares: half the L1 distance, 0 to 1."""
    return float(np.abs(shares(np.asarray(labels)) - shares(np.asarray(predicted))).sum() / 2)
