"""MTCNN's three networks (weights from the `mtcnn` package) driven by a scan this project plans.

`mtcnn` 1.0's own driver scans a pyramid that starts at a fixed size in the image it is
given, resizes float copies with TensorFlow, and suppresses overlapping boxes with an N x N
IoU matrix: on a phone photo that is thousands of proposals and gigabytes. Here a scan is
one or two passes of the three stages, each over a pyramid this module plans:

- **coarse**: a copy at most `coarse_side` pixels long, pyramid from a 20 px face in the
  copy (the detector as it stood, which finds faces down to about 4 % of the longer side);
- **fine**: the full image, only the pyramid levels for faces from `min_face_px` original
  pixels up to where the coarse pass starts, and only where it can pay: not when every face
  the coarse pass found is far above its own smallest size (a portrait, a close-up), as
  crowds and rows of people shrink gradually into the distance;
- the pixels PNet scans in the fine pass have a ceiling, `max_scan_pixels`: above it the
  fine pyramid starts smaller and the scan says which face size it then looked for.

Each level is resized with OpenCV from the uint8 image and scanned in bands of rows, so
memory stays bounded however large the image; proposals are suppressed greedily (OpenCV's
NMS, no N x N matrix) and capped. The stages follow `mtcnn` 1.0 (the thresholds and box
regressions the shipped detector was calibrated with): PNet proposals at 0.6, RNet 0.7,
ONet 0.8, squared boxes between stages, ONet's NMS on the smaller box's area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

PNET_WINDOW = 12  # PNet looks at 12 x 12 windows ...
PNET_STRIDE = 2  # ... every 2 pixels of the level it scans
BAND_ROWS = 512  # rows of a level PNet scans at once (plus the window's overlap): bounds its memory
NO_BOXES = np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class ScanOptions:
    """How an image is scanned. Sizes are original pixels unless they say otherwise."""

    min_face_px: float = 24.0  # the smallest face to look for
    coarse_side: int | None = 480  # the coarse pass scans a copy at most this long; None: no coarse pass
    coarse_min_face: float = 20.0  # the smallest face the coarse pass looks for, in the copy's pixels
    fine_gate: float | None = 2.0  # skip the fine pass when every coarse face is this many times the coarse minimum
    scale_factor: float = 0.709  # between pyramid levels (MTCNN's): the one-pass pyramid's, and the coarse pass's
    fine_step: float | None = 0.5  # the fine levels spread evenly up to the coarse pass, at most this far apart
    max_scan_pixels: int = 8_000_000  # PNet's pixels over the fine pyramid
    pnet_threshold: float = 0.6
    rnet_threshold: float = 0.7
    onet_threshold: float = 0.8
    # Faces only the fine pass finds: it searches several times the area for small things, so more
    # non-faces get a chance; at 0.9 a shoe scored 0.949 on a group photo (bench/detection_recall.py).
    fine_onet_threshold: float = 0.95
    max_proposals: int = 4000  # PNet boxes that go on to RNet in one pass (the most confident)
    merge_overlap: float = 0.5  # a fine box this much inside a coarse one (of the smaller's area) is the same face


@dataclass(frozen=True)
class Pass:
    """One run of the three stages: a pyramid over the image at `image_scale` of the original."""

    image_scale: float
    scales: tuple[float, ...]  # relative to the scanned image

    def pixels(self, height: int, width: int) -> int:
        h, w = math.ceil(height * self.image_scale), math.ceil(width * self.image_scale)
        return sum(math.ceil(h * s) * math.ceil(w * s) for s in self.scales)


@dataclass
class Scan:
    """What a scan found and how it looked: the faces, and the smallest face size it covered."""

    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in original pixels
    scores: np.ndarray  # ONet confidence
    min_face_px: float  # the smallest face looked for (above the asked size when capped or gated)
    capped: bool = False  # the pixel ceiling made the fine pyramid start smaller than asked
    fine: bool = False  # the fine pass ran
    scanned_pixels: int = 0
    passes: list[Pass] = field(default_factory=list)


def pyramid(height: int, width: int, first: float, factor: float, smallest_face: float | None = None) -> list[float]:
    """Scales from `first` down while a level holds a PNet window, stopping before faces reach `smallest_face`.

    A level at scale s finds faces of about 12 / s pixels; `smallest_face` is where another pass
    already looks, so this one stops at the level below it.
    """
    scales, scale = [], first
    while min(height, width) * scale >= PNET_WINDOW:
        if smallest_face is not None and PNET_WINDOW / scale >= smallest_face:
            break
        scales.append(scale)
        scale *= factor
    return scales


def fine_levels(height: int, width: int, first: float, upto: float | None, options: ScanOptions) -> list[float]:
    """The fine pass's scales: from `first` to just under where the coarse pass looks (`upto`), evenly
    spaced in log scale and at most `fine_step` apart; MTCNN's steps without a coarse pass or a `fine_step`."""
    if upto is None or options.fine_step is None:
        return pyramid(height, width, first, options.scale_factor, upto)
    span = upto * first / PNET_WINDOW  # the largest fine face over the smallest
    if span <= 1:
        return []
    levels = math.ceil(math.log(span) / -math.log(options.fine_step) - 1e-9)
    factor = span ** (-1 / levels)
    return [s for s in (first * factor**k for k in range(levels)) if min(height, width) * s >= PNET_WINDOW]


