"""Calibration, abstention and share figures for the expression model's probabilities.

Temperature scaling divides the log-probabilities by one number fitted by log-loss on
sets the model never trained on; it changes no argmax, so accuracy is untouched while the
probabilities come to mean what they say. Vector scaling adds one bias per class as well
(fitted the same way), which may move an argmax. The abstention threshold on the top
probability is the lowest at which the faces kept are right often enough on every
calibration set.

One calibration cannot serve two kinds of faces: the model is under-confident on real
photos (right 86 % of the time at a mean top probability of 0.75) and about right on
FER2013, so a temperature fitted on both was wrong on each (ECE 0.06-0.07). The model card
ships a calibration profile per kind of face, a scaling and a threshold fitted on that kind
(models/ship.py fits them, models/classifier.py applies them).
"""

from __future__ import annotations

import numpy as np

from models.labels import EMOTIONS

ECE_BINS = 15
EPSILON = 1e-7


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T): the same as dividing the logits by T."""
    return apply_scaling(probs, temperature)


def apply_scaling(probs: np.ndarray, temperature: float, bias: np.ndarray | None = None) -> np.ndarray:
    """softmax(log(probs) / T + bias): vector scaling; with no bias, temperature scaling."""
    logits = np.log(np.clip(probs, EPSILON, 1.0)) / temperature
    if bias is not None:
        logits = logits + np.asarray(bias, dtype=float)
    logits -= logits.max(1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(1, keepdims=True)).astype(np.float32)


def calibrated(
    probs: np.ndarray, temperature: float, bias: np.ndarray | None = None, top_label_map: dict | None = None
) -> np.ndarray:
    """A calibration profile applied: the scaling, then the top-label map where the profile has one."""
    scaled = apply_scaling(probs, temperature, bias)
    return scaled if top_label_map is None else apply_top_label_map(scaled, top_label_map)


def fit_vector_scaling(labels: np.ndarray, probs: np.ndarray, steps: int = 50) -> tuple[float, np.ndarray]:
    """(T, bias) minimising log-loss of softmax(a log p + b), a = 1/T, the last class's bias fixed at 0.

    The loss is convex in (a, b), so Newton's method with step halving converges from a = 1, b = 0
    in a few steps; the gradient and Hessian are the multinomial logistic ones (features log p for
    a, the class indicator for each b).
    """
    features = np.log(np.clip(np.asarray(probs, dtype=float), EPSILON, 1.0))
    count, classes = features.shape
    onehot = np.eye(classes)[np.asarray(labels, dtype=int)]
    # d logits_k / d params: column 0 is a (log p_k), columns 1.. are the first K-1 biases.
    indicators = np.broadcast_to(np.eye(classes)[:, :-1], (count, classes, classes - 1))
    jacobian = np.concatenate([features[:, :, None], indicators], axis=2)
    params = np.zeros(classes)
    params[0] = 1.0

    def loss_and_softmax(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logits = np.einsum("nkp,p->nk", jacobian, theta)
        logits -= logits.max(1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(1, keepdims=True))
        return float(-(onehot * (logits - log_norm)).sum(1).mean()), np.exp(logits - log_norm)

    loss, softmax = loss_and_softmax(params)
    for _ in range(steps):
        gradient = np.einsum("nkp,nk->p", jacobian, softmax - onehot) / count
        mean_jacobian = np.einsum("nk,nkp->np", softmax, jacobian)  # E_softmax[d logits / d params]
        weighted = softmax[:, :, None] * (jacobian - mean_jacobian[:, None, :])
        hessian = np.einsum("nkp,nkq->pq", jacobian, weighted) / count + 1e-9 * np.eye(classes)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            trial = params - step
            trial_loss, trial_softmax = loss_and_softmax(trial)
            if trial_loss <= loss:
                break
            step /= 2
        else:
            break
        converged = loss - trial_loss < 1e-10
        params, loss, softmax = trial, trial_loss, trial_softmax
        if converged:
            break
    return float(1.0 / params[0]), np.append(params[1:], 0.0)


def fit_top_label_map(labels: np.ndarray, probs: np.ndarray) -> dict[str, list[float]]:
    """How often the top class is right, as a non-decreasing function of the top probability.

    Isotonic regression by pool-adjacent-violators: faces sorted by top probability, each
    face's correctness (0 or 1), neighbouring blocks merged while a block is right more often
    than the next. Returned as points (each block's mean top probability, its accuracy) that
    `apply_top_label_map` interpolates between. Written out (a few lines of numpy) rather than
    taken from scikit-learn, which would bring it and SciPy into every worker for this alone.
    """
    confidence = np.asarray(probs, dtype=float).max(1)
    correct = (np.asarray(probs).argmax(1) == np.asarray(labels)).astype(float)
    order = np.argsort(confidence, kind="stable")
    means: list[float] = []  # per block: mean confidence, accuracy, weight
    values: list[float] = []
    weights: list[float] = []
    for x, y in zip(confidence[order], correct[order], strict=True):
        means.append(x)
        values.append(y)
        weights.append(1.0)
        while len(values) > 1 and values[-2] >= values[-1]:
            weight = weights[-2] + weights[-1]
            values[-2:] = [(values[-2] * weights[-2] + values[-1] * weights[-1]) / weight]
            means[-2:] = [(means[-2] * weights[-2] + means[-1] * weights[-1]) / weight]
            weights[-2:] = [weight]
    return {"top": [round(float(x), 6) for x in means], "accuracy": [round(float(y), 6) for y in values]}


def apply_top_label_map(probs: np.ndarray, mapping: dict[str, list[float]]) -> np.ndarray:
    """The top probability replaced by the map's accuracy at it, the others scaled to fill the rest.

    The argmax never moves: the new top is kept at least as large as the largest other class
    will be once scaled (and strictly below 1, so no face is ever certain).
    """
    probs = np.asarray(probs, dtype=np.float64)
    rows = np.arange(len(probs))
    top_class = probs.argmax(1)
    top = probs[rows, top_class]
    second = np.sort(probs, axis=1)[:, -2]
    mapped = np.interp(top, mapping["top"], mapping["accuracy"])
    keeps_argmax = second / np.maximum(1.0 - top + second, EPSILON)
    mapped = np.clip(np.maximum(mapped, keeps_argmax + EPSILON), EPSILON, 1.0 - EPSILON)
    rest = np.where(top < 1.0, (1.0 - mapped) / np.maximum(1.0 - top, EPSILON), 0.0)
    out = probs * rest[:, None]
    out[rows, top_class] = mapped
    return (out / out.sum(1, keepdims=True)).astype(np.float32)


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
