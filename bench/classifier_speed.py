"""Batched CPU inference speed of the shipped expression model on FER2013 PrivateTest.

    python bench/classifier_speed.py [--model PATH] [--repeats 3]

Prints faces/s for `EmotionClassifier.predict` (flip averaging on, as the product runs)
over all 3,589 PrivateTest faces, the median of several runs after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from models import EmotionClassifier
from models.data import default_data_path, load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    faces = load_split(default_data_path(), "PrivateTest").images
    classifier = EmotionClassifier(args.model)
    classifier.predict(faces[:256])  # warm-up: graph tracing, thread pools
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        classifier.predict(faces)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"{len(faces)} faces, {os.cpu_count()} cpus: median {median:.2f} s over {args.repeats} runs "
        f"= {len(faces) / median:.0f} faces/s (flip averaging on: {classifier.flip_tta})"
    )


if __name__ == "__main__":
    main()
