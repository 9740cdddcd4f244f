"""Populations with known truth, to check the intervals by simulation (bench/statistics_coverage.py, tests).

One draw is one analyst's world: the true confusion matrix is the measured one (its rows as
proportions; a row without faces, such as fear in the real-photo calibration fold, drawn
afresh from the prior the analyst assumes for it), the calibration faces the analyst measures
it with (as many per true class as the measured matrix had, classified by the true matrix),
and a sample of images whose faces have known true expressions. Faces cluster: each image has its own mix of
expressions, drawn around the population's shares (`image_concentration`: lower is more alike
within an image), and a varying number of faces. Each face is classified by the true matrix.
The raw intervals must cover the shares the classifier gives on the population (M^T pi), the
corrected ones the true shares pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.clustered import ClusterSums, raw_shares
from analysis.correction import PRIOR_FACES, Confusion, corrected_shares


@dataclass(frozen=True)
class Scenario:
    name: str
    true_shares: np.ndarray  # (K,), sums to 1
    images: int  # images with faces in the sample
    extra_faces: float  # faces per image: 1 + a negative binomial with this mean (a few group photos)
    image_concentration: float  # an image's mix ~ Dirichlet(concentration * true_shares)


def draw_rows(rng: np.random.Generator, concentration: np.ndarray) -> np.ndarray:
    """One row-stochastic matrix, each row from a Dirichlet with that row's parameters."""
    gammas = rng.standard_gamma(concentration)
    return gammas / gammas.sum(axis=1, keepdims=True)


def draw_images(rng: np.random.Generator, scenario: Scenario) -> np.ndarray:
    """(images, K) true expression counts per image."""
    sizes = 1 + rng.negative_binomial(1.0, 1.0 / (1.0 + scenario.extra_faces), size=scenario.images)
    mixes = draw_rows(rng, np.tile(scenario.image_concentration * scenario.true_shares, (scenario.images, 1)))
    return np.array([rng.multinomial(size, mix) for size, mix in zip(sizes, mixes, strict=True)])


def classify(rng: np.random.Generator, true_counts: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Each face's predicted class drawn from its true class's row: (images, K) predicted counts."""
    predicted = np.zeros_like(true_counts)
    for true_class in range(matrix.shape[0]):
        predicted += rng.multinomial(true_counts[:, true_class], matrix[true_class])
    return predicted


@dataclass(frozen=True)
class Coverage:
    """Per emotion, over the draws: how often each interval held its target, and the corrected bias."""

    scenario: str
    draws: int
    raw_covered: np.ndarray  # (K,) fraction
    corrected_covered: np.ndarray
    corrected_bias: np.ndarray  # mean corrected - true
    raw_bias: np.ndarray  # mean raw - true (what the correction is for)
    raw_width: np.ndarray  # mean interval widths
    corrected_width: np.ndarray


def coverage(
    scenario: Scenario,
    calibration_counts: np.ndarray,
    prior_counts: np.ndarray | None,
    draws: int,
    seed: int = 6,
    prior_faces: float = PRIOR_FACES,
) -> Coverage:
    """Run `draws` worlds of `scenario` with a calibration set shaped like `calibration_counts`."""
    rng = np.random.default_rng(seed)
    row_sizes = np.asarray(calibration_counts, dtype=float).sum(axis=1)
    row_totals = np.rint(row_sizes).astype(int)  # effective sizes need not be whole faces
    measured = row_totals > 0
    prior = Confusion("prior", np.zeros_like(calibration_counts, dtype=float), prior_counts, prior_faces).concentration
    truth = scenario.true_shares
    raw_hits, corrected_hits, corrected_errors, raw_errors, raw_widths, corrected_widths = ([] for _ in range(6))
    for draw in range(draws):
        world = np.where(measured[:, None], calibration_counts / np.maximum(row_sizes, 1e-12)[:, None], 0.0)
        world[~measured] = draw_rows(rng, prior[~measured])
        calibration = np.array([rng.multinomial(total, row) for total, row in zip(row_totals, world, strict=True)])
        confusion = Confusion("measured", calibration, prior_counts, prior_faces, seed=seed * 100_000 + draw)
        sums = ClusterSums.from_image_counts(classify(rng, draw_images(rng, scenario), world))
        raw = raw_shares(sums)
        corrected = corrected_shares([raw], confusion)[0]
        assert corrected is not None
        classified_truth = world.T @ truth
        raw_hits.append((raw.low <= classified_truth) & (classified_truth <= raw.high))
        corrected_hits.append((corrected.low <= truth) & (truth <= corrected.high))
        corrected_errors.append(corrected.share - truth)
        raw_errors.append(raw.share - truth)
        raw_widths.append(raw.high - raw.low)
        corrected_widths.append(corrected.high - corrected.low)
    return Coverage(
        scenario.name,
        draws,
        np.mean(raw_hits, axis=0),
        np.mean(corrected_hits, axis=0),
        np.mean(corrected_errors, axis=0),
        np.mean(raw_errors, axis=0),
        np.mean(raw_widths, axis=0),
        np.mean(corrected_widths, axis=0),
    )
