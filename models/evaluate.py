"""Scoring a model on one official FER2013 split, as the product would classify."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from models.classifier import EmotionClassifier, read_card
from models.data import load_split
from models.labels import EMOTIONS
from models.weights import DEFAULT_MODEL_PATH

DISGUST = EMOTIONS.index("disgust")


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    matrix = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)


def metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall, macro-F1, and the seed's no-disgust column."""
    predicted = probs.argmax(1)
    matrix = confusion_matrix(labels, predicted)
    true_pos = np.diag(matrix).astype(float)
    precision = safe_divide(true_pos, matrix.sum(0))
    recall = safe_divide(true_pos, matrix.sum(1))
    f1 = safe_divide(2 * precision * recall, precision + recall)
    keep = labels != DISGUST
    masked = probs[keep].copy()
    masked[:, DISGUST] = -1.0
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "accuracy_without_disgust": float((masked.argmax(1) == labels[keep]).mean()),
        "macro_f1": float(f1.mean()),
        # Over the classes present: the wild folds lack some (the calibration fold has no fear face).
        "macro_recall": float(recall[matrix.sum(1) > 0].mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "support": int(matrix[i].sum())}
            for i, name in enumerate(EMOTIONS)
        },
        "confusion_matrix": matrix.tolist(),
    }


FER2013_PROFILE = "fer2013"


def evaluate_model(
    model_path: Path | str | None,
    data: Path | str,
    split: str,
    profile: str | None = None,
    precision: str = "auto",
) -> dict:
    """Metrics as `EmotionClassifier.predict` delivers them, plus the other flip mode's accuracy.

    FER2013's faces are scored with the card's "fer2013" calibration profile where it has one
    (`profile` chooses another; the product's default, "photos", keeps the model's argmax).
    `precision` is the classifier's: "auto" (the default) is what the product runs, but on a CPU
    with bfloat16 units it is picked by a timing race, so scores meant to be compared with each
    other or reproduced should name one.
    """
    data_split = load_split(data, split)
    profiles = read_card(Path(model_path or DEFAULT_MODEL_PATH)).get("calibration", {}).get("profiles", {})
    if profile is None and FER2013_PROFILE in profiles:
        profile = FER2013_PROFILE
    classifier = EmotionClassifier(model_path, profile=profile, precision=precision)
    result = {"split": split, "profile": classifier.profile}
    result.update(metrics(data_split.labels, classifier.predict(data_split.images)))
    result["flip_tta"], result["precision"] = classifier.flip_tta, classifier.precision
    classifier.flip_tta = not classifier.flip_tta
    other = float((classifier.predict(data_split.images).argmax(1) == data_split.labels).mean())
    with_flip, without_flip = (result["accuracy"], other) if result["flip_tta"] else (other, result["accuracy"])
    result["accuracy_flip_tta"], result["accuracy_no_tta"] = with_flip, without_flip
    return result