def coarse_pass(height: int, width: int, options: ScanOptions) -> Pass | None:
    if options.coarse_side is None:
        return None
    image_scale = min(1.0, options.coarse_side / max(height, width))
    h, w = math.ceil(height * image_scale), math.ceil(width * image_scale)
    return Pass(image_scale, tuple(pyramid(h, w, PNET_WINDOW / options.coarse_min_face, options.scale_factor)))


def coarse_min_face(height: int, width: int, options: ScanOptions) -> float | None:
    """The smallest face (original pixels) the coarse pass looks for; None without one."""
    if options.coarse_side is None:
        return None
    return options.coarse_min_face / min(1.0, options.coarse_side / max(height, width))


def fine_pass(height: int, width: int, options: ScanOptions) -> tuple[Pass | None, float, bool]:
    """The full image's levels from `min_face_px` up to the coarse pass's smallest face, under the pixel
    ceiling: (the pass or None when the coarse pass already covers it, the smallest face looked for, capped)."""
    upto = coarse_min_face(height, width, options)
    first = min(1.0, PNET_WINDOW / options.min_face_px)  # upscaling invents no detail: no faces under 12 px
    planned = Pass(1.0, tuple(fine_levels(height, width, first, upto, options)))
    capped = planned.pixels(height, width) > options.max_scan_pixels
    while planned.scales and planned.pixels(height, width) > options.max_scan_pixels:
        first *= 0.95  # a pyramid's pixels go with its first scale squared: a few steps at most
        planned = Pass(1.0, tuple(fine_levels(height, width, first, upto, options)))
    if not planned.scales:
        return None, upto if upto is not None else (PNET_WINDOW / first if first else math.inf), capped
    return planned, PNET_WINDOW / first, capped


def normalize(pixels: np.ndarray) -> np.ndarray:
    """MTCNN's input range: (x - 127.5) / 128."""
    return (pixels.astype(np.float32) - 127.5) / 128.0


def overlap_over_smaller(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    w = np.maximum(0.0, np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]))
    h = np.maximum(0.0, np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return w * h / np.maximum(np.minimum(area, areas), 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, over_smaller: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first; boxes are (N, 4) x1, y1, x2, y2.

    `over_smaller`: overlap measured on the smaller box's area (MTCNN's last stage), else IoU.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    if not over_smaller:
        rects = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
        kept = cv2.dnn.NMSBoxes(rects.astype(np.float64).tolist(), scores.astype(float).tolist(), 0.0, threshold)
        return np.asarray(kept, dtype=int).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        keep.append(order[0])
        order = order[1:][overlap_over_smaller(boxes[order[0]], boxes[order[1:]]) <= threshold]
    return np.asarray(keep, dtype=int)


def square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square of its longer side around its centre."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w / 2 - side / 2
    boxes[:, 1] += h / 2 - side / 2
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """RNet's and ONet's box regression, as `mtcnn` applies it (offsets in units of the box size + 1)."""
    sizes = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, 1)
    return boxes + offsets * sizes


