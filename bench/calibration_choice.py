"""Which scaling the `fer2013` calibration profile gets, by five-fold cross-validation on PublicTest.

The shipped model's delivered probabilities (its flip mode, no calibration) on PublicTest; each
candidate is fitted on four fifths and scored on the fifth left out, and the pooled held-out
ECE (15 bins) and log-loss printed. PrivateTest is not read: the choice is PublicTest's.

    python bench/calibration_choice.py
"""

from __future__ import annotations

import numpy as np

from models.calibration import (
    apply_scaling,
    calibrated,
    expected_calibration_error,
    fit_temperature,
    fit_top_label_map,
    fit_vector_scaling,
    log_loss,
)
from models.classifier import EmotionClassifier
from models.data import default_data_path, load_split

FOLDS = 5


def main() -> None:
    public = load_split(default_data_path(), "PublicTest")
    raw = EmotionClassifier(temperature=1.0).predict(public.images)
    labels = public.labels.astype(int)
    folds = np.random.default_rng(0).permutation(len(labels)) % FOLDS
    held_out = {name: np.zeros_like(raw) for name in ("temperature", "vector scaling", "vector scaling + top map")}
    for fold in range(FOLDS):
        fit, score = folds != fold, folds == fold
        held_out["temperature"][score] = apply_scaling(raw[score], fit_temperature(labels[fit], raw[fit]))
        temperature, bias = fit_vector_scaling(labels[fit], raw[fit])
        held_out["vector scaling"][score] = apply_scaling(raw[score], temperature, bias)
        mapping = fit_top_label_map(labels[fit], apply_scaling(raw[fit], temperature, bias))
        held_out["vector scaling + top map"][score] = calibrated(raw[score], temperature, bias, mapping)
    uncalibrated = expected_calibration_error(labels, raw)
    print(f"PublicTest, {len(labels):,} faces, {FOLDS}-fold: uncalibrated ECE {uncalibrated:.4f}")
    for name, probs in held_out.items():
        ece, loss = expected_calibration_error(labels, probs), log_loss(labels, probs)
        print(f"  {name:<26} ECE {ece:.4f}  log-loss {loss:.4f}")


if __name__ == "__main__":
    main()
