"""Face-detection recall, false positives and seconds per image, strategy by strategy, in one run.

    python bench/detection_recall.py [--rounds 3] [--quick] [--no-phone]

Sets (every box from ../shared/data/group_photos/annotations.json, scored by its README's
convention: a hit is IoU >= 0.4 with a not-yet-matched face, greedy by IoU; an unmatched
detection is a false positive unless it lies on an `ignore` box):

- `group`: the 14 group photos as they are (12 groups, 2 without people);
- `mosaic`: the 12 group photos at half size, four to a 2 x 2 mosaic (synthetic: faces of
  48-96 px become the 24-48 px faces of a large image, the case the 480 px scan misses);
  faces now under 24 px join the ignore boxes;
- `social`: the 11 example photos, scored against the faces a person counts in each;
- `phone`: the group photos scaled up to 3000, 3500 and 4000 px on the longer side (faces
  grow with them): seconds per image and, each strategy in a fresh process, peak RSS.

Every strategy is warmed up, then timed in rounds that alternate the strategies (machine
noise hits them alike); times are CPU seconds of this process with one TensorFlow thread,
as each of a worker's pool processes runs on this machine, medians over the rounds.
Compare times within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
GROUPS = DATA / "group_photos"
SOCIAL = DATA / "social_examples"
PERSON_COUNTS = {
    "facebook/1": 1, "facebook/2": 1, "facebook/3": 2, "instagram/1": 1, "instagram/2": 1, "instagram/3": 1,
    "twitter/1": 2, "twitter/2": 1, "twitter/3": 1, "twitter/4": 1, "twitter/5": 1,
}  # fmt: skip
PHONE_SIDES = (3000, 3500, 4000)
MATCH_IOU = 0.4
SMALL_PX = 48  # the annotations' `small`: faces under 48 px tall
TARGETS = "recall >= 0.98 (>= 48 px) and >= 0.95 (24-48 px); <= 1 false positive per 10 photos, none on negatives"

Box = tuple[float, float, float, float]  # x, y, w, h


@dataclass
class Photo:
    name: str
    rgb: np.ndarray
    faces: list[Box]
    ignore: list[Box]
    person_count: int | None = None  # social examples: no boxes, a count


# --- scoring --------------------------------------------------------------------------------------


def iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return w * h / union if union > 0 else 0.0


def inside(a: Box, b: Box) -> float:
    """The share of `a`'s area inside `b`."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return w * h / (a[2] * a[3]) if a[2] * a[3] > 0 else 0.0


def score(found: list[Box], photo: Photo) -> tuple[list[bool], int]:
    """Which annotated faces were hit, and how many detections are false positives (the README's rule)."""
    pairs = sorted(((iou(d, f), i, j) for i, d in enumerate(found) for j, f in enumerate(photo.faces)), reverse=True)
    used_found, hit = set(), set()
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU:
            break
        if i not in used_found and j not in hit:
            used_found.add(i)
            hit.add(j)
    false = sum(
        1
        for i, d in enumerate(found)
        if i not in used_found and not any(iou(d, g) >= MATCH_IOU or inside(d, g) >= 0.5 for g in photo.ignore)
    )
    return [j in hit for j in range(len(photo.faces))], false


# --- the sets -------------------------------------------------------------------------------------


def decode(path: Path) -> np.ndarray:
    from workers.imaging import decode_image

    return decode_image(path.read_bytes())


def group_photos() -> list[Photo]:
    annotations = json.loads((GROUPS / "annotations.json").read_text())["images"]
    return [
        Photo(
            entry["file"],
            decode(GROUPS / entry["file"]),
            [tuple(face["box"]) for face in entry["faces"]],
            [tuple(box["box"]) for box in entry["ignore"]],
        )
        for entry in annotations
    ]


