"""Do the 95 % intervals hold 95 % of the time, and does the correction bring shares closer to the truth?

1. Simulation (analysis/simulation.py): for each confusion matrix of the model card and each
   population, 5,000 draws (the check; 1,000 elsewhere) of a world with known true shares
   and clustered faces (images of 1 + NegBin(mean 1.5) faces, each image's mix ~ Dirichlet(3
   x shares)), every face classified through the world's true matrix. The check
   (`coverage_given_card`): the card fixed, corrected exactly as the API corrects, and each
   world's true matrix drawn from what the card allows (its counts at their effective sizes
   plus the prior). Raw intervals must hold the classified truth M^T pi, corrected ones the
   true shares pi, in 93-97 % of draws; the corrected estimate's mean error must be under
   one point. Then a stress test, reported and not checked (`coverage`): the truth held at
   the counts' own proportions and the calibration set measured again in each world (also
   with the counts times ten: what a larger calibration fold would buy). Also reported: two
   sets of one population compared as /compare compares them (how often any emotion is
   called different after Holm: at most 5 % expected, and how often each difference's
   interval holds 0).
2. Real labels: the shared set's held-out identities (models/wild.py fold 0), classified by the
   shipped EmotionClassifier, treated as one analysed set (each person a cluster: a person's
   photos share their errors); raw and corrected shares against the true labels (total
   variation distance), and whether the true shares fall inside the corrected intervals.
3. Transfer: how wrong a correction is when its matrix does not carry over: the held-out
   photos corrected with FER2013 PublicTest's matrix, and FER2013 PrivateTest corrected with
   the real-photo calibration matrix (and, for reference, with the matching matrix).

    python bench/statistics_coverage.py              # everything: the check at 5,000 draws a cell, the rest 1,000
    python bench/statistics_coverage.py --check-draws 1000   # the check at the issue's least, 1,000 draws
    python bench/statistics_coverage.py --quick      # 200 draws everywhere
    python bench/statistics_coverage.py --no-real    # simulation only (no TensorFlow)
    python bench/statistics_coverage.py --no-stress  # without the stress test
    python bench/statistics_coverage.py --no-compare # without the comparisons of a population with itself
    python bench/statistics_coverage.py --sweep      # the check by set size, 40-400 images (a table)
    python bench/statistics_coverage.py --sweep --draws 5000 --seed 7 --sizes 150,200,250,300   # how the flag is chosen

Exits 1 if a check fails. Nothing is chosen here: the held-out fold and PrivateTest are only scored.
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import product

import numpy as np

from analysis.card import confusion, matrices
from analysis.clustered import ClusterSums, raw_shares
from analysis.correction import Confusion, corrected_shares
from analysis.simulation import Coverage, Scenario, coverage, coverage_given_card, null_comparisons
from core.settings import load_settings
from core.vocabulary import EMOTIONS

COVERAGE_BAND = (0.93, 0.97)
MAX_BIAS = 0.01
CHECK_SEED = 6  # the check's worlds; anything chosen (the small-sample flag) is chosen on others
# The check gates on 5,000 draws a cell, not 1,000: with 1,000 a figure's Monte Carlo standard error is 0.7
# points, so a method at exactly 95 % leaves one of the check's 112 figures outside 93-97 % in 29 % of runs,
# while one truly at 92.5 % still passes a figure 30 % of the time; with 5,000 (0.3 points) the first is
# about 4e-8 and the second 9 % (binomial). A stronger test both ways; --check-draws 1000 runs the least.
CHECK_DRAWS = 5000
SOCIAL = np.array([0.08, 0.015, 0.06, 0.36, 0.11, 0.095, 0.28])  # bench/generate_faces.py's emotion mix


def news_mix(calibration: np.ndarray) -> np.ndarray:
    """The calibration fold's true shares (news photos, mostly neutral and happy), no class under 0.5 %."""
    shares = np.maximum(calibration.sum(axis=1) / calibration.sum(), 0.005)
    return shares / shares.sum()


