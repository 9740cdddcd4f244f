"""Shares corrected for the classifier's errors, with intervals that carry both sources of error.

If a face whose true expression is t is classified p with probability M[t, p] (the rows of a
confusion matrix measured on labelled faces, normalised), the expected classified shares are
q = M^T pi for the true shares pi. Given the raw shares q_hat, the corrected shares are

    pi_hat = argmin ||M^T pi - q_hat||^2  over pi >= 0, sum(pi) = 1

(adjusted classify-and-count as a constrained least-squares problem, solved exactly by an
active-set method; when M^T pi = q_hat has a solution inside the simplex, it is that solution).

The interval propagates two errors at once, by simulation: the sampling error of q_hat
(Dirichlet at the effective sample size, each emotion's spread matched to its cluster-robust
variance from `analysis.clustered`) and the error of the matrix itself (each row drawn from its
Dirichlet posterior: the counts plus a weak prior).
Each of `replicates` draws solves the problem again; the 2.5th and 97.5th percentiles are
the interval. Matrix draws and sampling draws are fixed by a seed, so the same data always
give the same interval, and the matrices' Gram products are computed once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from analysis.clustered import LEVEL, RawShares

REPLICATES = 400  # draws per interval: the 2.5th percentile is then the 10th smallest
SEED = 20261201
PRIOR_FACES = 10.0  # the prior weighs as this many faces per row (a row without faces is the prior)
PRIOR_SMOOTHING = 0.5  # added to every cell of the prior's counts (Jeffreys): no error is impossible
RIDGE = 1e-10  # keeps the active-set systems solvable when two matrix rows are (nearly) alike
TOLERANCE = 1e-10
JEFFREYS = 0.5  # the prior count per emotion of the sampling draws
MAX_ACTIVE_SET_STEPS = 60


@dataclass(frozen=True, eq=False)
class Confusion:
    """A confusion matrix (rows true, columns predicted, counts) and what it says with its uncertainty.

    `prior_counts`: a matrix whose row shapes are the prior for rows with few or no faces (the
    FER2013 one for the real-photo matrix: the model's own confusions on other faces; a row
    without faces, like fear in the real-photo calibration fold, is that prior alone).
    Faces are taken as independent: see docs/statistics.md for what clustering by person does.
    """

    name: str
    counts: np.ndarray
    prior_counts: np.ndarray | None = None
    prior_faces: float = PRIOR_FACES
    replicates: int = REPLICATES
    seed: int = SEED

    @cached_property
    def concentration(self) -> np.ndarray:
        """Dirichlet parameters per row: the counts plus the prior's pseudo-faces."""
        counts = np.asarray(self.counts, dtype=float)
        shape = np.ones_like(counts) if self.prior_counts is None else np.asarray(self.prior_counts, dtype=float)
        shape = shape + PRIOR_SMOOTHING
        shape /= shape.sum(axis=1, keepdims=True)
        return counts + self.prior_faces * shape

    @cached_property
    def mean(self) -> np.ndarray:
        """The posterior mean matrix (rows sum to 1): what the point estimate corrects with."""
        return self.concentration / self.concentration.sum(axis=1, keepdims=True)

    @cached_property
    def draws(self) -> np.ndarray:
        """(replicates, K, K) matrices drawn row by row from the posterior, fixed by the seed."""
        rng = np.random.default_rng([self.seed, 1])
        gammas = rng.standard_gamma(np.broadcast_to(self.concentration, (self.replicates, *self.counts.shape)))
        return gammas / gammas.sum(axis=2, keepdims=True)

    @cached_property
    def draw_grams(self) -> np.ndarray:
        """M_b M_b^T for every draw: the least-squares systems' matrices, computed once."""
        return self.draws @ self.draws.transpose(0, 2, 1)

    def sampled_shares(self, raw: RawShares, stream: int) -> np.ndarray:
        """(replicates, K) raw shares as the sampling error could have drawn them, fixed by `stream`.

        Dirichlet(effective faces x shares + 1/2): the posterior of the shares under Jeffreys'
        prior at the set's effective sample size, so an emotion seen 0 times in 8 faces still
        varies (a normal draw would pin it at 0). The effective size is one number for all
        emotions, so each emotion's deviations are then stretched to its own cluster-robust
        variance where that is larger (an emotion that clusters more than the others).
        """
        rng = np.random.default_rng([self.seed, 2, stream])
        alpha = raw.effective_faces * raw.share + JEFFREYS
        gammas = rng.standard_gamma(alpha, size=(self.replicates, len(alpha)))
        draws = gammas / gammas.sum(axis=1, keepdims=True)
        total = alpha.sum()
        mean, variance = alpha / total, alpha * (total - alpha) / (total**2 * (total + 1))
        clustered = np.diag(raw.covariance)
        stretch = np.sqrt(np.where(clustered > variance, clustered / variance, 1.0))
        return mean + (draws - mean) * stretch


