"""Training on a sliver of FER2013 with a tiny net: resume, selection and the model card (no accuracy claims)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras

from models.train import TrainConfig, train
from models.weights import model_card_path


def test_training_resumes_and_writes_a_float32_model_with_its_card(tmp_path: Path, shared_data: Path, capsys) -> None:
    cfg = TrainConfig(
        data=shared_data / "fer2013.npz",
        run_dir=tmp_path / "run",
        output=tmp_path / "model.keras",
        epochs=1,
        batch_size=64,
        stages=((8, 1), (16, 1)),
        limit=256,
        precision="mixed_bfloat16",
    )
    train(cfg)
    assert json.loads((cfg.run_dir / "state.json").read_text())["epoch"] == 1

    cfg.epochs = 2
    card = train(cfg)
    assert "resuming" in capsys.readouterr().out
    assert json.loads((cfg.run_dir / "state.json").read_text())["epoch"] == 2
    assert card["epochs"] == 2 and card["data_sha256"] and 0 <= card["private_test_accuracy"] <= 1
    assert json.loads(model_card_path(cfg.output).read_text()) == json.loads(json.dumps(card))

    with h5py.File(cfg.run_dir / "best.weights.h5") as best:  # weights only: no optimizer moments
        assert "layers" in best and "optimizer" not in best

    model = keras.models.load_model(cfg.output, compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert model.output_shape == (None, 7)
