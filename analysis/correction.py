"""Shares corrected for the classifier's errors, with intervals that carry both sources of error.

If a face whose true expression is t is classified p with probability M[t, p] (the rows of a
confusion matrix measured on labelled faces, normalised), the expected classified shares are
q = M^T pi for the true shares pi. Given the raw shares q_hat, the corrected shares are

    pi_hat = argmin ||M^T pi - q_hat||^2  over pi >= 0, sum(pi) = 1

(adjusted classify-and-count as a constrained least-squares problem, solved exactly by an
active-set method; when M^T pi = q_hat has a solution inside the simplex, it is that solution).

The interval propagates two errors at once, by simulation: the sampling error of q_hat
(Dirichlet at the effective sample size, each emotion's spread matched to its design effect
from `analysis.clustered`) and the error of the matrix itself (each row drawn from its
Dirichlet posterior: the counts plus a weak prior). In each of `replicates` draws, each
emotion's share is solved from that draw's equation for it alone, the other emotions held at
the estimate (`Confusion.emotion_solved_draws`: the truth's error is linear in the matrix's,
and the share scales its own error); the 2.5th and 97.5th percentiles, cut to [0, 1] and
widened to hold the estimate, are the interval. Nothing in a replicate is pushed into the
simplex: raising a negative rare share to 0 would take that mass from the other emotions,
and constrained replicates sat below the truth in every emotion at once (in simulation the
truth lay above an interval two to seven times as often as below it). Matrix draws and
sampling draws are fixed by a seed, so the same data always give the same interval, and the
matrix draws' errors are computed once per process. Comparisons (`analysis.compare`) take
differences of two sets' replicates, drawn with the same matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from analysis.clustered import LEVEL, RawShares, small_sample_stretch

REPLICATES = 1000  # draws per interval: the 2.5th percentile is then the 25th smallest
SEED = 20261201
PRIOR_FACES = 10.0  # the prior weighs as this many faces per row (a row without faces is the prior)
PRIOR_SMOOTHING = 0.5  # added to every cell of the prior's counts (Jeffreys): no error is impossible
RIDGE = 1e-10  # keeps the active-set systems solvable when two matrix rows are (nearly) alike
TOLERANCE = 1e-10
JEFFREYS = 0.5  # the prior count per emotion of the sampling draws
MAX_ACTIVE_SET_STEPS = 40  # per way of solving: rank-one updates, then fresh solves for what is left


@dataclass(frozen=True, eq=False)
class Confusion:
    """A confusion matrix (rows true, columns predicted, counts) and what it says with its uncertainty.

    `prior_counts`: a matrix whose row shapes are the prior for rows with few or no faces (the
    FER2013 one for the real-photo matrix: the model's own confusions on other faces; a row
    without faces, like fear in the real-photo calibration fold, is that prior alone).
    `effective_faces`: per row, the number of independent faces it is worth when its faces cluster
    (the card's, computed with people as clusters); without it faces are taken as independent.
    """

    name: str
    counts: np.ndarray
    prior_counts: np.ndarray | None = None
    prior_faces: float = PRIOR_FACES
    replicates: int = REPLICATES
    seed: int = SEED
    effective_faces: np.ndarray | None = None  # (K,) per row, where its faces cluster (by person)

    @cached_property
    def row_counts(self) -> np.ndarray:
        """The counts, each row scaled to its effective number of faces where the card gives one: a row
        counted from a few people's many photos weighs what its independent information is worth."""
        counts = np.asarray(self.counts, dtype=float)
        if self.effective_faces is None:
            return counts
        totals = counts.sum(axis=1)
        effective = np.clip(np.asarray(self.effective_faces, dtype=float), 0.0, totals)
        scale = np.divide(effective, totals, out=np.ones_like(totals), where=totals > 0)
        return counts * scale[:, None]

    @cached_property
    def concentration(self) -> np.ndarray:
        """Dirichlet parameters per row: the (effective) counts plus the prior's pseudo-faces."""
        counts = self.row_counts
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
    def mean_inverse(self) -> np.ndarray:
        """(K, K): the inverse of the mean matrix's transpose, Mbar^-T (the pseudo-inverse where it is singular)."""
        return np.linalg.pinv(self.mean.T)

    @cached_property
    def draw_errors(self) -> tuple[np.ndarray, np.ndarray]:
        """Per draw A_b = Mbar^-T (M_b - Mbar)^T with its diagonal cleared, and 1 + that diagonal: ((B, K, K), (B, K)).

        With the truth pi and the true matrix M = Mbar + D, the unconstrained estimate's error is
        exactly linear in the matrix's: Mbar^-T q - pi = Mbar^-T D^T pi (+ the sampling error).
        """
        errors = np.einsum("tr,bsr->bts", self.mean_inverse, self.draws - self.mean)
        own = np.einsum("btt->bt", errors).copy()
        others = errors.copy()
        others[:, np.arange(errors.shape[1]), np.arange(errors.shape[1])] = 0.0
        return others, 1.0 + own

    def emotion_solved_draws(self, sampled: np.ndarray, estimate: np.ndarray) -> np.ndarray:
        """(replicates, K): per draw b and emotion t, the share pi_t that draw b's matrix explains on its own.

        The truth's error is linear in the matrix's: with the true matrix M = Mbar + D, the
        unconstrained estimate Mbar^-T q misses pi by A pi, A = Mbar^-T D^T, pi fixed. A value x of
        pi_t is consistent with draw b when row t of Mbar^-T M_b^T pi = Mbar^-T q_b holds with
        pi_t = x and the other emotions at the estimate:
        x (1 + A_b,tt) = (Mbar^-T q_b)_t - sum_{s != t} A_b,ts pi_s. Its own share is solved for
        because its error scales with it (a thin row's error is worth nothing when its emotion
        is absent); the others are held because in the truth's error they do not move with the
        matrix. Solving every emotion at once, M_b^-T q_b (before 2026-12-01), lets all of them
        move with each draw, through the inverse of a matrix with thin rows: the intervals came
        out wide, up to 97-98 % in simulation. A draw whose own coefficient is (nearly) zero or
        negative says nothing of pi_t: it lands outside [-1, 2], past any interval's end.
        """
        others, own = self.draw_errors
        numerator = sampled @ self.mean_inverse.T - np.einsum("bts,s->bt", others, estimate)
        return np.clip(numerator / np.maximum(own, 1e-6), -1.0, 2.0)

    def sampled_shares(self, raw: RawShares, stream: int) -> np.ndarray:
        """(replicates, K) raw shares as the sampling error could have drawn them, fixed by `stream`.

        Dirichlet(effective faces x shares + 1/2): the posterior of the shares under Jeffreys'
        prior at the set's effective sample size, so an emotion seen 0 times in 8 faces still
        varies (a normal draw would pin it at 0). The effective size is one number for all
        emotions, so each emotion's deviations are then scaled by the square root of its own
        design effect over the set's (each floored at 1, as the raw intervals floor it): up for
        an emotion that clusters more than the others, down for one that clusters less.
        Design effects are compared with design effects: scaling to the plug-in cluster-robust
        variance itself (before 2026-12-01) also took away part of the extra spread Jeffreys'
        prior gives an emotion seen a few times (a share's plug-in variance is Wald's, too
        small when the share was seen a few times). Every deviation is then widened by
        t_{m-1} / z for a set of m images (the variance is estimated from m clusters, as in the
        raw intervals). An emotion without a design effect (never seen, or a single image)
        keeps the Dirichlet's spread.
        """
        rng = np.random.default_rng([self.seed, 2, stream])
        alpha = raw.effective_faces * raw.share + JEFFREYS
        gammas = rng.standard_gamma(alpha, size=(self.replicates, len(alpha)))
        draws = gammas / gammas.sum(axis=1, keepdims=True)
        mean = alpha / alpha.sum()
        clustered = np.diag(raw.covariance)
        independent = raw.share * (1 - raw.share) / max(raw.faces, 1.0)
        known = (independent > 0) & (clustered > 0)
        own = np.maximum(np.divide(clustered, independent, out=np.ones_like(clustered), where=known), 1.0)
        overall = raw.faces / max(raw.effective_faces, 1e-12)
        stretch = np.where(known, np.sqrt(own / overall), 1.0) * small_sample_stretch(raw.images)
        return mean + (draws - mean) * stretch


def equality_solution(gram: np.ndarray, linear: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """min 1/2 x'Gx - c'x with sum(x) = 1 and x = 0 off `free`, for a batch, by a fresh solve: (x, multiplier).

    The reference `simplex_least_squares` is checked against (tests); it keeps inverses instead.
    """
    emotions = gram.shape[-1]
    diagonal = np.arange(emotions)
    system = gram * (free[:, :, None] & free[:, None, :])  # fixed variables' rows and columns cleared...
    system[:, diagonal, diagonal] += np.where(free, RIDGE, 1.0)  # ...and set to x_t = 0
    ones = free.astype(float)
    solution = np.linalg.solve(system, np.stack([linear * ones, ones], axis=-1))
    particular, homogeneous = solution[..., 0], solution[..., 1]
    multiplier = ((particular * ones).sum(axis=1) - 1) / (homogeneous * ones).sum(axis=1)
    return (particular - multiplier[:, None] * homogeneous) * ones, multiplier


def full_inverse(gram: np.ndarray) -> np.ndarray:
    """(G + ridge)^-1 for a batch of Gram matrices: the free-everything start of `simplex_least_squares`."""
    return np.linalg.inv(gram + RIDGE * np.eye(gram.shape[-1]))


def restricted_inverse(inverse: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Full inverses (changed in place) turned into inverses on the `free` variables only."""
    for index in range(inverse.shape[-1]):
        rows = np.flatnonzero(~free[:, index])
        if len(rows):
            fix(inverse, rows, index)
    return inverse


def equality_from_inverse(inverse: np.ndarray, linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = H (c - m 1) with m such that sum(x) = 1, H the inverse on the free variables (zero elsewhere)."""
    particular = np.einsum("bts,bs->bt", inverse, linear)
    homogeneous = inverse.sum(axis=2)
    multiplier = (particular.sum(axis=1) - 1) / homogeneous.sum(axis=1)
    return particular - multiplier[:, None] * homogeneous, multiplier


def fix(inverse: np.ndarray, rows: np.ndarray, index: int | np.ndarray) -> None:
    """Fix variable `index` (one per row) at zero in the inverses of `rows`, in place: the rank-one downdate
    H - h h^T / h_t, h being H's column t (the inverse of G without that row and column)."""
    column = inverse[rows, :, index]
    pivot = column[np.arange(len(rows)), index]
    updated = inverse[rows] - column[:, :, None] * column[:, None, :] / np.maximum(pivot, 1e-300)[:, None, None]
    updated[np.arange(len(rows)), index, :] = 0.0
    updated[np.arange(len(rows)), :, index] = 0.0
    inverse[rows] = updated


def release(inverse: np.ndarray, gram: np.ndarray, free: np.ndarray, rows: np.ndarray, index: np.ndarray) -> None:
    """Free variable `index` (one per row) in the inverses of `rows`, in place: the bordered inverse,
    with u = H g (g = G's column t on the free variables) and s = G_tt - g^T u."""
    count = np.arange(len(rows))
    border = gram[rows, :, index] * free[rows]
    u = np.einsum("bts,bs->bt", inverse[rows], border)
    schur = gram[rows, index, index] + RIDGE - (border * u).sum(axis=1)
    updated = inverse[rows] + u[:, :, None] * u[:, None, :] / schur[:, None, None]
    updated[count, index, :] = -u / schur[:, None]
    updated[count, :, index] = -u / schur[:, None]
    updated[count, index, index] = 1.0 / schur
    inverse[rows] = updated


def simplex_least_squares(gram: np.ndarray, linear: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Solve min ||M^T x - q||^2 over the simplex for a batch, given G = M M^T and c = M q.

    The primal active-set method (Nocedal & Wright, algorithm 16.3), vectorised: from a
    feasible point, each step solves the equality problem on the free variables and moves
    towards its solution, stopping at the first variable that would turn negative (which is
    then fixed at zero); at the equality solution, the fixed variable with the most negative
    multiplier is freed, and a problem whose multipliers are all >= 0 is solved and retired.
    The inverse of G on the free variables is kept and changed by rank-one updates as
    variables are fixed and freed, so a step costs a few matrix-vector products, not a solve;
    the rare problem those updates do not settle (a nearly singular G) is finished with fresh
    solves. `start`: (problems, K) feasible points to begin from; zeros in them start fixed (a
    nearby solution settles in a step or two). Default: the simplex's centre.
    """
    problems, emotions = linear.shape
    x = np.full((problems, emotions), 1.0 / emotions) if start is None else np.array(start, dtype=float)
    free = x > 0
    inverses = restricted_inverse(full_inverse(gram), free)

    def updated(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return equality_from_inverse(inverses[rows], linear[rows])

    def fixed(rows: np.ndarray, index: np.ndarray) -> None:
        fix(inverses, rows, index)

    def released(rows: np.ndarray, index: np.ndarray) -> None:
        release(inverses, gram, free, rows, index)

    def fresh(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return equality_solution(gram[rows], linear[rows], free[rows])

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # what they break is caught below
        unsettled = active_set_steps(gram, linear, x, free, np.arange(problems), updated, fixed, released)
    # A nearly singular G can blow the rank-one updates up (a pivot near zero): those problems start
    # again from the centre with fresh solves, which never divide by a pivot.
    broken = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(broken):
        x[broken], free[broken] = 1.0 / emotions, True
        unsettled = np.union1d(unsettled, broken)
    if len(unsettled):
        unsettled = active_set_steps(gram, linear, x, free, unsettled, fresh, None, None)
    if len(unsettled):
        raise RuntimeError(f"active-set method did not settle {len(unsettled)} of {problems} problems")
    clipped = np.clip(x, 0.0, None)
    return clipped / clipped.sum(axis=1, keepdims=True)


Solve = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Change = Callable[[np.ndarray, np.ndarray], None] | None


def active_set_steps(
    gram: np.ndarray,
    linear: np.ndarray,
    x: np.ndarray,
    free: np.ndarray,
    open_: np.ndarray,
    solve: Solve,
    on_fix: Change,
    on_release: Change,
) -> np.ndarray:
    """Steps of `simplex_least_squares` on the problems `open_` (x and free change in place); the unsettled rest."""
    for _ in range(MAX_ACTIVE_SET_STEPS):
        current, frees = x[open_], free[open_]
        target, multiplier = solve(open_)
        target *= frees
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
        if len(rows) and on_fix is not None:
            on_fix(rows, blocking[blocked])
        # At the target: free the fixed variable whose multiplier is most negative, or stop.
        gradient = np.einsum("bts,bs->bt", gram[open_], target) - linear[open_] + multiplier[:, None]
        lowest_fixed = np.where(frees, np.inf, gradient)
        releasing = ~blocked & (lowest_fixed.min(axis=1) < -TOLERANCE)
        rows, chosen = open_[releasing], lowest_fixed.argmin(axis=1)[releasing]
        if len(rows) and on_release is not None:
            on_release(rows, chosen)
        free[rows, chosen] = True
        open_ = open_[blocked | releasing]
        if not len(open_):
            break
    return open_


def correct(matrix: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """The corrected shares for one matrix (rows true, summing to 1) and raw shares: (K,), or (sets, K) at once."""
    batch = np.atleast_2d(shares)
    grams = np.broadcast_to(matrix @ matrix.T, (len(batch), *matrix.shape))
    solved = simplex_least_squares(grams, batch @ matrix.T)
    return solved[0] if np.ndim(shares) == 1 else solved


@dataclass(frozen=True)
class CorrectedShares:
    """Estimated true shares with their intervals, and the replicates the intervals come from."""

    share: np.ndarray  # (K,)
    low: np.ndarray
    high: np.ndarray
    replicates: np.ndarray  # (replicates, K), each emotion solved alone (may leave [0, 1]); row b: one matrix draw


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
    points = correct(confusion.mean, np.array([raws[index].share for index in present]))
    tail = (1 - level) / 2 * 100
    for point, index in zip(points, present, strict=True):
        replicates = confusion.emotion_solved_draws(confusion.sampled_shares(raws[index], streams[index]), point)
        low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
        low, high = np.clip(np.minimum(low, point), 0.0, 1.0), np.clip(np.maximum(high, point), 0.0, 1.0)
        results[index] = CorrectedShares(point, low, high, replicates)
    return results
