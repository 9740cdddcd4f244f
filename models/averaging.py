"""Weight averaging over the last epochs of a run (SWA-style), as a candidate for export.

Late in a cosine schedule the net wanders around a flat minimum; the mean of those
weights usually generalises a little better than any single epoch. Whether it does here
is decided on PublicTest like every other choice, never on PrivateTest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

SNAPSHOT_DIR = "snapshots"  # inside a run directory: epoch_NNN.weights.h5, one per late epoch
SNAPSHOT_PATTERN = re.compile(r"epoch_(\d+)\.weights\.h5$")


def snapshot_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / SNAPSHOT_DIR / f"epoch_{epoch:03d}.weights.h5"


def snapshots(run_dir: Path) -> list[Path]:
    """The run's per-epoch snapshots, oldest first."""
    found = [
        (int(m.group(1)), p)
        for p in (run_dir / SNAPSHOT_DIR).glob("epoch_*.weights.h5")
        if (m := SNAPSHOT_PATTERN.search(p.name))
    ]
    return [path for _, path in sorted(found)]


def average_weights(model: keras.Model, paths: Sequence[Path]) -> list[np.ndarray]:
    """The element-wise mean of the weight files in `paths`, loaded through `model`."""
    if not paths:
        raise ValueError("nothing to average")
    total: list[np.ndarray] | None = None
    for path in paths:
        model.load_weights(path)
        weights = [w.astype("float64") for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights, strict=True)]
    return [(t / len(paths)).astype("float32") for t in total]


def recalibrate_batch_norm(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> None:
    """Give averaged weights their own batch-norm statistics.

    The mean of several epochs' moving statistics does not describe the mean net's
    activations; one clean pass over the training faces does. Momentum k/(k+1) on batch k
    makes the moving values the exact running mean over all batches.
    """
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    saved_momentum = [norm.momentum for norm in norms]
    for norm in norms:
        norm.moving_mean.assign(np.zeros(norm.moving_mean.shape, "float32"))
        norm.moving_variance.assign(np.ones(norm.moving_variance.shape, "float32"))
    for step, start in enumerate(range(0, len(images), batch_size)):
        for norm in norms:
            norm.momentum = step / (step + 1)
        model(images[start : start + batch_size, ..., None].astype("float32"), training=True)
    for norm, momentum in zip(norms, saved_momentum, strict=True):
        norm.momentum = momentum
