"""Fine-tuning: what it trains on, the degradation it adds, and a tiny run from start to card.

The data-assembly tests use synthetic files whose pixel values name the split or fold a face
came from, so any face of PublicTest, PrivateTest or the wild folds 0 and 4 in the training
set is caught; one test repeats the check on the shared data itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.architecture import build_emotion_cnn
from models.classifier import EmotionClassifier
from models.ensemble import build_ensemble, member_name
from models.finetune import (
    WILD_DOMAIN,
    FinetuneConfig,
    degrade,
    finetune,
    mixed_training_set,
    shrink_and_restore,
    training_stream,
    wild_class_shares,
)
from models.labels import EMOTIONS
from models.resolution import shrink_and_restore as crop_like_shrink
from models.ship import selection_score, ship_ensemble, ship_finetuned
from models.weights import model_card_path
from models.wild import CALIBRATION_FOLD, HELDOUT_FOLD, identity_fold, load_wild

SPLIT_PIXEL = {"Training": 10, "PublicTest": 20, "PrivateTest": 30}
FOLD_PIXEL = 100  # + the fold


def identities_per_fold(count: int) -> list[str]:
    """`count` person names in each of the five folds."""
    names: dict[int, list[str]] = {fold: [] for fold in range(5)}
    k = 0
    while min(len(v) for v in names.values()) < count:
        name = f"person_{k}"
        if len(names[identity_fold(name)]) < count:
            names[identity_fold(name)].append(name)
        k += 1
    return [name for fold in range(5) for name in names[fold]]


def synthetic_data(directory: Path, per_split: int = 40, per_identity: int = 4) -> tuple[Path, Path]:
    """A FER2013-like and a wild-like NPZ; each face's pixels are its split's or fold's marker value."""
    rng = np.random.default_rng(0)
    usage = np.repeat([0, 1, 2], per_split).astype(np.uint8)
    markers = np.array([SPLIT_PIXEL[name] for name in SPLIT_PIXEL])[usage]
    fer = directory / "fer2013.npz"
    np.savez(
        fer,
        images=(np.ones((len(usage), 48, 48)) * markers[:, None, None]).astype(np.uint8),
        labels=rng.integers(0, 7, len(usage)).astype(np.uint8),
        usage=usage,
        ids=np.arange(len(usage)),
        classes=np.array(EMOTIONS),
        usage_names=np.array(list(SPLIT_PIXEL)),
    )
    identity = np.repeat(identities_per_fold(3), per_identity)
    folds = np.array([identity_fold(name) for name in identity])
    wild = directory / "wild.npz"
    np.savez(
        wild,
        images=(np.ones((len(identity), 48, 48)) * (FOLD_PIXEL + folds)[:, None, None]).astype(np.uint8),
        labels=np.array(EMOTIONS)[rng.choice([3, 6, 0], len(identity))],
        identity=identity,
    )
    return fer, wild


def test_fine_tuning_data_holds_only_fer_training_and_the_wild_training_folds(tmp_path: Path) -> None:
    fer, wild = synthetic_data(tmp_path)
    mixed = mixed_training_set(fer, wild)
    markers = set(np.unique(mixed.images[:, 0, 0]).tolist())
    assert markers == {SPLIT_PIXEL["Training"], FOLD_PIXEL + 1, FOLD_PIXEL + 2, FOLD_PIXEL + 3}
    assert len(mixed) == 40 + 3 * 3 * 4
    wild_part = mixed.domain == WILD_DOMAIN
    assert {identity_fold(name) for name in mixed.identity[wild_part]} == {1, 2, 3}
    assert (
        mixed.images[wild_part, 0, 0] == FOLD_PIXEL + np.array([identity_fold(i) for i in mixed.identity[wild_part]])
    ).all()