def equality_solution(gram: np.ndarray, linear: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min 1/2 x'Gx - c'x with sum(x) = 1 and x = 0 off `free`, for a batch: (x, the sum's multiplier)."""
    emotions = gram.shape[-1]
    keep = free[:, :, None] & free[:, None, :]
    system = np.where(keep, gram, 0.0) + np.where(keep, RIDGE, 0.0) * np.eye(emotions)
    system += np.eye(emotions) * ~free[:, :, None]  # fixed variables: x_t = 0
    ones = free.astype(float)
    solution = np.linalg.solve(system, np.stack([np.where(free, linear, 0.0), ones], axis=-1))
    particular, homogeneous = solution[..., 0], solution[..., 1]
    multiplier = ((particular * ones).sum(axis=1) - 1) / (homogeneous * ones).sum(axis=1)
    return np.where(free, particular - multiplier[:, None] * homogeneous, 0.0), multiplier


def simplex_least_squares(gram: np.ndarray, linear: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Solve min ||M^T x - q||^2 over the simplex for a batch, given G = M M^T and c = M q.

    The primal active-set method (Nocedal & Wright, algorithm 16.3), vectorised: from a
    feasible point, each step solves the equality problem on the free variables and moves
    towards its solution, stopping at the first variable that would turn negative (which is
    then fixed at zero); at the equality solution, the fixed variable with the most negative
    multiplier is freed, and a problem whose multipliers are all >= 0 is solved and retired.
    `start`: (problems, K) feasible points to begin from; zeros in them start fixed (a nearby
    solution settles in a step or two). Default: the simplex's centre.
    """
    problems, emotions = linear.shape
    x = np.full((problems, emotions), 1.0 / emotions) if start is None else np.array(start, dtype=float)
    free = x > 0
    open_ = np.arange(problems)
    for _ in range(MAX_ACTIVE_SET_STEPS):
        grams, linears, frees, current = gram[open_], linear[open_], free[open_], x[open_]
        target, multiplier = equality_solution(grams, linears, frees)
        step = target - current
        # Blocking: the free variable that reaches zero first along the step to the target.
        shrinking = frees & (step < -TOLERANCE)
        ratios = np.where(shrinking, current / np.where(shrinking, -step, 1.0), np.inf)
        blocking = ratios.argmin(axis=1)
        blocked = ratios.min(axis=1) < 1.0
        length = np.where(blocked, ratios.min(axis=1), 1.0)
        x[open_] = current + length[:, None] * step
        rows = open_[blocked]
        x[rows, blocking[blocked]] = 0.0
        free[rows, blocking[blocked]] = False
        # At the target: free the fixed variable whose multiplier is most negative, or stop.
        gradient = np.einsum("bts,bs->bt", grams, target) - linears + multiplier[:, None]
        lowest_fixed = np.where(frees, np.inf, gradient)
        release = ~blocked & (lowest_fixed.min(axis=1) < -TOLERANCE)
        free[open_[release], lowest_fixed.argmin(axis=1)[release]] = True
        open_ = open_[blocked | release]
        if not len(open_):
            clipped = np.clip(x, 0.0, None)
            return clipped / clipped.sum(axis=1, keepdims=True)
    raise RuntimeError(f"active-set method did not settle {len(open_)} of {problems} problems")


def correct(matrix: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The corrected shares for one matrix (rows true, summing to 1) and one vector of raw shares."""
    return simplex_least_squares((matrix @ matrix.T)[None], (matrix @ shares)[None])[0]


@dataclass(frozen=True)
class CorrectedShares:
    """Estimated true shares with their intervals, and the replicates the intervals come from."""

    share: np.ndarray  # (K,)
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray  # (replicates, K), the same matrix draw in row b for every set corrected


def corrected_shares(
    raws: Sequence[RawShares], confusion: Confusion, streams: Sequence[int] | None = None, level: float = LEVEL
) -> list[CorrectedShares | None]:
    """Corrected shares of several sets of faces at once (one vectorised solve); None for a set without faces.

    `streams[i]` (a non-negative integer): the random stream set i's sampling error is drawn
    with; sets that will be compared must use different streams so their sampling errors are
    independent. Default: one per set.
    """
    streams = list(range(len(raws))) if streams is None else list(streams)
    present = [index for index, raw in enumerate(raws) if raw.share.sum() > 0]
    results: list[CorrectedShares | None] = [None] * len(raws)
    if not present:
        return results
    mean = confusion.mean
    points = [correct(mean, raws[index].share) for index in present]
    draws, replicates = confusion.draws, confusion.replicates
    linear = np.concatenate(
        [np.einsum("btp,bp->bt", draws, confusion.sampled_shares(raws[index], streams[index])) for index in present]
    )
    start = np.concatenate([np.broadcast_to(point, (replicates, len(point))) for point in points])
    solved = simplex_least_squares(np.tile(confusion.draw_grams, (len(present), 1, 1)), linear, start)
    tail = (1 - level) / 2 * 100
    for position, index in enumerate(present):
        block = solved[position * replicates : (position + 1) * replicates]
        low, high = np.percentile(block, [tail, 100 - tail], axis=0)
        results[index] = CorrectedShares(points[position], low, high, block)
    return results
