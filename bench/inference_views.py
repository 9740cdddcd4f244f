"""Test-time views beyond flip averaging, scored on the choosing sets only (issue 15: "ten-crop or flip averaging").

    python bench/inference_views.py [--model PATH]

For one model (default: the shipped one), each combination of views (the face, mirrored,
a centre crop of 92 % scaled back, shifts of 2 px, 8 % edge padding) is averaged before any
calibration, and scored as models/ship.py scores a candidate: PublicTest accuracy,
calibration-fold (4) macro recall and share distance, and the selection score. Each view
is one more net pass per face; the speed floor (500 faces/s) allows four. PrivateTest and
the held-out fold are not looked at.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from models.calibration import share_distance
from models.classifier import EmotionClassifier
from models.data import default_data_path
from models.evaluate import metrics
from models.labels import FACE_SIZE
from models.ship import CHOOSING_SETS, evaluation_sets, selection_score
from models.weights import DEFAULT_MODEL_PATH
from models.wild import DEFAULT_WILD_PATH


def centre_crop(faces: np.ndarray, keep: float = 0.92) -> np.ndarray:
    side = int(round(FACE_SIZE * keep))
    offset = (FACE_SIZE - side) // 2
    return np.stack(
        [cv2.resize(face[offset : offset + side, offset : offset + side], (FACE_SIZE, FACE_SIZE)) for face in faces]
    )


def shifted(faces: np.ndarray, dx: int) -> np.ndarray:
    move = np.float32([[1, 0, dx], [0, 1, 0]])
    return np.stack([cv2.warpAffine(f, move, (FACE_SIZE, FACE_SIZE), borderMode=cv2.BORDER_REPLICATE) for f in faces])


def padded(faces: np.ndarray, pad: int = 2) -> np.ndarray:
    return np.stack(
        [
            cv2.resize(
                cv2.copyMakeBorder(f, pad, pad, pad, pad, cv2.BORDER_REPLICATE),
                (FACE_SIZE, FACE_SIZE),
                interpolation=cv2.INTER_AREA,
            )
            for f in faces
        ]
    )


VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "face": lambda x: x,
    "mirrored": lambda x: x[:, :, ::-1],
    "crop 92 %": centre_crop,
    "crop 92 %, mirrored": lambda x: centre_crop(x)[:, :, ::-1],
    "shift +2": lambda x: shifted(x, 2),
    "shift -2": lambda x: shifted(x, -2),
    "pad 8 %": padded,
}
COMBINATIONS = (
    ("face",),
    ("face", "mirrored"),
    ("face", "mirrored", "crop 92 %"),
    ("face", "mirrored", "crop 92 %", "crop 92 %, mirrored"),
    ("face", "mirrored", "shift +2", "shift -2"),
    ("face", "mirrored", "pad 8 %"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    args = parser.parse_args()
    sets = evaluation_sets(default_data_path(), DEFAULT_WILD_PATH, CHOOSING_SETS)
    classifier = EmotionClassifier(args.model, temperature=1.0, flip_tta=False)
    probabilities = {
        name: {view: classifier.predict(np.ascontiguousarray(make(faces.images))) for view, make in VIEWS.items()}
        for name, faces in sets.items()
    }
    print(f"model: {args.model}\n")
    print("| views (passes per face) | PublicTest acc | calibration macro recall | calibration TV | score |")
    print("| --- | --- | --- | --- | --- |")
    for combination in COMBINATIONS:
        scores = {}
        for name, faces in sets.items():
            mean = np.mean([probabilities[name][view] for view in combination], axis=0)
            scored = metrics(faces.labels, mean)
            distance = share_distance(faces.labels, mean.argmax(1))
            scores[name] = {
                "accuracy": scored["accuracy"],
                "macro_recall": scored["macro_recall"],
                "share_distance": distance,
            }
        public, calibration = scores["fer2013_publictest"], scores["wild_calibration"]
        print(
            f"| {' + '.join(combination)} ({len(combination)}) | {public['accuracy']:.3f} | "
            f"{calibration['macro_recall']:.3f} | {calibration['share_distance']:.3f} | {selection_score(scores):.3f} |"
        )


if __name__ == "__main__":
    main()
