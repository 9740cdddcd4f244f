"""Emotion shares of faces that come in photos: ratio estimates with cluster-robust intervals.

A share is a ratio, faces with the emotion over all faces, and faces of one photo are not
independent draws (a team photo adds twenty cheering faces at once). Treating the images
as the independent units, the linearised (Taylor) variance of the ratio estimator is

    Var(q_e) = m / (m - 1) / N^2 * sum_i (c_ie - q_e n_i)^2

(m images with faces, N faces, c_ie faces of emotion e in image i, n_i all its faces):
the cluster-robust "sandwich" variance of survey statistics. Expanding the square, every
term is a sum over images of products of per-image counts, so the 7 x 7 matrix
`cross[e, f] = sum_i c_ie c_if` plus the counts carry everything, and the database keeps
those sums in its hourly rollups: exact and as cheap as the counts.

The interval is Wilson's score interval at the effective sample size N / deff (Kish's
design effect deff = Var(q_e) / (q_e (1 - q_e) / N)), which stays inside [0, 1] and keeps
its coverage for rare emotions, where a plain normal interval would not. The variance is
estimated from m images, so it has m - 1 degrees of freedom: as survey software does, the
effective size is shrunk by (z / t_{m-1})^2 (Korn & Graubard 1998), which widens a
40-image interval by 3 % and a 400-image one by 0.3 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

LEVEL = 0.95
Z = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95 %


def t_quantile(degrees_of_freedom: float | np.ndarray, z: float = Z) -> float | np.ndarray:
    """Student's t quantile at the level the normal quantile `z` has (two-sided 95 % by default); infinite
    under one degree of freedom (nothing to estimate a variance from)."""
    freedom = np.asarray(degrees_of_freedom, dtype=float)
    quantile = np.where(freedom >= 1, special.stdtrit(np.maximum(freedom, 1.0), special.ndtr(z)), np.inf)
    return float(quantile) if quantile.ndim == 0 else quantile


def t_p_value(estimate: float, standard_error: float, degrees_of_freedom: float) -> float:
    """Two-sided p-value of `estimate` against zero, its standard error estimated with that many degrees of freedom."""
    if standard_error <= 0:
        return 1.0 if estimate == 0 else 0.0
    if degrees_of_freedom < 1:
        return 1.0
    return float(2 * special.stdtr(degrees_of_freedom, -abs(estimate) / standard_error))


def small_sample_stretch(images: int, z: float = Z) -> float:
    """t_{m-1} / z for m images (1 below two images): how much wider than normal an interval whose
    variance is estimated from m clusters has to be."""
    return t_quantile(images - 1, z) / z if images >= 2 else 1.0


@dataclass(frozen=True)
class ClusterSums:
    """The sufficient statistics of one filtered set of faces, grouped by image.

    `counts[e]`: faces of emotion e; `cross[e, f]`: the sum over images of (faces of e in the
    image) x (faces of f in it); `images`: images holding at least one face (the clusters).
    """

    counts: np.ndarray  # (K,)
    cross: np.ndarray  # (K, K), symmetric
    images: int

    @classmethod
    def empty(cls, emotions: int) -> ClusterSums:
        return cls(np.zeros(emotions), np.zeros((emotions, emotions)), 0)

    @classmethod
    def from_image_counts(cls, per_image: np.ndarray) -> ClusterSums:
        """From an (images, K) array of face counts per image and emotion (tests, simulations)."""
        per_image = np.asarray(per_image, dtype=float)
        holding = per_image[per_image.sum(axis=1) > 0]
        return cls(holding.sum(axis=0), holding.T @ holding, len(holding))

    def __add__(self, other: ClusterSums) -> ClusterSums:
        """Two disjoint sets of images together (e.g. platforms into the overall figure)."""
        return ClusterSums(self.counts + other.counts, self.cross + other.cross, self.images + other.images)

    @property
    def faces(self) -> int:
        return int(round(float(self.counts.sum())))


def share_covariance(sums: ClusterSums) -> np.ndarray:
    """The linearised, cluster-robust covariance matrix of the 7 shares (rows and columns in K order).

    sum_i (c_ie - q_e n_i)(c_if - q_f n_i) = cross_ef - q_f s_e - q_e s_f + q_e q_f T, with
    s_e = sum_i c_ie n_i (the row sums of `cross`) and T = sum_i n_i^2 (its total).
    Zero for fewer than two images: one cluster says nothing about the variation between them.
    """
    faces = float(sums.counts.sum())
    if sums.images < 2 or faces <= 0:
        return np.zeros_like(sums.cross, dtype=float)
    shares = sums.counts / faces
    with_size = sums.cross.sum(axis=1)  # s_e
    size_squares = float(sums.cross.sum())  # T
    residual = (
        sums.cross - np.outer(with_size, shares) - np.outer(shares, with_size) + np.outer(shares, shares) * size_squares
    )
    covariance = sums.images / (sums.images - 1) * residual / faces**2
    return (covariance + covariance.T) / 2


@dataclass(frozen=True)
class RawShares:
    """The classifier's shares as counted, each with its 95 % interval and design effect."""

    share: np.ndarray  # (K,)
    low: np.ndarray
    high: np.ndarray
    design_effect: np.ndarray  # >= 1: how many times the variance of independent faces it is
    covariance: np.ndarray  # (K, K): what the corrected shares and comparisons build on
    faces: float
    images: int = 0  # images with faces: the clusters the covariance is estimated from

    @property
    def effective_faces(self) -> float:
        """N over the design effect of all shares together (trace of the covariance over that of independent
        faces, at least 1): how many independent faces the set is worth."""
        independent = float((self.share * (1 - self.share)).sum()) / max(self.faces, 1.0)
        clustered = float(np.trace(self.covariance))
        if self.faces <= 0:
            return 0.0
        if independent <= 0 or clustered <= 0:
            return self.faces / float(self.design_effect.max())
        return self.faces / max(clustered / independent, 1.0)


def wilson(share: np.ndarray, size: np.ndarray, z: float = Z) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval for proportions `share` out of `size` (effective) trials."""
    size = np.maximum(size, 1e-12)
    denominator = 1 + z**2 / size
    centre = (share + z**2 / (2 * size)) / denominator
    half = z * np.sqrt(share * (1 - share) / size + z**2 / (4 * size**2)) / denominator
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def raw_shares(sums: ClusterSums, z: float = Z) -> RawShares:
    """Shares, cluster-robust Wilson intervals and design effects; no faces gives [0, 1] intervals.

    The design effect is floored at 1: with few images its estimate is noisy, and an interval
    narrower than that of independent faces is a claim the data rarely supports.
    """
    emotions = len(sums.counts)
    faces = float(sums.counts.sum())
    if faces <= 0:
        zeros = np.zeros(emotions)
        return RawShares(zeros, zeros, np.ones(emotions), np.ones(emotions), np.zeros((emotions, emotions)), 0.0, 0)
    share = sums.counts / faces
    covariance = share_covariance(sums)
    independent = share * (1 - share) / faces
    design_effect = np.ones(emotions)
    varying = independent > 0
    design_effect[varying] = np.maximum(np.diag(covariance)[varying] / independent[varying], 1.0)
    if sums.images < 2:  # nothing to estimate the between-image variation from: no narrower than one image
        design_effect[:] = max(faces, 1.0)
    low, high = wilson(share, faces / design_effect / small_sample_stretch(sums.images, z) ** 2, z)
    return RawShares(share, low, high, design_effect, covariance, faces, sums.images)
