"""The statistics as the API, the dashboard and `socialfer stats` show them.

`with_intervals` takes the counts of `db.queries.stats(..., with_pairs=True)` (each block with
its `cross` matrix) and gives every emotion share its 95 % interval and its corrected share
with interval; `comparison` does the same for two sets and adds their differences. Corrected
shares are the expensive part (a thousand small solves per set), so they are kept in a
small cache keyed by the exact sufficient statistics: a dashboard polling
unchanged data pays once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from analysis.card import measured_on, transfer_warning
from analysis.clustered import LEVEL, ClusterSums, RawShares, raw_shares
from analysis.compare import Differences, compare
from analysis.correction import Confusion, CorrectedShares, corrected_shares
from core.vocabulary import EMOTIONS

DIGITS = 6  # shares and bounds are rounded to this many decimals in answers
# A matrix row measured from fewer (effective) faces than this leans on its prior (FER2013's confusions
# of that expression, worth analysis.correction.PRIOR_FACES faces) for a quarter or more of its weight,
# so its corrected share is named as resting partly on an assumption.
THIN_ROW_FACES = 30
RAW_METHOD = (
    "the classifier's shares; 95 % Wilson interval at the effective number of faces of a "
    "cluster-robust (images as clusters) linearised variance, with t quantiles (images - 1 degrees of freedom)"
)
CORRECTED_METHOD = (
    "true shares estimated from the confusion matrix (constrained least squares on the simplex); "
    "95 % percentile interval, cut to [0, 1], over replicates that redraw the matrix (each row at its "
    "effective number of faces, people as clusters) and the sampling error, each emotion's share solved "
    "from its own equation with the others at the estimate"
)


def cluster_sums(block: dict[str, Any]) -> ClusterSums:
    """A stats block's counts and `cross` matrix as `ClusterSums` (images with faces as the clusters)."""
    counts = np.array([block["emotions"][name]["count"] for name in EMOTIONS], dtype=float)
    return ClusterSums(counts, np.asarray(block["cross"], dtype=float), int(block["images_with_faces"]))


def stream_of(sums: ClusterSums) -> int:
    """A sampling stream fixed by the data: the same set gets the same interval on every page, two different
    sets independent deviates."""
    digest = hashlib.blake2b(sums.counts.tobytes() + sums.cross.tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@lru_cache(maxsize=256)
def cached_corrections(confusion: Confusion, key: tuple[tuple[bytes, bytes, int], ...]) -> tuple:
    sums = [
        ClusterSums(np.frombuffer(counts), np.frombuffer(cross).reshape(len(EMOTIONS), -1), images)
        for counts, cross, images in key
    ]
    return tuple(corrected_shares([raw_shares(s) for s in sums], confusion, [stream_of(s) for s in sums]))


def corrections(sums: Sequence[ClusterSums], confusion: Confusion | None) -> Sequence[CorrectedShares | None]:
    """Corrected shares of each set; a set given twice (one platform: it is also the total) is computed once."""
    if confusion is None:
        return [None] * len(sums)
    keys = [(s.counts.tobytes(), s.cross.tobytes(), s.images) for s in sums]
    unique = list(dict.fromkeys(keys))
    computed = dict(zip(unique, cached_corrections(confusion, tuple(unique)), strict=True))
    return [computed[key] for key in keys]


def rounded(values: np.ndarray) -> list[float]:
    return [round(float(value), DIGITS) for value in values]


def annotate(block: dict[str, Any], raw: RawShares, corrected: CorrectedShares | None, min_images: int) -> None:
    """Write the intervals into a stats block (in place); `cross` goes, it is not part of the answer."""
    block.pop("cross", None)
    block["reliable"] = block["images_with_faces"] >= min_images
    for index, name in enumerate(EMOTIONS):
        cell = block["emotions"][name]
        cell["interval"] = rounded(np.array([raw.low[index], raw.high[index]]))
        cell["corrected"] = (
            None
            if corrected is None
            else {
                "share": round(float(corrected.share[index]), DIGITS),
                "interval": rounded(np.array([corrected.low[index], corrected.high[index]])),
            }
        )


def method(confusion: Confusion | None, min_images: int, note: str | None = None) -> dict[str, Any]:
    """What the numbers are: the `statistics` block of an answer."""
    corrected: dict[str, Any] | None = None
    if confusion is not None:
        faces = confusion.row_counts.sum(axis=1)
        corrected = {
            "matrix": confusion.name,
            "method": CORRECTED_METHOD,
            "replicates": confusion.replicates,
            "calibration_faces": {name: round(float(faces[i]), 1) for i, name in enumerate(EMOTIONS)},
            "thin_rows": [name for i, name in enumerate(EMOTIONS) if faces[i] < THIN_ROW_FACES],
            "thin_row_faces": THIN_ROW_FACES,
            "prior_faces": confusion.prior_faces,
            "measured_on": measured_on(confusion.name),
            "warning": transfer_warning(confusion.name),
        }
    return {
        "level": LEVEL,
        "min_images": min_images,
        "raw": RAW_METHOD,
        "corrected": corrected,
        **({"note": note} if note else {}),
    }


def with_intervals(
    result: dict[str, Any], confusion: Confusion | None, min_images: int, note: str | None = None
) -> dict[str, Any]:
    """`db.queries.stats(..., with_pairs=True)` with intervals and corrected shares, overall and per platform."""
    blocks = [result, *result["by_platform"].values()]
    sums = [cluster_sums(block) for block in blocks]
    for block, block_sums, corrected in zip(blocks, sums, corrections(sums, confusion), strict=True):
        annotate(block, raw_shares(block_sums), corrected, min_images)
    result["statistics"] = method(confusion, min_images, note)
    return result


def difference_json(differences: Differences | None, index: int) -> dict[str, Any] | None:
    if differences is None:
        return None
    return {
        "difference": round(float(differences.difference[index]), DIGITS),
        "interval": rounded(np.array([differences.low[index], differences.high[index]])),
        "p_value": round(float(differences.p_value[index]), DIGITS),
        "p_holm": round(float(differences.p_holm[index]), DIGITS),
        "significant": bool(differences.significant()[index]),
    }


def comparison(
    a: dict[str, Any], b: dict[str, Any], confusion: Confusion | None, min_images: int, note: str | None = None
) -> dict[str, Any]:
    """Two stats blocks (their overall figures, with `cross`) side by side, and a - b per emotion."""
    sides = []
    for block in (a, b):
        side = {key: value for key, value in block.items() if key != "by_platform"}
        sides.append(side)
    sums = [cluster_sums(side) for side in sides]
    raws = [raw_shares(side_sums) for side_sums in sums]
    corrected = corrections(sums, confusion)
    for side, raw, side_corrected in zip(sides, raws, corrected, strict=True):
        annotate(side, raw, side_corrected, min_images)
    raw_differences, corrected_differences = compare(raws[0], raws[1], corrected[0], corrected[1])
    return {
        "a": sides[0],
        "b": sides[1],
        "reliable": sides[0]["reliable"] and sides[1]["reliable"],
        "differences": {
            name: {
                "raw": difference_json(raw_differences, index),
                "corrected": difference_json(corrected_differences, index),
            }
            for index, name in enumerate(EMOTIONS)
        },
        "statistics": method(confusion, min_images, note),
    }
