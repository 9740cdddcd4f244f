"""Training on a sliver of FER2013 with a tiny net: resume, selection and the model card (no accuracy claims)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np

from models.architecture import build_emotion_cnn
from models.averaging import average_weights, recalibrate_batch_norm, snapshots
from models.train import AugmentedBatches, TrainConfig, augmenter, compile_model, restore_checkpoint, to_dataset, train
from models.weights import model_card_path


def test_training_resumes_and_writes_a_float32_model_with_its_card(
    tmp_path: Path, shared_data: Path, capsys, monkeypatch
) -> None:
    # What precision "auto" measures faster is a timing race on a CPU with bfloat16 units: make it explicit, and
    # let the re-export below lose it the other way, which must not change how the candidates compare.
    race = {"winner": "mixed_bfloat16"}
    monkeypatch.setattr("models.classifier.measured_precision", lambda requested, seconds: race["winner"])
    cfg = TrainConfig(
        data=shared_data / "fer2013.npz",
        run_dir=tmp_path / "run",
        output=tmp_path / "model.keras",
        epochs=1,
        batch_size=64,
        stages=((8, 1), (16, 1)),
        limit=256,
        precision="mixed_bfloat16",
        average_counts=(2,),
    )
    train(cfg)
    assert json.loads((cfg.run_dir / "state.json").read_text())["epoch"] == 1

    cfg.epochs = 2
    card = train(cfg)
    assert "resuming" in capsys.readouterr().out
    assert json.loads((cfg.run_dir / "state.json").read_text())["epoch"] == 2
    assert card["epochs"] == 2 and card["data_sha256"] and 0 <= card["private_test_accuracy"] <= 1
    assert json.loads(model_card_path(cfg.output).read_text()) == json.loads(json.dumps(card))
    assert [p.name for p in snapshots(cfg.run_dir)] == ["epoch_001.weights.h5", "epoch_002.weights.h5"]
    assert "best PublicTest epoch" in card["selection"] and "mean of the last 2 epochs" in card["selection"]

    (cfg.run_dir / "last.keras").unlink()  # a finished run re-exports without its optimizer state
    race["winner"] = "float32"
    assert train(cfg)["selection"] == card["selection"]
    assert "exporting only" in capsys.readouterr().out

    with h5py.File(cfg.run_dir / "best.weights.h5") as best:  # weights only: no optimizer moments
        assert "layers" in best and "optimizer" not in best

    model = keras.models.load_model(cfg.output, compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert model.output_shape == (None, 7)


def test_resume_keeps_optimizer_moments_and_weight_decay_exclusions(tmp_path: Path) -> None:
    cfg = TrainConfig(data=tmp_path / "unused.npz", run_dir=tmp_path, stages=((8, 1),), precision="float32")
    trained = build_emotion_cnn(cfg.stages, cfg.dropout)
    compile_model(trained, cfg, steps_per_epoch=4)
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (8, 48, 48, 1)).astype("float32")
    trained.fit(faces, keras.utils.to_categorical(rng.integers(0, 7, 8), 7), batch_size=4, verbose=0)
    trained.save(tmp_path / "last.keras")

    resumed = build_emotion_cnn(cfg.stages, cfg.dropout)
    compile_model(resumed, cfg, steps_per_epoch=4)
    restore_checkpoint(resumed, tmp_path / "last.keras")

    assert int(resumed.optimizer.iterations.numpy()) == 2
    pairs = zip(resumed.optimizer.variables, trained.optimizer.variables, strict=True)
    assert all(np.array_equal(mine.numpy(), saved.numpy()) for mine, saved in pairs)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), trained.get_weights(), strict=True))
    decays = {v.name: resumed.optimizer._use_weight_decay(v) for v in resumed.trainable_variables}
    assert decays["kernel"] is True and decays["gamma"] is False and decays["beta"] is False


def test_weight_average_is_the_mean_and_batch_norm_is_recalibrated_on_the_data(tmp_path: Path) -> None:
    net = build_emotion_cnn(((4, 1),), name="tiny")
    paths = []
    for index in range(3):
        net.set_weights([np.full(w.shape, float(index), "float32") for w in net.get_weights()])
        paths.append(tmp_path / f"epoch_{index}.weights.h5")
        net.save_weights(paths[-1])
    averaged = average_weights(net, paths)
    assert all(np.allclose(w, 1.0) for w in averaged)

    net = build_emotion_cnn(((4, 1),), name="tiny")
    faces = np.random.default_rng(1).integers(0, 256, (512, 48, 48)).astype("uint8")
    recalibrate_batch_norm(net, faces, batch_size=128)
    norm = next(layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization))
    conv_out = keras.Model(net.input, norm.input).predict(faces[..., None].astype("float32"), verbose=0)
    assert np.allclose(norm.moving_mean.numpy(), conv_out.mean(axis=(0, 1, 2)), rtol=1e-3, atol=1e-4)
    assert norm.momentum == 0.99


def test_without_tensorflow_the_input_is_augmented_batches_a_net_can_fit(monkeypatch) -> None:
    """Under another backend (a GPU machine without TensorFlow: `KERAS_BACKEND=jax`) `to_dataset` gives
    `AugmentedBatches`: every face once an epoch in a seeded order that changes each epoch, augmented and
    clipped to 0..255; validation batches untouched and in order. (A whole run under JAX: BENCHMARKS.md.)"""
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    rng = np.random.default_rng(3)
    faces, labels = rng.integers(0, 256, (20, 48, 48)).astype("uint8"), rng.integers(0, 7, 20)
    faces[:, :, 0] = np.arange(20)[:, None]  # a column that names each face, through any shuffle

    training = to_dataset(faces, labels, 8, augment=augmenter(5), seed=5)
    assert isinstance(training, AugmentedBatches) and len(training) == 3
    batches = [training[index] for index in range(len(training))]
    assert [len(x) for x, _ in batches] == [8, 8, 4]
    assert all(x.shape[1:] == (48, 48, 1) and x.min() >= 0 and x.max() <= 255 for x, _ in batches)
    order = training.order.copy()
    assert sorted(order) == list(range(20)) and list(order) != list(range(20))
    assert all(
        np.array_equal(y, keras.utils.to_categorical(labels[order[8 * i : 8 * i + 8]], 7))
        for i, (_, y) in enumerate(batches)
    )
    assert not np.array_equal(batches[0][0][..., 0], faces[order[:8]].astype("float32"))  # augmented
    training.on_epoch_end()
    assert sorted(training.order) == list(range(20)) and list(training.order) != list(order)
    assert list(to_dataset(faces, labels, 8, augment=augmenter(5), seed=5).order) == list(order)  # seeded

    validation = to_dataset(faces, labels, 8)
    assert np.array_equal(validation[2][0][..., 0], faces[16:].astype("float32"))

    monkeypatch.undo()  # fit in the backend this process really has
    net = build_emotion_cnn(((4, 1),), name="tiny")
    net.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = net.fit(training, validation_data=validation, epochs=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 2
