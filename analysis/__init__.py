"""Statistics an analyst can defend: clustered intervals, classifier-corrected shares, comparisons.

Pure numpy, no database and no model: the queries in `db/` hand over per-image sufficient
statistics (`ClusterSums`), the model card hands over a confusion matrix (`Confusion`), and
these modules turn them into numbers with 95 % intervals. docs/statistics.md explains the
methods and their assumptions; bench/statistics_coverage.py checks them by simulation.
"""

from analysis.clustered import ClusterSums, RawShares, raw_shares
from analysis.compare import Differences, compare
from analysis.correction import Confusion, CorrectedShares, corrected_shares

__all__ = [
    "ClusterSums",
    "Confusion",
    "CorrectedShares",
    "Differences",
    "RawShares",
    "compare",
    "corrected_shares",
    "raw_shares",
]