class MtcnnScanner:
    """The three traced MTCNN stages and the scan around them; one per process (the networks load once).

    The coarse pass is `mtcnn`'s own driver on the small copy, exactly the detector as it stood
    (its detections on the example photos are the ones a person counts, and a marginal face
    such as the one lying down in instagram/3 depends on every detail of its resizing); the
    fine pass is this module's driver, which scales to large images.
    """

    def __init__(self, mtcnn) -> None:
        self.mtcnn = mtcnn
        self.pnet, self.rnet, self.onet = (stage._model for stage in mtcnn.stages)

    def coarse_faces(self, copy: np.ndarray, options: ScanOptions) -> tuple[np.ndarray, np.ndarray]:
        """`mtcnn`'s driver on the copy: boxes (x1, y1, x2, y2, the copy's pixels) and ONet confidences."""
        if min(copy.shape[:2]) < options.coarse_min_face:
            return NO_BOXES, np.zeros(0, np.float32)
        found = self.mtcnn.detect_faces(
            copy, min_face_size=options.coarse_min_face, threshold_onet=options.onet_threshold
        )
        if not found:
            return NO_BOXES, np.zeros(0, np.float32)
        boxes = np.array([face["box"] for face in found], np.float32)
        boxes[:, 2:] += boxes[:, :2]
        return boxes, np.array([face["confidence"] for face in found], np.float32)

    def proposals(self, level: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """PNet's boxes (the level's pixels, x1 y1 x2 y2) and scores, the level scanned in bands of rows.

        A band of BAND_ROWS + 10 rows yields BAND_ROWS / 2 rows of windows: the bands' windows tile
        the level's exactly, none twice, none missing.
        """
        boxes, scores = [], []
        for top in range(0, max(1, level.shape[0] - PNET_WINDOW + PNET_STRIDE), BAND_ROWS):
            band = level[top : top + BAND_ROWS + PNET_WINDOW - PNET_STRIDE]
            if band.shape[0] < PNET_WINDOW:
                break
            offsets, probs = (t.numpy()[0] for t in self.pnet(normalize(band)[None]))
            ys, xs = np.nonzero(probs[:, :, 1] > threshold)
            if ys.size:
                corner = np.stack([xs, ys + top // PNET_STRIDE], 1).astype(np.float32) * PNET_STRIDE
                cells = np.concatenate([corner, corner + PNET_WINDOW], 1)
                boxes.append(cells + offsets[ys, xs] * PNET_WINDOW)
                scores.append(probs[ys, xs, 1])
        if not boxes:
            return NO_BOXES, np.zeros(0, np.float32)
        return np.concatenate(boxes), np.concatenate(scores)

    @staticmethod
    def patches(image, boxes: np.ndarray, size: int):
        """Each box cut from the (1, H, W, 3) image tensor and resized to `size`, normalised; outside reads grey."""
        import tensorflow as tf

        height, width = image.shape[1:3]
        corners = boxes[:, [1, 0, 3, 2]] / np.array([height, width, height, width], np.float32)
        crops = tf.image.crop_and_resize(
            image, corners, np.zeros(len(boxes), np.int32), (size, size), extrapolation_value=127.5
        )
        return (crops - 127.5) / 128.0

    def run_pass(
        self, rgb: np.ndarray, scales: tuple[float, ...], options: ScanOptions, onet_threshold: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The three stages over `rgb` at `scales`: face boxes in `rgb`'s pixels and their ONet confidences."""
        import tensorflow as tf

        height, width = rgb.shape[:2]
        level, found_boxes, found_scores = rgb, [], []
        for scale in scales:
            size = (math.ceil(width * scale), math.ceil(height * scale))
            if size != (level.shape[1], level.shape[0]):
                level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)  # each level from the one above
            boxes, scores = self.proposals(level, options.pnet_threshold)
            kept = nms(boxes, scores, 0.5)
            found_boxes.append(boxes[kept] / scale)
            found_scores.append(scores[kept])
        boxes = np.concatenate(found_boxes) if found_boxes else NO_BOXES
        scores = np.concatenate(found_scores) if found_scores else np.zeros(0, np.float32)
        kept = nms(boxes, scores, 0.7)[: options.max_proposals]
        if not len(kept):
            return NO_BOXES, np.zeros(0, np.float32)
        image = tf.constant(rgb[None])
        boxes = square(boxes[kept])
        for network, size, threshold in ((self.rnet, 24, options.rnet_threshold), (self.onet, 48, onet_threshold)):
            offsets, *_, probs = (t.numpy() for t in network(self.patches(image, boxes, size)))
            passed = probs[:, 1] > threshold
            boxes, scores = refine(boxes[passed], offsets[passed]), probs[passed, 1]
            last = network is self.onet
            kept = nms(boxes, scores, 0.7, over_smaller=last)
            boxes, scores = boxes[kept], scores[kept]
            if not len(boxes):
                break
            if not last:
                boxes = square(boxes)
        return boxes, scores

    def scan(self, rgb: np.ndarray, options: ScanOptions) -> Scan:
        """Coarse pass, then the fine pass where it can pay; boxes in original pixels."""
        height, width = rgb.shape[:2]
        boxes, scores, passes = NO_BOXES, np.zeros(0, np.float32), []
        coarse = coarse_pass(height, width, options)
        coarse_min = coarse_min_face(height, width, options)
        if coarse is not None:
            copy = rgb
            if coarse.image_scale < 1.0:
                size = (max(1, round(width * coarse.image_scale)), max(1, round(height * coarse.image_scale)))
                copy = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            boxes, scores = self.coarse_faces(copy, options)
            boxes = boxes / coarse.image_scale
            passes.append(coarse)
        fine, fine_min, capped = fine_pass(height, width, options)
        min_face = fine_min
        if fine is not None and not self.fine_skipped(boxes, coarse_min, options):
            small, small_scores = self.run_pass(rgb, fine.scales, options, options.fine_onet_threshold)
            boxes, scores = merge(boxes, scores, small, small_scores, options.merge_overlap)
            passes.append(fine)
        elif fine is not None:
            min_face, capped = coarse_min, False
        return Scan(
            boxes=boxes,
            scores=scores,
            min_face_px=min_face,
            capped=capped,
            fine=len(passes) > (coarse is not None),
            scanned_pixels=sum(p.pixels(height, width) for p in passes),
            passes=passes,
        )

    @staticmethod
    def fine_skipped(coarse_boxes: np.ndarray, coarse_min: float | None, options: ScanOptions) -> bool:
        """Whether the coarse pass says the fine pass cannot pay: it found faces, and all far above its minimum."""
        if options.fine_gate is None or coarse_min is None or not len(coarse_boxes):
            return False
        sides = np.minimum(coarse_boxes[:, 2] - coarse_boxes[:, 0], coarse_boxes[:, 3] - coarse_boxes[:, 1])
        return bool(sides.min() >= options.fine_gate * coarse_min)


def merge(
    boxes: np.ndarray, scores: np.ndarray, more: np.ndarray, more_scores: np.ndarray, overlap: float
) -> tuple[np.ndarray, np.ndarray]:
    """The coarse faces plus the fine faces that are not one of them (mostly inside one: the same face)."""
    if not len(boxes) or not len(more):
        return (np.concatenate([boxes, more]), np.concatenate([scores, more_scores]))
    new = [i for i, box in enumerate(more) if overlap_over_smaller(box, boxes).max() <= overlap]
    return np.concatenate([boxes, more[new]]), np.concatenate([scores, more_scores[new]])