def test_fine_tuning_data_on_the_shared_set_excludes_heldout_and_calibration_people(shared_data: Path) -> None:
    wild_path = shared_data / "faces_in_the_wild" / "muxspace_dev.npz"
    mixed = mixed_training_set(shared_data / "fer2013.npz", wild_path)
    faces = load_wild(wild_path)
    trained_people = set(mixed.identity[mixed.domain == WILD_DOMAIN])
    assert trained_people.isdisjoint(faces.heldout().identity) and trained_people.isdisjoint(
        faces.calibration().identity
    )
    assert {identity_fold(name) for name in trained_people} == {1, 2, 3}
    assert (
        (mixed.domain == WILD_DOMAIN).sum()
        == len(faces.training())
        == len(faces) - len(faces.heldout()) - len(faces.calibration())
    )
    assert (mixed.domain != WILD_DOMAIN).sum() == 28709  # FER2013 Training, complete
    assert HELDOUT_FOLD not in {1, 2, 3} and CALIBRATION_FOLD not in {1, 2, 3}


def test_degradation_matches_the_crop_of_a_small_face_and_keeps_range() -> None:
    face = np.random.default_rng(5).integers(0, 256, (48, 48)).astype(np.uint8)
    tf_small = shrink_and_restore(tf.constant(face[..., None], tf.float32), tf.constant(24)).numpy()[..., 0]
    cv_small = crop_like_shrink(face[None], 24)[0].astype(np.float32)
    assert np.abs(tf_small - cv_small).mean() < 3.0  # training sees what the crop makes of a 24 px face
    tf.random.set_seed(1)
    outputs = np.stack([degrade(tf.constant(face[..., None], tf.float32), 1.0, 16).numpy() for _ in range(8)])
    assert outputs.shape == (8, 48, 48, 1) and outputs.min() >= 0 and outputs.max() <= 255.5
    assert all(np.abs(out[..., 0] - face).mean() > 5 for out in outputs)  # always shrunk at probability 1
    untouched = degrade(tf.constant(face[..., None], tf.float32), 0.0, 16).numpy()[..., 0]
    assert np.array_equal(untouched, face)


def test_selection_charges_share_distance_over_the_goal_tenfold() -> None:
    def scores(recall: float, distance: float) -> dict:
        return {
            "fer2013_publictest": {"accuracy": 0.68},
            "wild_calibration": {"macro_recall": recall, "share_distance": distance},
        }

    assert selection_score(scores(0.60, 0.06)) == pytest.approx(0.68 + 0.60 - 0.06)
    # More recall bought with shares past the goal loses to a candidate within it.
    assert selection_score(scores(0.70, 0.12)) == pytest.approx(0.68 + 0.70 - 0.12 - 10 * 0.02)
    assert selection_score(scores(0.70, 0.12)) < selection_score(scores(0.60, 0.06))


def test_wild_class_balance_draws_rare_classes_more_often(tmp_path: Path) -> None:
    labels = np.array([6] * 81 + [1] * 9 + [2] * 1)  # 81 neutral, 9 disgust, 1 fear; no other class
    assert wild_class_shares(labels, 0.0) == pytest.approx({6: 81 / 91, 1: 9 / 91, 2: 1 / 91})
    assert wild_class_shares(labels, 1.0) == pytest.approx({6: 1 / 3, 1: 1 / 3, 2: 1 / 3})
    assert wild_class_shares(labels, 0.5) == pytest.approx({6: 9 / 13, 1: 3 / 13, 2: 1 / 13})
    with pytest.raises(ValueError):
        wild_class_shares(labels, 1.5)
    # In the stream: with every batch wild, balance 1 draws the wild classes about equally.
    fer, wild = synthetic_data(tmp_path)
    mixed = mixed_training_set(fer, wild)
    cfg = FinetuneConfig(fer, wild, tmp_path / "base.keras", tmp_path / "run", batch_size=64, mixing="balanced")
    cfg.wild_share, cfg.wild_class_balance, cfg.degrade_probability = 1.0, 1.0, 0.0
    drawn = np.concatenate([y.numpy().argmax(1) for _, y, _ in training_stream(mixed, cfg, seed=3).take(20)])
    present = np.unique(mixed.labels[mixed.domain == WILD_DOMAIN])
    shares = np.bincount(drawn, minlength=len(EMOTIONS))[present] / len(drawn)
    assert np.allclose(shares, 1 / len(present), atol=0.05), shares


