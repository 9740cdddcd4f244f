"""Which scaling the `fer2013` calibration profile gets, by repeated five-fold cross-validation on PublicTest.

The shipped model's delivered probabilities (its flip mode and precision, no calibration) on
PublicTest; each candidate is fitted on four fifths and scored on the fifth left out, the
held-out fifths pooled into one ECE (15 bins) and log-loss, and that repeated over REPEATS
random fold assignments: one assignment alone is too noisy to choose by (on 3,435 faces the
15-bin ECE of one split moves by about 0.01 from split to split). PrivateTest is not read.

    python bench/calibration_choice.py      # about 1 minute
"""

from __future__ import annotations

import numpy as np

from models.calibration import (
    apply_scaling,
    apply_top_label_map,
    expected_calibration_error,
    fit_temperature,
    fit_top_label_map,
    fit_vector_scaling,
    log_loss,
)
from models.classifier import EmotionClassifier
from models.data import default_data_path, load_split

FOLDS, REPEATS = 5, 10
CANDIDATES = ("temperature", "vector scaling", "vector scaling + top map")


def held_out(raw: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict[str, np.ndarray]:
    """Each candidate's calibrated probabilities of every face, from the fits that did not see it."""
    out = {name: np.zeros_like(raw) for name in CANDIDATES}
    for fold in range(FOLDS):
        fit, score = folds != fold, folds == fold
        out["temperature"][score] = apply_scaling(raw[score], fit_temperature(labels[fit], raw[fit]))
        temperature, bias = fit_vector_scaling(labels[fit], raw[fit])
        out["vector scaling"][score] = apply_scaling(raw[score], temperature, bias)
        mapping = fit_top_label_map(labels[fit], apply_scaling(raw[fit], temperature, bias))
        out["vector scaling + top map"][score] = apply_top_label_map(out["vector scaling"][score], mapping)
    return out


def main() -> None:
    public = load_split(default_data_path(), "PublicTest")
    classifier = EmotionClassifier(temperature=1.0)
    raw = classifier.predict(public.images)
    labels = public.labels.astype(int)
    eces = {name: [] for name in CANDIDATES}
    losses = {name: [] for name in CANDIDATES}
    for repeat in range(REPEATS):
        folds = np.random.default_rng(repeat).permutation(len(labels)) % FOLDS
        for name, probs in held_out(raw, labels, folds).items():
            eces[name].append(expected_calibration_error(labels, probs))
            losses[name].append(log_loss(labels, probs))
    uncalibrated = expected_calibration_error(labels, raw)
    print(
        f"PublicTest, {len(labels):,} faces ({classifier.precision}), {REPEATS} x {FOLDS}-fold: "
        f"uncalibrated ECE {uncalibrated:.4f}"
    )
    best = int(np.argmin([np.mean(eces[name]) for name in CANDIDATES]))
    lowest = np.argmin(np.array([eces[name] for name in CANDIDATES]), axis=0)  # the best candidate of each repeat
    for index, name in enumerate(CANDIDATES):
        wins = int((lowest == index).sum())
        print(
            f"  {name:<26} ECE {np.mean(eces[name]):.4f} (sd {np.std(eces[name]):.4f}, lowest in {wins} of {REPEATS})"
            f"  log-loss {np.mean(losses[name]):.4f}"
        )
    print(f"lowest mean ECE: {CANDIDATES[best]}")


if __name__ == "__main__":
    main()
