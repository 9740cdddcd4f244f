"""Differences of shares between two sets of faces, with intervals and a multiple-comparison test.

Raw: the difference of two ratio estimates from different images, its variance the sum of
their cluster-robust variances; t interval and two-sided t-test, with Welch-Satterthwaite's
degrees of freedom (each variance is estimated from its set's images, m - 1 degrees of
freedom, as in the raw share intervals; with a normal z, up to 5.8 % of simulated comparisons
of one population with itself called some emotion different). When the two sets share
images the true variance is smaller (their errors are positively correlated), so the interval
is conservative then. Corrected: the replicates of both sides use the same matrix draw in each
row (the classifier's errors are the same on both sides, and largely cancel in a difference)
and independent sampling deviates; percentile interval, and the bootstrap p-value that is
consistent with it. Seven emotions are seven tests: Holm's step-down adjustment keeps the
chance of any false "different" at 5 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.clustered import LEVEL, RawShares, Z, t_p_value, t_quantile
from analysis.correction import CorrectedShares


@dataclass(frozen=True)
class Differences:
    """Per emotion: a - b, its interval, the p-value and the Holm-adjusted p-value."""

    difference: np.ndarray  # (K,)
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    p_holm: np.ndarray

    def significant(self, alpha: float = 1 - LEVEL) -> np.ndarray:
        return self.p_holm < alpha


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values: the k-th smallest times (m - k + 1), kept monotone, at most 1."""
    p_values = np.asarray(p_values, dtype=float)
    order = np.argsort(p_values, kind="stable")
    scaled = p_values[order] * (len(p_values) - np.arange(len(p_values)))
    adjusted = np.empty_like(p_values)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def welch_degrees_of_freedom(a: RawShares, b: RawShares) -> np.ndarray:
    """Per emotion, Welch-Satterthwaite's degrees of freedom of the summed variances (infinite where both are 0)."""
    sides = [(np.diag(side.covariance), side.images) for side in (a, b)]
    spread = sum(variance**2 / (images - 1) for variance, images in sides if images >= 2)
    total = sides[0][0] + sides[1][0]
    return np.divide(total**2, spread, out=np.full_like(total, np.inf), where=np.asarray(spread) > 0)


def raw_differences(a: RawShares, b: RawShares, z: float = Z) -> Differences:
    difference = a.share - b.share
    error = np.sqrt(np.diag(a.covariance) + np.diag(b.covariance))
    freedom = welch_degrees_of_freedom(a, b)
    p_values = np.array([t_p_value(*values) for values in zip(difference, error, freedom, strict=True)])
    half = np.where(error > 0, t_quantile(freedom, z) * error, 0.0)
    low, high = np.clip(difference - half, -1, 1), np.clip(difference + half, -1, 1)
    return Differences(difference, low, high, p_values, holm(p_values))


def bootstrap_p_values(replicates: np.ndarray) -> np.ndarray:
    """Two-sided: twice the smaller share of replicates on either side of zero (add-one smoothed).

    Zero lies outside the (1 - p) percentile interval exactly when this p-value is below p.
    """
    count = len(replicates)
    below = ((replicates <= 0).sum(axis=0) + 1) / (count + 1)
    above = ((replicates >= 0).sum(axis=0) + 1) / (count + 1)
    return np.minimum(1.0, 2 * np.minimum(below, above))


def corrected_differences(a: CorrectedShares, b: CorrectedShares, level: float = LEVEL) -> Differences:
    replicates = a.replicates - b.replicates
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    p_values = bootstrap_p_values(replicates)
    return Differences(a.share - b.share, low, high, p_values, holm(p_values))


def compare(
    raw_a: RawShares, raw_b: RawShares, corrected_a: CorrectedShares | None, corrected_b: CorrectedShares | None
) -> tuple[Differences, Differences | None]:
    """Raw differences, and corrected ones when both sides have faces."""
    corrected = None
    if corrected_a is not None and corrected_b is not None:
        corrected = corrected_differences(corrected_a, corrected_b)
    return raw_differences(raw_a, raw_b), corrected