@pytest.mark.parametrize("mixing", ["weight", "balanced"])
def test_a_tiny_fine_tune_resumes_and_ships_a_calibrated_model_with_its_card(tmp_path: Path, mixing: str) -> None:
    fer, wild = synthetic_data(tmp_path)
    stages = ((8, 1), (16, 1))
    base = tmp_path / "base.keras"
    keras.mixed_precision.set_global_policy("float32")
    build_emotion_cnn(stages).save(base)
    cfg = FinetuneConfig(
        data=fer,
        wild=wild,
        base_model=base,
        run_dir=tmp_path / "run",
        epochs=1,
        steps_per_epoch=2,
        batch_size=16,
        stages=stages,
        precision="float32",
        mixing=mixing,
    )
    assert finetune(cfg)["epoch"] == 1
    cfg.epochs = 2
    assert finetune(cfg)["epoch"] == 2
    output = tmp_path / "shipped.keras"
    card = ship_finetuned(cfg, output, average_counts=(2,))
    assert json.loads(model_card_path(output).read_text()) == json.loads(json.dumps(card))
    candidates = ("last epoch", "last epoch, batch norm on clean faces", "mean of the last 2 epochs' weights")
    modes = ("one pass", "flip averaging")
    assert set(card["selection"]["tried"]) == {f"{name}, {mode}" for name in candidates for mode in modes}
    assert card["calibration"]["temperature"] > 0 and 0 <= card["abstention"]["threshold"] <= 1
    assert set(card["confusion_matrices"]) >= {"fer2013_publictest", "wild_calibration", "wild_heldout"}
    assert set(card["sets"]) == {"fer2013_publictest", "wild_calibration", "fer2013_privatetest", "wild_heldout"}
    classifier = EmotionClassifier(output)
    assert classifier.temperature == card["calibration"]["temperature"]
    assert classifier.abstain_below == card["abstention"]["threshold"]
    assert classifier.flip_tta == card["inference"]["flip_tta"]
    assert not (cfg.run_dir / "candidate.keras").exists()


def test_an_ensemble_is_the_mean_of_its_members_and_ships_within_the_speed_floor(tmp_path: Path) -> None:
    """models/ensemble.py: one file whose output is the members' mean probability, in every precision; the
    shipped choice is among member subsets, never one whose passes per face exceed MAX_PASSES."""
    fer, wild = synthetic_data(tmp_path)
    stages = ((8, 1), (16, 1))
    keras.mixed_precision.set_global_policy("float32")
    paths = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        path = tmp_path / f"run_{seed}" / "emotion_cnn.keras"
        path.parent.mkdir()
        build_emotion_cnn(stages).save(path)
        paths.append(path)
    members = [keras.models.load_model(path, compile=False) for path in paths]
    faces = np.random.default_rng(1).integers(0, 256, (16, 48, 48, 1)).astype("float32")
    ensemble = build_ensemble(members[:2])
    expected = (members[0](faces).numpy() + members[1](faces).numpy()) / 2
    assert np.allclose(ensemble(faces).numpy(), expected, atol=1e-6)
    ensemble.save(tmp_path / "pair.keras")
    bfloat16 = EmotionClassifier(tmp_path / "pair.keras", precision="mixed_bfloat16", flip_tta=False, temperature=1.0)
    assert np.allclose(bfloat16.predict(faces[..., 0].astype(np.uint8)), expected, atol=0.02)

    output = tmp_path / "shipped" / "ensemble.keras"
    card = ship_ensemble(paths, output, fer, wild)
    tried = card["selection"]["tried"]
    assert "run_0/emotion_cnn.keras + run_1/emotion_cnn.keras + run_2/emotion_cnn.keras, one pass" in tried
    assert not any(key.endswith("flip averaging") and key.count(" + ") == 2 for key in tried)  # 6 passes > 4
    assert len(tried) == 1 + 2 * 3 + 2 * 3  # the triple in one pass; the pairs and singles in both modes
    assert set(card["members"]) <= {member_name(path) for path in paths} and card["members"]
    classifier = EmotionClassifier(output)
    assert classifier.flip_tta == card["inference"]["flip_tta"]
    assert not output.with_name("ensemble.candidate.keras").exists()


def test_an_ensemble_refuses_a_member_that_is_not_an_expression_net() -> None:
    inputs = keras.Input((64, 64, 3))
    other = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="member 1"):
        build_ensemble([build_emotion_cnn(((8, 1),)), other])
    with pytest.raises(ValueError, match="at least one member"):
        build_ensemble([])
