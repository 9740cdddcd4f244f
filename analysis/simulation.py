"""Populations with known truth, to check the intervals by simulation (bench/statistics_coverage.py, tests).

One draw is one analyst's world: a true confusion matrix, the matrix the analyst corrects
with, and a sample of images whose faces have known true expressions. Two kinds of world:

- `coverage_given_card`, the check of the claim the API makes: the analyst has the card (its
  counts, effective sizes and prior, fixed) and the true matrix is any the card allows, drawn
  from its posterior in each world;
- `coverage`, a stress test: the true matrix is the counts' own proportions (a row without
  faces drawn from the prior) and the analyst's calibration faces are measured again in each
  world (as many per true class as the counts had, classified by the true matrix).

Faces cluster: each image has its own mix of expressions, drawn around the population's
shares (`image_concentration`: lower is more alike within an image), and a varying number of
faces. Each face is classified by the true matrix. The raw intervals must cover the shares
the classifier gives on the population (M^T pi), the corrected ones the true shares pi.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.clustered import ClusterSums, raw_shares
from analysis.compare import corrected_differences, raw_differences
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
    corrected_above: np.ndarray  # (K,) fraction of draws whose truth lies above the corrected interval
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
    """Worlds whose true matrix is the measured one, each re-measured with a calibration set of its row sizes.

    The frequentist stress test: the truth held at the counts' own proportions (a row without
    faces drawn from the prior), the analyst's calibration faces drawn again in every world. A
    thin row's prior then pulls each estimate the same way, towards the prior's shape and away
    from the truth fixed at the counts: this measures what that pull costs if the counts'
    proportions are exactly right.
    """
    rng = np.random.default_rng(seed)
    row_sizes = np.asarray(calibration_counts, dtype=float).sum(axis=1)
    row_totals = np.rint(row_sizes).astype(int)  # effective sizes need not be whole faces
    measured = row_totals > 0
    prior = Confusion("prior", np.zeros_like(calibration_counts, dtype=float), prior_counts, prior_faces).concentration
    proportions = np.where(measured[:, None], calibration_counts / np.maximum(row_sizes, 1e-12)[:, None], 0.0)

    def world(draw: int) -> tuple[np.ndarray, Confusion, int]:
        truth = proportions.copy()
        truth[~measured] = draw_rows(rng, prior[~measured])
        calibration = np.array([rng.multinomial(total, row) for total, row in zip(row_totals, truth, strict=True)])
        return truth, Confusion("measured", calibration, prior_counts, prior_faces, seed=seed * 100_000 + draw), 0

    return tally(scenario, draws, rng, world)


def coverage_given_card(
    scenario: Scenario, confusion: Confusion, draws: int, seed: int = 6, corrected_with: Confusion | None = None
) -> Coverage:
    """Worlds as an analyst with this card is in them: the card fixed, the true matrix unknown.

    `confusion` is what the API corrects with (the card's counts at their effective sizes and
    the prior); each world draws its true matrix from that posterior, which is the claim the
    corrected interval makes: given the card, the truth lies here 95 % of the time. Every row
    is treated alike, a row without faces being the prior alone. Each world's faces get their
    own sampling stream, as different sets of faces get different ones in the API.
    `corrected_with`: correct with another matrix than the card's (tests: one that claims to know more).
    """
    rng = np.random.default_rng(seed)
    analyst = corrected_with or confusion
    return tally(scenario, draws, rng, lambda draw: (draw_rows(rng, confusion.concentration), analyst, draw))


World = Callable[[int], tuple[np.ndarray, Confusion, int]]


def tally(scenario: Scenario, draws: int, rng: np.random.Generator, world: World) -> Coverage:
    """`draws` worlds (`world(draw)`: the true matrix, the matrix the analyst corrects with, the sampling
    stream), each a sample of `scenario`'s images classified through the true matrix, raw and corrected."""
    truth = scenario.true_shares
    raw_hits, corrected_hits, corrected_above, corrected_errors, raw_errors, raw_widths, corrected_widths = (
        [] for _ in range(7)
    )
    for draw in range(draws):
        matrix, confusion, stream = world(draw)
        raw = raw_shares(ClusterSums.from_image_counts(classify(rng, draw_images(rng, scenario), matrix)))
        corrected = corrected_shares([raw], confusion, streams=[stream])[0]
        assert corrected is not None
        classified_truth = matrix.T @ truth
        raw_hits.append((raw.low <= classified_truth) & (classified_truth <= raw.high))
        corrected_hits.append((corrected.low <= truth) & (truth <= corrected.high))
        corrected_above.append(truth > corrected.high)
        corrected_errors.append(corrected.share - truth)
        raw_errors.append(raw.share - truth)
        raw_widths.append(raw.high - raw.low)
        corrected_widths.append(corrected.high - corrected.low)
    return Coverage(
        scenario.name,
        draws,
        np.mean(raw_hits, axis=0),
        np.mean(corrected_hits, axis=0),
        np.mean(corrected_above, axis=0),
        np.mean(corrected_errors, axis=0),
        np.mean(raw_errors, axis=0),
        np.mean(raw_widths, axis=0),
        np.mean(corrected_widths, axis=0),
    )


@dataclass(frozen=True)
class NullComparisons:
    """Two sets drawn from one population, compared as /compare compares them: how often anything differs."""

    scenario: str
    draws: int
    any_significant: float  # fraction of draws with at least one emotion significant after Holm (target <= 5 %)
    zero_inside: np.ndarray  # (K,) fraction of draws whose corrected difference interval holds 0
    raw_any_significant: float  # the same for the raw differences (both sets' classified truth is the same)
    raw_zero_inside: np.ndarray


def null_comparisons(
    scenario: Scenario, confusion: Confusion, draws: int, seed: int = 6, independent_streams: bool = True
) -> NullComparisons:
    """Worlds given the card (as `coverage_given_card`), each with two independent sets of the same population
    classified through the same true matrix: the raw and corrected differences' family-wise false-positive rates.
    `independent_streams` False gives both sets the same sampling draws (tests: what separate streams are for)."""
    rng = np.random.default_rng(seed)
    flagged, inside, raw_flagged, raw_inside = [], [], [], []
    for draw in range(draws):
        matrix = draw_rows(rng, confusion.concentration)
        raws = [
            raw_shares(ClusterSums.from_image_counts(classify(rng, draw_images(rng, scenario), matrix))) for _ in "ab"
        ]
        a, b = corrected_shares(raws, confusion, streams=[2 * draw, 2 * draw + int(independent_streams)])
        assert a is not None and b is not None
        difference = corrected_differences(a, b)
        flagged.append(bool(difference.significant().any()))
        inside.append((difference.low <= 0) & (difference.high >= 0))
        raw_difference = raw_differences(*raws)
        raw_flagged.append(bool(raw_difference.significant().any()))
        raw_inside.append((raw_difference.low <= 0) & (raw_difference.high >= 0))
    return NullComparisons(
        scenario.name,
        draws,
        float(np.mean(flagged)),
        np.mean(inside, axis=0),
        float(np.mean(raw_flagged)),
        np.mean(raw_inside, axis=0),
    )
