"""Evaluation metrics on hand-made predictions, and `socialfer evaluate` on the committed model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from core.vocabulary import EMOTIONS
from models.evaluate import confusion_png, effective_row_faces, metrics
from models.weights import DEFAULT_MODEL_PATH, model_card_path
from socialfer.cli import main

ANGRY, DISGUST, HAPPY = EMOTIONS.index("angry"), EMOTIONS.index("disgust"), EMOTIONS.index("happy")


def one_hot(indices: list[int], second: list[int] | None = None) -> np.ndarray:
    probs = np.zeros((len(indices), len(EMOTIONS)))
    probs[np.arange(len(indices)), indices] = 0.7
    if second is not None:
        probs[np.arange(len(indices)), second] += 0.2
    return probs


def test_metrics_on_known_predictions() -> None:
    labels = np.array([ANGRY, ANGRY, HAPPY, HAPPY, DISGUST])
    probs = one_hot([ANGRY, HAPPY, HAPPY, HAPPY, DISGUST], second=[HAPPY, ANGRY, ANGRY, ANGRY, ANGRY])
    result = metrics(labels, probs)
    assert result["n"] == 5 and result["accuracy"] == pytest.approx(4 / 5)
    assert result["per_class"]["angry"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert result["per_class"]["happy"]["precision"] == pytest.approx(2 / 3)
    assert result["confusion_matrix"][ANGRY][HAPPY] == 1
    # Without disgust: the disgust image is dropped, so 3 of the 4 remaining are right.
    assert result["accuracy_without_disgust"] == pytest.approx(3 / 4)
    f1 = {"angry": 2 / 3, "disgust": 1.0, "happy": 0.8}
    assert result["macro_f1"] == pytest.approx(sum(f1.values()) / 7)


def test_masking_disgust_moves_its_votes_to_the_next_class() -> None:
    labels = np.array([ANGRY])
    probs = one_hot([DISGUST], second=[ANGRY])
    assert metrics(labels, probs)["accuracy"] == 0.0
    assert metrics(labels, probs)["accuracy_without_disgust"] == 1.0


def test_a_row_counted_from_two_peoples_photos_is_worth_what_two_people_say() -> None:
    """40 angry faces, half read angry and half neutral: from 40 people that is 40 faces' worth; from two
    people whose 20 photos each got one answer, it says what one pair of draws says (1 face's worth). The
    independent case is 39, not 40: the cluster-robust variance's m / (m - 1) small-sample factor."""
    labels = np.full(40, ANGRY)
    predicted = np.r_[np.full(20, ANGRY), np.full(20, EMOTIONS.index("neutral"))]
    independent = effective_row_faces(labels, predicted, np.arange(40).astype(str))
    two_people = effective_row_faces(labels, predicted, np.r_[np.full(20, "a"), np.full(20, "b")])
    assert independent[ANGRY] == pytest.approx(39) and two_people[ANGRY] == pytest.approx(1)
    assert independent[HAPPY] == two_people[HAPPY] == 0.0  # no happy face: an empty row


def test_confusion_png_is_written(tmp_path: Path) -> None:
    confusion_png(np.eye(7, dtype=int) * 10, tmp_path / "cm.png", "title")
    image = cv2.imread(str(tmp_path / "cm.png"))
    assert image is not None and image.shape[0] > 400


def test_evaluate_command_prints_json(shared_data: Path, tmp_path: Path) -> None:
    png = tmp_path / "cm.png"
    args = [
        "evaluate",
        "--data",
        str(shared_data / "fer2013.npz"),
        "--split",
        "PrivateTest",
        "--json",
        "--confusion-png",
        str(png),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["split"] == "PrivateTest" and report["n"] == 3589
    assert {"accuracy", "accuracy_without_disgust", "macro_f1"} <= set(report)
    assert report["accuracy"] >= 0.60 and png.exists()
    assert report["profile"] == "fer2013"  # FER2013's faces with the card's FER2013 calibration
    unknown = CliRunner().invoke(main, [*args, "--profile", "cartoons"])
    assert unknown.exit_code == 1 and "no calibration profile 'cartoons'" in unknown.output


def test_calibrate_command_refits_the_profiles_of_a_copy_of_the_model(shared_data: Path, tmp_path: Path) -> None:
    """`socialfer calibrate` rewrites a card's calibration from the data: here of a copy whose card lost it."""
    model = tmp_path / "copy.keras"
    shutil.copyfile(DEFAULT_MODEL_PATH, model)
    card = json.loads(model_card_path(DEFAULT_MODEL_PATH).read_text())
    shipped = card["calibration"]["profiles"]
    card["calibration"] = {"temperature": 1.0}
    model_card_path(model).write_text(json.dumps(card))
    args = ["calibrate", "--data", str(shared_data / "fer2013.npz"), "--model", str(model)]
    args += ["--wild", str(shared_data / "faces_in_the_wild" / "muxspace_dev.npz")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    refitted = json.loads(model_card_path(model).read_text())
    assert refitted["calibration"]["default_profile"] == "photos"
    for name, profile in refitted["calibration"]["profiles"].items():
        assert profile["temperature"] == pytest.approx(shipped[name]["temperature"], rel=0.02)
        assert profile["abstain_below"] == pytest.approx(shipped[name]["abstain_below"], abs=0.011)
    assert refitted["sets"]["wild_heldout"]["ece_after"] <= 0.03 < refitted["sets"]["wild_heldout"]["ece_before"]
    # The matrices come from the same predictions the profiles were fitted on (not a second pass): the shipped
    # ones again, up to the few faces another CPU or precision moves.
    for name in ("fer2013_publictest", "wild_calibration", "wild_heldout"):
        moved = np.abs(np.array(refitted["confusion_matrices"][name]) - np.array(card["confusion_matrices"][name]))
        assert moved.sum() <= 40, (name, moved.sum())
    assert "photos:" in result.output and "fer2013:" in result.output