def confusion_png(matrix: np.ndarray, path: Path | str, title: str = "") -> None:
    """The confusion matrix as a PNG: rows are true classes, cells shaded by row share."""
    import cv2

    cell, left, top = 70, 110, 60 if title else 30
    size = len(EMOTIONS)
    image = np.full((top + cell * size + 90, left + cell * size + 20, 3), 255, np.uint8)
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if title:
        cv2.putText(image, title, (10, 25), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for row in range(size):
        cv2.putText(image, EMOTIONS[row], (8, top + row * cell + cell // 2 + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for col in range(size):
            x, y = left + col * cell, top + row * cell
            shade = int(255 - 200 * shares[row, col])
            cv2.rectangle(image, (x, y), (x + cell - 2, y + cell - 2), (255, shade, shade), -1)
            ink = (255, 255, 255) if shares[row, col] > 0.5 else (0, 0, 0)
            cv2.putText(image, str(matrix[row, col]), (x + 12, y + cell // 2 + 5), font, 0.5, ink, 1, cv2.LINE_AA)
    for col in range(size):
        origin = (left + col * cell + 5, top + size * cell + 20)
        cv2.putText(image, EMOTIONS[col][:7], origin, font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        image,
        "rows: true class, columns: predicted",
        (left, top + size * cell + 60),
        font,
        0.5,
        (80, 80, 80),
        1,
        cv2.LINE_AA,
    )
    cv2.imwrite(str(path), image)


def effective_row_faces(labels: np.ndarray, predicted: np.ndarray, people: np.ndarray) -> list[float]:
    """Per true class, how many independent faces its confusion-matrix row is worth, people as clusters.

    One person's photos share their errors (one news anchor read as sad in 40 photos), so a row
    counted from a few people's many photos knows less than its count says: its Kish effective
    size, the same cluster-robust computation the statistics make for images (analysis.clustered).
    """
    from analysis.clustered import ClusterSums, raw_shares

    sizes = []
    for true_class in range(len(EMOTIONS)):
        row = labels == true_class
        if not row.any():
            sizes.append(0.0)
            continue
        _, person = np.unique(people[row], return_inverse=True)
        per_person = np.zeros((person.max() + 1, len(EMOTIONS)))
        np.add.at(per_person, (person, predicted[row]), 1)
        sizes.append(round(raw_shares(ClusterSums.from_image_counts(per_person)).effective_faces, 2))
    return sizes


def shipped_confusion_matrices(predicted: Mapping[str, np.ndarray], fer2013: Path | str, wild: Path | str) -> dict:
    """The confusion matrices the model card ships (rows true, columns predicted, counts), from `predicted`:
    per set, the classes the model predicts for its faces in file order (the caller has classified them).

    `wild_calibration` is the matrix the statistics correct shares with (a fold never trained
    on); `wild_heldout` and `fer2013_publictest` are for reporting and for measuring how far a
    correction carries from one set to another. `effective_faces`: for the real-photo matrices,
    each row's effective number of faces with people as clusters (`effective_row_faces`);
    FER2013's faces are taken as independent.
    """
    from models.wild import load_wild

    public = load_split(fer2013, "PublicTest")
    faces = load_wild(wild)
    calibration, heldout = faces.calibration(), faces.heldout()
    sets = {
        "fer2013_publictest": (public.labels, None),
        "wild_calibration": (calibration.labels, calibration.identity),
        "wild_heldout": (heldout.labels, heldout.identity),
    }
    matrices: dict = {}
    effective: dict[str, list[float]] = {}
    for name, (labels, people) in sets.items():
        classes = predicted[name]
        if len(classes) != len(labels):
            raise ValueError(f"{name}: {len(classes)} predictions for {len(labels)} faces")
        matrices[name] = confusion_matrix(labels, classes).tolist()
        if people is not None:
            effective[name] = effective_row_faces(labels, classes, people)
    return {**matrices, "effective_faces": effective}


def reliability_png(curves: dict[str, list[dict]], path: Path | str, title: str = "") -> None:
    """A reliability diagram: accuracy against mean confidence per bin, one coloured line per curve.

    `curves` maps a legend label to `models.calibration.reliability` rows; the diagonal is perfect calibration.
    """
    import cv2

    size, left, top = 420, 60, 50
    image = np.full((top + size + 60, left + size + 260, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX

    def point(confidence: float, accuracy: float) -> tuple[int, int]:
        return int(left + confidence * size), int(top + (1 - accuracy) * size)

    cv2.rectangle(image, point(0, 1), point(1, 0), (0, 0, 0), 1)
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, y = point(tick, tick)
        cv2.putText(image, f"{tick:.1f}", (x - 10, top + size + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f"{tick:.1f}", (left - 35, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.line(image, point(0, 0), point(1, 1), (160, 160, 160), 1, cv2.LINE_AA)
    colours = [(200, 80, 0), (0, 120, 255), (40, 160, 40), (40, 40, 200), (150, 0, 150), (0, 170, 170)]
    for index, (label, rows) in enumerate(curves.items()):
        colour = colours[index % len(colours)]
        points = [point(r["confidence"], r["accuracy"]) for r in rows if r["count"] >= 10]
        for a, b in zip(points, points[1:], strict=False):
            cv2.line(image, a, b, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(image, p, 3, colour, -1, cv2.LINE_AA)
        legend_y = top + 20 + index * 22
        cv2.line(image, (left + size + 15, legend_y - 4), (left + size + 40, legend_y - 4), colour, 2)
        cv2.putText(image, label, (left + size + 45, legend_y), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    if title:
        cv2.putText(image, title, (10, 28), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        image, "mean confidence per bin (15 bins, >= 10 faces)", (left, top + size + 45), font, 0.45, (80, 80, 80), 1
    )
    cv2.putText(image, "accuracy", (5, top - 10), font, 0.45, (80, 80, 80), 1)
    cv2.imwrite(str(path), image)
