"""The detector's scan plan and the analyzer's bookkeeping, without the networks (unit level)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.analyzer import FaceAnalyzer, largest, reading_order
from models.detector import Detection, Detections
from models.scan import PNET_WINDOW, MtcnnScanner, ScanOptions, coarse_min_face, fine_pass, merge, nms


def faces_of(scales: tuple[float, ...]) -> list[float]:
    return [PNET_WINDOW / s for s in scales]


def test_the_fine_pass_starts_at_the_minimum_face_whatever_the_image_size() -> None:
    for height, width in [(768, 1024), (1280, 1920), (3000, 4000)]:
        fine, smallest, capped = fine_pass(height, width, ScanOptions())
        sizes = faces_of(fine.scales)
        assert sizes[0] == pytest.approx(24) and smallest == pytest.approx(24) and not capped
        upto = coarse_min_face(height, width, ScanOptions())
        assert sizes[-1] < upto  # the coarse pass looks from there up
        steps = [b / a for a, b in zip([*sizes, upto], [*sizes, upto][1:], strict=False)]
        assert max(steps) <= 2 + 1e-9  # levels at most twice apart, up to the coarse pass


def test_a_small_image_needs_no_fine_pass() -> None:
    fine, smallest, capped = fine_pass(375, 500, ScanOptions())
    assert fine is None and smallest == pytest.approx(20 * 500 / 480) and not capped  # the coarse pass reaches 21 px


def test_the_pixel_ceiling_binds_on_huge_images_and_says_how_far_down_it_looked() -> None:
    options = ScanOptions(max_scan_pixels=8_000_000)
    fine, smallest, capped = fine_pass(6000, 8000, options)
    assert capped and smallest > 24 and fine.pixels(6000, 8000) <= options.max_scan_pixels
    assert fine.scales[0] == pytest.approx(PNET_WINDOW / smallest)
    fine, _, capped = fine_pass(3000, 4000, options)
    assert not capped and fine.pixels(3000, 4000) <= options.max_scan_pixels  # a 12 MP phone photo fits


def test_greedy_nms_keeps_the_best_of_each_cluster() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [2, 2, 4, 4]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.8], np.float32)
    assert sorted(nms(boxes, scores, 0.5).tolist()) == [1, 2, 3]  # the small one overlaps little by IoU
    assert sorted(nms(boxes, scores, 0.7, over_smaller=True).tolist()) == [1, 2]  # but lies inside the best


def test_fine_faces_inside_a_coarse_face_are_the_same_face() -> None:
    coarse, fine = np.array([[0, 0, 100, 100]], np.float32), np.array([[10, 10, 40, 40], [200, 0, 230, 30]], np.float32)
    boxes, scores = merge(coarse, np.ones(1), fine, np.ones(2), 0.5)
    assert boxes.tolist() == [[0, 0, 100, 100], [200, 0, 230, 30]] and len(scores) == 2


def test_the_fine_pass_is_skipped_only_when_every_coarse_face_is_large() -> None:
    options = ScanOptions()
    big, small = np.array([[0, 0, 100, 100]]), np.array([[0, 0, 100, 100], [0, 0, 50, 50]])
    assert MtcnnScanner.fine_skipped(big, 43.0, options)
    assert not MtcnnScanner.fine_skipped(small, 43.0, options)
    assert not MtcnnScanner.fine_skipped(np.zeros((0, 4)), 43.0, options)  # nothing found: a crowd far away?
    assert not MtcnnScanner.fine_skipped(big, 43.0, ScanOptions(fine_gate=None))


def test_reading_order_and_the_cap_keep_the_largest_faces() -> None:
    row_one = [Detection((300, 10, 40, 40), 0.9), Detection((10, 12, 40, 40), 0.9)]
    row_two = [Detection((150, 200, 30, 30), 0.99), Detection((20, 205, 20, 20), 0.95)]
    ordered = reading_order(row_two + row_one)
    assert [d.box[0] for d in ordered] == [10, 300, 20, 150]
    assert [d.box[2] for d in largest(ordered, 3)] == [40, 40, 30]


class FakeDetector:
    def __init__(self, count: int) -> None:
        self.found = Detections([Detection((i * 30, 0, 20 + i, 20 + i), 0.99) for i in range(count)], 24, False)

    def scan(self, rgb: np.ndarray) -> Detections:
        return self.found


class FakeClassifier:
    """Confident on even faces, unsure on odd ones; `abstain_below` as the model card gives it."""

    abstain_below = 0.5

    def predict(self, faces: np.ndarray) -> np.ndarray:
        probs = np.full((len(faces), 7), 0.3 / 6, np.float32)
        probs[:, 3] = 0.7
        probs[1::2] = 1 / 7
        return probs


def test_the_analyzer_caps_faces_and_flags_abstentions() -> None:
    analyzer = FaceAnalyzer(FakeDetector(5), FakeClassifier(), max_faces=3)
    result = analyzer.analyze_image(np.zeros((60, 200, 3), np.uint8))
    assert result.faces_beyond_cap == 2 and len(result.faces) == 3
    assert [face.size_px for face in result.faces] == [22, 23, 24]  # the largest three, left to right
    assert [face.uncertain for face in result.faces] == [False, True, False]
    del FakeClassifier.abstain_below  # no threshold: nothing is uncertain
    try:
        assert not any(face.uncertain for face in analyzer.analyze(np.zeros((60, 200, 3), np.uint8)))
    finally:
        FakeClassifier.abstain_below = 0.5
    assert math.isinf(ScanOptions(min_face_px=math.inf).min_face_px)