def row(label: str, values: np.ndarray, digits: int = 3) -> str:
    return f"  {label:<22}" + "".join(f"{value:>9.{digits}f}" for value in values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(title: str, scenario: Scenario, result: Coverage, seconds: float) -> bool:
    """Print one cell's figures; whether it meets the band and the bias limit."""
    raw_ok = in_band(result.raw_covered)
    corrected_ok = in_band(result.corrected_covered)
    bias_ok = bool(np.all(np.abs(result.corrected_bias) < MAX_BIAS))
    print(f"\n{title}, {scenario.name}: {result.draws} draws, {seconds:.0f} s")
    print(f"  {'':<22}" + "".join(f"{name:>9}" for name in EMOTIONS))
    print(row("true share", scenario.true_shares))
    print(row("raw coverage", result.raw_covered) + f"   {verdict(raw_ok)} (93-97 %)")
    print(row("corrected coverage", result.corrected_covered) + f"   {verdict(corrected_ok)} (93-97 %)")
    below = 1 - result.corrected_covered - result.corrected_above
    print(row("truth above, %", result.corrected_above * 100, 1) + "   (lopsided if far from below)")
    print(row("truth below, %", below * 100, 1))
    print(row("raw bias, points", result.raw_bias * 100, 2))
    print(row("corrected bias, points", result.corrected_bias * 100, 2) + f"   {verdict(bias_ok)} (< 1)")
    print(row("raw width", result.raw_width))
    print(row("corrected width", result.corrected_width))
    return raw_ok and corrected_ok and bias_ok


def in_band(covered: np.ndarray) -> bool:
    return bool(np.all((covered >= COVERAGE_BAND[0]) & (covered <= COVERAGE_BAND[1])))


def mixes(card: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The populations' true shares by name: the social mix and the calibration fold's news mix."""
    return {"social": SOCIAL / SOCIAL.sum(), "news": news_mix(card["wild_calibration"])}


def population(mix: str, shares: np.ndarray, images: int) -> Scenario:
    """`images` images of 1 + NegBin(mean 1.5) faces, each image's mix ~ Dirichlet(3 x shares)."""
    return Scenario(f"{mix} mix, {images} images", shares, images, 1.5, 3.0)


def scenarios(card: dict[str, np.ndarray]) -> tuple[Scenario, ...]:
    shares = mixes(card)
    sizes = (400, load_settings().min_images_for_share)  # a large set, and the smallest the dashboard calls reliable
    return tuple(population(mix, shares[mix], images) for images in sizes for mix in ("social", "news"))


def simulate(card: dict[str, np.ndarray], draws: int, seed: int = CHECK_SEED) -> bool:
    """The check: worlds given the card, corrected exactly as the API corrects (its Confusion objects)."""
    passed = True
    for name in ("wild_calibration", "fer2013_publictest"):
        correction = confusion(None, name)
        for scenario in scenarios(card):
            started = time.perf_counter()
            result = coverage_given_card(scenario, correction, draws, seed)
            title = f"given the card: {name} ({correction.row_counts.sum():,.0f} faces)"
            passed &= report(title, scenario, result, time.perf_counter() - started)
    return passed


def comparisons(card: dict[str, np.ndarray], draws: int, seed: int = CHECK_SEED) -> None:
    """Reported, not checked: two sets of one population compared as /compare does, at the reliable size
    and at 40 images (under it: what the dashboard's flag warns of)."""
    shares = mixes(card)
    for name, images in product(("wild_calibration", "fer2013_publictest"), (load_settings().min_images_for_share, 40)):
        for mix in ("social", "news"):
            started = time.perf_counter()
            result = null_comparisons(population(mix, shares[mix], images), confusion(None, name), draws, seed)
            print(
                f"\ncompare, one population twice: {name}, {result.scenario}: {draws} draws, "
                f"{time.perf_counter() - started:.0f} s"
            )
            print(f"  {'':<22}" + "".join(f"{emotion:>9}" for emotion in EMOTIONS))
            print(row("raw: zero inside", result.raw_zero_inside))
            print(row("corrected: zero inside", result.zero_inside))
            print(
                f"  any emotion significant after Holm: raw {result.raw_any_significant:.1%}, corrected "
                f"{result.any_significant:.1%} of draws (at most 5 % expected)"
            )


def stress(card: dict[str, np.ndarray], draws: int) -> None:
    """Not a check: the truth held at the counts' proportions, the calibration set measured again each time."""
    prior = card.get("fer2013_publictest")
    matrices_ = {
        "wild_calibration": card["wild_calibration"],
        # What the card's matrix knows with people as clusters: each row at its effective size.
        "wild_calibration, effective": confusion(None, "wild_calibration").row_counts,
        "fer2013_publictest": card["fer2013_publictest"],
        # What a larger calibration fold would give: the same proportions, ten times the faces (fear: still none).
        "wild_calibration x10": card["wild_calibration"] * 10,
    }
    for matrix_name, counts in matrices_.items():
        for scenario in scenarios(card)[:3]:
            started = time.perf_counter()
            result = coverage(scenario, counts, prior, draws)
            title = f"stress, truth at the counts: {matrix_name} ({counts.sum():,.0f} faces)"
            report(title, scenario, result, time.perf_counter() - started)


SWEEP_IMAGES = (40, 60, 100, 150, 200, 300, 400)


def sweep(
    card: dict[str, np.ndarray], draws: int, seed: int = CHECK_SEED, sizes: tuple[int, ...] = SWEEP_IMAGES
) -> None:
    """The check at each set size: per cell the least and most covered emotion, raw / corrected, and the largest
    bias; then per size the ranges over every cell (what SOCIALFER_MIN_IMAGES_FOR_SHARE is chosen by)."""
    columns = [(name, mix) for name in ("wild_calibration", "fer2013_publictest") for mix in ("social", "news")]
    shares = mixes(card)
    print("\n| images | " + " | ".join(f"{name}, {mix}" for name, mix in columns) + " | all cells |")
    print("| --- |" + " --- |" * (len(columns) + 1))
    for images in sizes:
        cells, raws, correcteds, biases = [], [], [], []
        for name, mix in columns:
            result = coverage_given_card(population(mix, shares[mix], images), confusion(None, name), draws, seed)
            raw, corrected = result.raw_covered * 100, result.corrected_covered * 100
            bias = np.abs(result.corrected_bias).max() * 100
            cells.append(f"{raw.min():.1f}–{raw.max():.1f} / {corrected.min():.1f}–{corrected.max():.1f}, {bias:.2f}")
            raws.extend(raw)
            correcteds.extend(corrected)
            biases.append(bias)
        overall = f"{min(raws):.1f}–{max(raws):.1f} / {min(correcteds):.1f}–{max(correcteds):.1f}, {max(biases):.2f}"
        print(f"| {images} | " + " | ".join(cells) + f" | {overall} |", flush=True)


def set_sums(predicted: np.ndarray, clusters: np.ndarray) -> ClusterSums:
    """The predictions of a labelled set as an analysed set whose images are `clusters`."""
    _, cluster = np.unique(clusters, return_inverse=True)
    per_cluster = np.zeros((cluster.max() + 1, len(EMOTIONS)))
    np.add.at(per_cluster, (cluster, predicted), 1)
    return ClusterSums.from_image_counts(per_cluster)


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


def score(title: str, labels: np.ndarray, predicted: np.ndarray, clusters: np.ndarray, correction: Confusion) -> dict:
    truth = np.bincount(labels, minlength=len(EMOTIONS)) / len(labels)
    raw = raw_shares(set_sums(predicted, clusters))
    corrected = corrected_shares([raw], correction)[0]
    assert corrected is not None
    inside = (corrected.low <= truth) & (truth <= corrected.high)
    print(f"\n{title}: {len(labels):,} faces, corrected with {correction.name}")
    print(f"  {'':<22}" + "".join(f"{name:>9}" for name in EMOTIONS))
    print(row("true share", truth))
    print(row("raw share", raw.share))
    print(row("corrected share", corrected.share))
    print(row("corrected low", corrected.low))
    print(row("corrected high", corrected.high))
    print(f"  {'truth inside':<22}" + "".join(f"{'yes' if flag else 'NO':>9}" for flag in inside))
    tv_raw, tv_corrected = total_variation(raw.share, truth), total_variation(corrected.share, truth)
    print(f"  total variation to the truth: raw {tv_raw:.3f}, corrected {tv_corrected:.3f}")
    return {"tv_raw": tv_raw, "tv_corrected": tv_corrected, "inside": bool(inside.all())}


def real_labels(card: dict[str, np.ndarray]) -> bool:
    from models.classifier import EmotionClassifier
    from models.data import default_data_path, load_split
    from models.wild import load_wild

    classifier = EmotionClassifier()
    heldout = load_wild().heldout()
    predicted = classifier.predict(heldout.images).argmax(axis=1)
    labels = heldout.labels.astype(int)
    wild = confusion(None, "wild_calibration")  # as the API corrects: the prior, rows at their effective sizes
    fer = confusion(None, "fer2013_publictest")

    by_person = score("held-out identities (fold 0), each person a cluster", labels, predicted, heldout.identity, wild)
    by_face = score("held-out identities, each face its own image", labels, predicted, np.arange(len(labels)), wild)
    closer = by_person["tv_corrected"] < by_person["tv_raw"]
    print(
        f"\ncorrected closer to the truth than raw: {verdict(closer)}; true shares inside the corrected "
        f"intervals: {verdict(by_person['inside'])} (each person a cluster), "
        f"{'yes' if by_face['inside'] else 'no'} (each face its own image)"
    )

    print("\n--- transfer: correcting with a matrix measured elsewhere ---")
    score("held-out identities", labels, predicted, heldout.identity, fer)
    private = load_split(default_data_path(), "PrivateTest")
    private_predicted = classifier.predict(private.images).argmax(axis=1)
    private_labels = private.labels.astype(int)
    faces = np.arange(len(private_labels))
    score("FER2013 PrivateTest", private_labels, private_predicted, faces, wild)
    score("FER2013 PrivateTest", private_labels, private_predicted, faces, fer)
    return closer and by_person["inside"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check-draws",
        type=int,
        default=CHECK_DRAWS,
        help="draws per cell of the check (the gate); 1,000 is the issue's least",
    )
    parser.add_argument("--draws", type=int, default=1000, help="draws per reported line: stress, compare, sweep")
    parser.add_argument("--quick", action="store_true", help="200 draws everywhere")
    parser.add_argument("--no-stress", action="store_true", help="skip the stress test")
    parser.add_argument("--no-real", action="store_true", help="skip the real labels (no TensorFlow)")
    parser.add_argument("--no-compare", action="store_true", help="skip the comparisons of a population with itself")
    parser.add_argument("--sweep", action="store_true", help="only the check's coverage by set size (a table)")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(size) for size in text.split(",")),
        default=SWEEP_IMAGES,
        help="--sweep: the set sizes, comma-separated",
    )
    parser.add_argument(
        "--seed", type=int, default=CHECK_SEED, help="the worlds' seed (choose with another than the check's)"
    )
    args = parser.parse_args()
    draws, check_draws = (200, 200) if args.quick else (args.draws, args.check_draws)
    card = matrices(None)
    if args.sweep:
        sweep(card, draws, args.seed, args.sizes)
        return
    started = time.perf_counter()
    simulated = simulate(card, check_draws, args.seed)
    if not args.no_compare:
        print("\n--- comparisons (reported, not checked): one population compared with itself ---")
        comparisons(card, draws, args.seed)
    if not args.no_stress:
        print("\n--- stress test (reported, not checked): the truth at the counts' proportions ---")
        stress(card, draws)
    real = True if args.no_real else real_labels(card)
    print(
        f"\nsimulation: {verdict(simulated)}; real labels: {'skipped' if args.no_real else verdict(real)} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    sys.exit(0 if simulated and real else 1)


if __name__ == "__main__":
    main()
