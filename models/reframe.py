"""FER2013 faces put back into a larger picture, to check that production crops match training.

A FER2013 image is the training input. Padding it and scaling it up gives a "photo" in
which MTCNN finds the face; cropping that detection the way the worker does should give
back (nearly) the original 48x48 image. bench/crop_margin.py and tests/test_crops.py use
this to choose and guard `models.crops.DEFAULT_MARGIN`.
"""

from __future__ import annotations

import cv2
import numpy as np

PAD = 12  # pixels of the 48x48 face, so the detector's box is not clipped at the border
UPSCALE = 4


def as_photo(face: np.ndarray) -> np.ndarray:
    """A (48, 48) uint8 face as a (288, 288, 3) RGB picture: edge-padded, scaled up 4x."""
    padded = cv2.copyMakeBorder(face, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    side = padded.shape[0] * UPSCALE
    big = cv2.resize(padded, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.repeat(big[..., None], 3, axis=2)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels: 1.0 means the same framing and contrast."""
    return float(np.corrcoef(a.astype(np.float64).ravel(), b.astype(np.float64).ravel())[0, 1])
