"""Scoring a model on one official FER2013 split, as the product would classify."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.classifier import EmotionClassifier
from models.data import load_split
from models.labels import EMOTIONS

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
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "support": int(matrix[i].sum())}
            for i, name in enumerate(EMOTIONS)
        },
        "confusion_matrix": matrix.tolist(),
    }


def evaluate_model(model_path: Path | str | None, data: Path | str, split: str) -> dict:
    """Metrics with flip averaging (what `EmotionClassifier.predict` delivers) plus plain accuracy."""
    data_split = load_split(data, split)
    classifier = EmotionClassifier(model_path)
    result = {"split": split, **metrics(data_split.labels, classifier.predict(data_split.images))}
    classifier.flip_tta = False
    plain = classifier.predict(data_split.images).argmax(1)
    result["accuracy_flip_tta"] = result["accuracy"]
    result["accuracy_no_tta"] = float((plain == data_split.labels).mean())
    return result
