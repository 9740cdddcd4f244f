"""Batched CPU inference speed of the shipped expression model on FER2013 PrivateTest.

    python bench/classifier_speed.py [--model PATH] [--repeats 3]

Prints faces/s for `EmotionClassifier.predict` with the product's defaults (precision
"auto"; flip averaging and temperature as the model card says) over all 3,589 PrivateTest
faces, the median of several runs after one warm-up, beside the target of 1,000 faces/s on
this 2-core machine (issue 15 allows 500 for a costlier classifier).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from models import EmotionClassifier
from models.data import default_data_path, load_split

TARGET = 500  # issue 15: the shipped classifier (flip averaging and all) at least 500 faces/s on this CPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one timed run")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    faces = load_split(default_data_path(), "PrivateTest").images
    classifier = EmotionClassifier(args.model)
    classifier.predict(faces[:256])  # warm-up: graph tracing, thread pools
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict(faces)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    rate = len(faces) / median
    print(
        f"{len(faces)} faces, {os.cpu_count()} cpus: median {median:.2f} s over {repeats} runs "
        f"= {rate:.0f} faces/s ({classifier.precision}, flip averaging {'on' if classifier.flip_tta else 'off'}); "
        f"target ≥ {TARGET:,} faces/s: {'PASS' if rate >= TARGET else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
