"""PrivateTest accuracy of small faces: the shipped model and the previous one side by side.

    python bench/resolution.py [--model PATH] [--previous PATH] [--data PATH]

Each PrivateTest face is shrunk to 48, 40, 32, 24 and 16 px (area averaging) and scaled
back to 48 (bicubic, as models/crops.py scales small faces up), then classified as
`EmotionClassifier.predict` delivers (the model card's flip mode and temperature). Prints
a markdown table and, for each model, the side at which accuracy is 5 points under its
48 px figure (linearly interpolated): the low-resolution threshold.

--previous defaults to v2 as committed at c454c15, extracted with `git show` into a
temporary file (the weights are not kept twice in the repository).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from models import EmotionClassifier
from models.data import default_data_path, load_split
from models.resolution import LOW_RESOLUTION_DROP, SIDES, low_resolution_threshold, resolution_curve

PREVIOUS_COMMIT = "c454c15"  # v2, the model before the fine-tuned v3
MODEL_FILE = "models/weights/emotion_cnn.keras"


def previous_model(commit: str, directory: Path) -> Path:
    """The model file (and its card) as committed at `commit`, written into `directory`."""
    target = directory / "previous.keras"
    for suffix in (".keras", ".json"):
        blob = subprocess.run(
            ["git", "show", f"{commit}:{MODEL_FILE[: -len('.keras')]}{suffix}"], capture_output=True, check=True
        ).stdout
        target.with_suffix(suffix).write_bytes(blob)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the committed model")
    parser.add_argument("--previous", type=Path, default=None, help=f"default: {MODEL_FILE} at {PREVIOUS_COMMIT}")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    split = load_split(args.data or default_data_path(), "PrivateTest")
    with tempfile.TemporaryDirectory() as scratch:
        previous = args.previous or previous_model(PREVIOUS_COMMIT, Path(scratch))
        models = {
            "shipped": EmotionClassifier(args.model),
            f"previous ({PREVIOUS_COMMIT}, v2)": EmotionClassifier(previous),
        }
        curves = {name: resolution_curve(c.predict, split.images, split.labels) for name, c in models.items()}
    print(f"PrivateTest, {len(split)} faces, accuracy by face side (shrunk and scaled back to 48 px)\n")
    print("| model | " + " | ".join(f"{side} px" for side in SIDES) + " |")
    print("| --- |" + " --- |" * len(SIDES))
    for name, curve in curves.items():
        print(f"| {name} | " + " | ".join(f"{curve[side]:.3f}" for side in SIDES) + " |")
    print()
    for name, curve in curves.items():
        threshold = low_resolution_threshold(curve)
        said = f"{threshold:.1f} px" if threshold is not None else f"not reached down to {min(SIDES)} px"
        print(f"{name}: accuracy {LOW_RESOLUTION_DROP * 100:.0f} points under its 48 px figure at {said}")


if __name__ == "__main__":
    main()