def scaled(photo: Photo, factor: float, name: str | None = None) -> Photo:
    """The photo resized by `factor`, its boxes with it; faces that fall under 24 px join the ignored."""
    height, width = photo.rgb.shape[:2]
    size = (round(width * factor), round(height * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(photo.rgb, size, interpolation=interpolation)
    faces = [tuple(v * factor for v in box) for box in photo.faces]
    ignore = [tuple(v * factor for v in box) for box in photo.ignore]
    return Photo(
        name or f"{photo.name}@{factor:.2f}",
        rgb,
        [box for box in faces if box[3] >= 24],
        ignore + [box for box in faces if box[3] < 24],
    )


def mosaics(groups: list[Photo]) -> list[Photo]:
    """Four half-size group photos to a 2 x 2 mosaic on grey."""
    halves = [scaled(photo, 0.5) for photo in groups if photo.faces]
    result = []
    for start in range(0, len(halves), 4):
        tiles = halves[start : start + 4]
        cell_w = max(t.rgb.shape[1] for t in tiles)
        cell_h = max(t.rgb.shape[0] for t in tiles)
        canvas = np.full((cell_h * 2, cell_w * 2, 3), 128, np.uint8)
        faces, ignore = [], []
        for index, tile in enumerate(tiles):
            x0, y0 = (index % 2) * cell_w, (index // 2) * cell_h
            canvas[y0 : y0 + tile.rgb.shape[0], x0 : x0 + tile.rgb.shape[1]] = tile.rgb
            faces += [(x + x0, y + y0, w, h) for x, y, w, h in tile.faces]
            ignore += [(x + x0, y + y0, w, h) for x, y, w, h in tile.ignore]
        result.append(Photo(f"mosaic {start // 4 + 1}", canvas, faces, ignore))
    return result


def social_photos() -> list[Photo]:
    return [Photo(name, decode(SOCIAL / f"{name}.jpeg"), [], [], count) for name, count in PERSON_COUNTS.items()]


def phone_photos(groups: list[Photo]) -> Iterator[Photo]:
    """Made one at a time, so a strategy's peak memory is its own, not the set's."""
    with_faces = [photo for photo in groups if photo.faces]
    for i, photo in enumerate(with_faces[:6]):
        yield scaled(photo, PHONE_SIDES[i % len(PHONE_SIDES)] / max(photo.rgb.shape[:2]))


# --- the strategies -------------------------------------------------------------------------------

Detect = Callable[[np.ndarray], tuple[list[Box], float]]  # boxes, and the smallest face looked for


def strategies(quick: bool) -> dict[str, Callable[[], Detect]]:
    """Name -> a factory of the detect function; each loads its own networks (built in the process that times it)."""
    from models.scan import ScanOptions

    never = math.inf  # no fine pass: the coarse pass alone
    mtcnn_steps = {"fine_step": None, "fine_onet_threshold": 0.9}
    options = {
        "today: 480 px copy (mtcnn's driver)": ScanOptions(min_face_px=never),
        "full resolution (mtcnn's driver)": ScanOptions(min_face_px=never, coarse_side=10**9),
        "pyramid from the min face (24 px), one pass": ScanOptions(coarse_side=None, fine_onet_threshold=0.9),
        "coarse 480 px + fine pass everywhere, MTCNN's steps": ScanOptions(fine_gate=None, **mtcnn_steps),
        "coarse + fine where it can pay, MTCNN's steps": ScanOptions(**mtcnn_steps),
        "coarse + fine where it can pay, steps ≤ 2×, fine ONet 0.9": ScanOptions(fine_onet_threshold=0.9),
        "coarse + fine where it can pay, steps ≤ 2×, fine ONet 0.95 (shipped)": ScanOptions(),
        "the same, pixel cap 2 MP": ScanOptions(max_scan_pixels=2_000_000),
    }
    if quick:
        options = {k: v for k, v in options.items() if "MTCNN's steps" not in k and "cap" not in k}
    made: dict[str, Callable[[], Detect]] = {name: (lambda o=o: scan_detect(o)) for name, o in options.items()}
    made["overlapping 640 px tiles (fine, MTCNN's steps) + coarse 480 px"] = lambda: tiled_detect(
        ScanOptions(fine_gate=None, **mtcnn_steps), 640
    )
    return made


def scanner():
    from models.detector import load_scanner

    return load_scanner()


def as_boxes(boxes: np.ndarray) -> list[Box]:
    return [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in boxes]


def scan_detect(options) -> Detect:
    engine = scanner()

    def detect(rgb: np.ndarray) -> tuple[list[Box], float]:
        result = engine.scan(rgb, options)
        return as_boxes(result.boxes), result.min_face_px

    return detect


def tiled_detect(options, tile: int) -> Detect:
    """The coarse pass on the whole image, the fine levels on overlapping tiles of the full image, merged."""
    from models.scan import coarse_min_face, fine_pass, merge, nms

    engine = scanner()
    coarse_only = replace(options, min_face_px=math.inf)

    def detect(rgb: np.ndarray) -> tuple[list[Box], float]:
        coarse = engine.scan(rgb, coarse_only)
        height, width = rgb.shape[:2]
        fine, smallest, _capped = fine_pass(height, width, options)
        if fine is None:
            return as_boxes(coarse.boxes), coarse.min_face_px
        overlap = math.ceil(2 * (coarse_min_face(height, width, options) or options.min_face_px))
        step = max(tile - overlap, 1)
        boxes, scores = [], []
        for top in range(0, max(height - overlap, 1), step):
            for left in range(0, max(width - overlap, 1), step):
                found, confidence = engine.run_pass(
                    rgb[top : top + tile, left : left + tile], fine.scales, options, options.fine_onet_threshold
                )
                boxes.append(found + np.array([left, top, left, top], np.float32))
                scores.append(confidence)
        small, small_scores = np.concatenate(boxes), np.concatenate(scores)
        kept = nms(small, small_scores, 0.5)
        merged, _ = merge(coarse.boxes, coarse.scores, small[kept], small_scores[kept], options.merge_overlap)
        return as_boxes(merged), smallest

    return detect


# --- running --------------------------------------------------------------------------------------


@dataclass
class Result:
    recall_big: tuple[int, int] = (0, 0)
    recall_small: tuple[int, int] = (0, 0)
    false_positives: int = 0
    negatives_false: int = 0
    count_errors: int = 0  # social: photos whose face count is not the person's
    found: int = 0
    seconds: list[float] | None = None  # per round: total over the set
    slowest: float = 0.0
    smallest_face: float = 0.0


def evaluate(detect: Detect, photos: list[Photo]) -> Result:
    result = Result(seconds=[])
    big, big_total, small, small_total = 0, 0, 0, 0
    for photo in photos:
        found, smallest = detect(photo.rgb)
        result.found += len(found)
        result.smallest_face = max(result.smallest_face, smallest)
        if photo.person_count is not None:
            result.count_errors += len(found) != photo.person_count
            result.false_positives += max(0, len(found) - photo.person_count)
            continue
        hits, false = score(found, photo)
        for face, was_hit in zip(photo.faces, hits, strict=True):
            if face[3] >= SMALL_PX:
                big, big_total = big + was_hit, big_total + 1
            else:
                small, small_total = small + was_hit, small_total + 1
        result.false_positives += false
        result.negatives_false += false if not photo.faces else 0
    result.recall_big, result.recall_small = (big, big_total), (small, small_total)
    return result


def timed(detect: Detect, photos: list[Photo]) -> tuple[float, float]:
    """CPU seconds (all threads of this process) for the whole set and for its slowest photo.

    CPU time, not wall time: on a machine shared with other jobs it is what a strategy costs,
    while wall time also counts the waits for a core.
    """
    total, slowest = 0.0, 0.0
    for photo in photos:
        started = time.process_time()
        detect(photo.rgb)
        spent = time.process_time() - started
        total, slowest = total + spent, max(slowest, spent)
    return total, slowest


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phone_child(name: str, quick: bool, queue) -> None:
    """In a fresh process: one strategy's peak RSS before and after the phone-size photos, and its times."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    limit_threads(1)
    groups = group_photos()
    detect = strategies(quick)[name]()
    detect(groups[0].rgb)
    before = rss_mb()
    times, results = [], []
    for photo in phone_photos(groups):
        times.append(timed(detect, [photo])[0])
        results.append(evaluate(detect, [photo]))
    queue.put((before, rss_mb(), times, combined(results)))


def combined(results: list[Result]) -> Result:
    """One result for photos evaluated one by one."""
    total = Result(seconds=[])
    for r in results:
        total.recall_big = (total.recall_big[0] + r.recall_big[0], total.recall_big[1] + r.recall_big[1])
        total.recall_small = (total.recall_small[0] + r.recall_small[0], total.recall_small[1] + r.recall_small[1])
        total.false_positives += r.false_positives
        total.found += r.found
        total.smallest_face = max(total.smallest_face, r.smallest_face)
    return total


def limit_threads(threads: int) -> None:
    """TensorFlow threads, as a worker process gets them (one per process on this 2-core machine)."""
    from models.hardware import limit_threads as limit

    limit(threads)


def fraction(pair: tuple[int, int]) -> str:
    return f"{pair[0] / pair[1]:.3f} ({pair[0]}/{pair[1]})" if pair[1] else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 round, fewer strategies")
    parser.add_argument("--no-phone", action="store_true", help="skip the phone-size photos")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (a worker's, by default)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    limit_threads(args.threads)
    rounds = 1 if args.quick else args.rounds
    groups = group_photos()
    sets = {"group": groups, "mosaic": mosaics(groups), "social": social_photos()}
    detectors = {name: factory() for name, factory in strategies(args.quick).items()}
    results: dict[str, dict[str, Result]] = {name: {} for name in detectors}
    for name, detect in detectors.items():  # warm-up, and what each finds
        for set_name, photos in sets.items():
            results[name][set_name] = evaluate(detect, photos)
    for _ in range(rounds):
        for set_name, photos in sets.items():
            for name, detect in detectors.items():
                total, slowest = timed(detect, photos)
                results[name][set_name].seconds.append(total)
                results[name][set_name].slowest = max(results[name][set_name].slowest, slowest)

    sizes = {k: f"{len(v)} photos, {sum(max(p.rgb.shape[:2]) for p in v) // len(v)} px" for k, v in sets.items()}
    print(f"{os.cpu_count()} cpus, {args.threads} TensorFlow thread(s), median of {rounds} rounds; sets: {sizes}\n")
    full = next(name for name in detectors if name.startswith("full resolution"))
    for set_name in ("group", "mosaic"):
        base = statistics.median(results[full][set_name].seconds)
        print(f"### {set_name}\n")
        print(
            "| strategy | recall ≥ 48 px | recall 24–48 px | false positives (on negatives) | CPU s/image | slowest "
            "| × full resolution |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name in detectors:
            r = results[name][set_name]
            spent = statistics.median(r.seconds)
            print(
                f"| {name} | {fraction(r.recall_big)} | {fraction(r.recall_small)} | {r.false_positives} "
                f"({r.negatives_false}) | {spent / len(sets[set_name]):.3f} | {r.slowest:.2f} | {spent / base:.2f} |"
            )
        print()
    print("### social (11 example photos, 13 faces a person counts)\n")
    print("| strategy | faces found | photos with another count | CPU s/image | × full resolution |")
    print("| --- | --- | --- | --- | --- |")
    base = statistics.median(results[full]["social"].seconds)
    for name in detectors:
        r = results[name]["social"]
        spent = statistics.median(r.seconds)
        print(f"| {name} | {r.found} | {r.count_errors} | {spent / 11:.3f} | {spent / base:.2f} |")
    print(f"\ngoals on `group`: {TARGETS}; time ≤ 0.4 × full resolution; social: exactly 13 faces")

    if args.no_phone:
        return
    print("\n### phone-size photos (6 group photos scaled up to 3000–4000 px), each strategy in a fresh process\n")
    print(
        "| strategy | recall ≥ 48 px | false positives | CPU s/image (mean) | slowest | peak RSS after warm-up → after "
        "| smallest face looked for |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    context = multiprocessing.get_context("spawn")
    for name in detectors:
        if name.startswith("full resolution") and args.quick:
            continue
        queue = context.Queue()
        child = context.Process(target=phone_child, args=(name, args.quick, queue))
        child.start()
        before, after, times, r = queue.get()
        child.join()
        print(
            f"| {name} | {fraction(r.recall_big)} | {r.false_positives} | {statistics.mean(times):.2f} | "
            f"{max(times):.2f} | {before:.0f} → {after:.0f} MB | {r.smallest_face:.0f} px |"
        )


if __name__ == "__main__":
    main()
