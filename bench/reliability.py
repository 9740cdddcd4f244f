"""The shipped model's reliability diagram, before and after calibration, from its model card.

    python bench/reliability.py [--model PATH] [--output docs/reliability.png]

The card's "sets" entry holds the per-bin confidence and accuracy (15 equal-width bins) of
PrivateTest and the held-out real-photo fold before and after calibration, each with the
calibration profile of its kind of face (PrivateTest "fer2013", fold 0 "photos"); this draws
them and prints the ECE and log-loss lines beside them, and what the other profile would give.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from models.classifier import read_card
from models.evaluate import reliability_png
from models.weights import DEFAULT_MODEL_PATH

SETS = {"fer2013_privatetest": "PrivateTest", "wild_heldout": "wild fold 0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--output", type=Path, default=Path("docs/reliability.png"))
    args = parser.parse_args()
    card = read_card(args.model)
    profiles = card["calibration"].get("profiles", {})
    curves = {}
    for key, label in SETS.items():
        figures = card["sets"][key]
        profile = figures.get("profile")
        temperature = profiles[profile]["temperature"] if profile else card["calibration"]["temperature"]
        curves[f"{label}, uncalibrated"] = figures["reliability_before"]
        curves[f"{label}, {profile or 'calibrated'} (T={temperature:.2f})"] = figures["reliability_after"]
        others = ", ".join(f"{name} {ece:.3f}" for name, ece in figures.get("ece_by_profile", {}).items())
        print(
            f"{label}: ECE {figures['ece_before']:.3f} -> {figures['ece_after']:.3f} ({profile or 'one temperature'}), "
            f"log-loss {figures['log_loss_before']:.3f} -> {figures['log_loss_after']:.3f}"
            + (f"; ECE by profile: {others}" if others else "")
        )
    reliability_png(curves, args.output, f"{args.model.name}: reliability (15 bins)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
