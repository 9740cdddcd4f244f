"""Folding batch normalisation into the convolutions (models/folding.py): the same answers from fewer layers."""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
import pytest
from keras import layers

from models.architecture import build_emotion_cnn
from models.classifier import EmotionClassifier
from models.ensemble import build_ensemble
from models.folding import folded_for_inference, is_chain
from models.weights import DEFAULT_MODEL_PATH

TINY_STAGES = ((4, 1), (8, 2), (8, 1))


def with_trained_statistics(model: keras.Model, seed: int) -> keras.Model:
    """Every normalisation layer given moving statistics and an affine part far from the identity, as training
    leaves them (fresh layers are the identity, which any folding would reproduce)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            with_trained_statistics(layer, seed + 1)
        elif isinstance(layer, layers.BatchNormalization):
            for weight in layer.weights:
                shape = tuple(weight.shape)
                positive = "variance" in weight.path or "gamma" in weight.path
                weight.assign(rng.uniform(0.2, 3.0, shape) if positive else rng.normal(0, 1.5, shape))
    return model


def faces(count: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48, 1)).astype(np.float32)


def kinds(model: keras.Model) -> Counter:
    return Counter(type(layer).__name__ for layer in model.layers)


def test_a_trained_style_net_folds_to_fused_convolutions_with_the_same_answers() -> None:
    model = with_trained_statistics(build_emotion_cnn(TINY_STAGES), seed=1)
    folded = folded_for_inference(model)
    assert kinds(folded)["BatchNormalization"] == kinds(folded)["Dropout"] == kinds(folded)["Rescaling"] == 0
    assert kinds(folded)["Conv2D"] == 4 and kinds(folded)["Activation"] == 1  # the float32 softmax stays apart
    assert all(
        layer.get_config()["activation"] == "relu" for layer in folded.layers if isinstance(layer, layers.Conv2D)
    )
    assert folded.layers[-1].name == "emotion" and folded.layers[-1].dtype_policy.name == "float32"
    x = faces()
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=2e-6)


def test_normalisation_without_scale_or_centre_and_a_biased_convolution_fold_too() -> None:
    inputs = keras.Input((48, 48, 1))
    x = layers.Conv2D(3, 3, padding="same", use_bias=True, bias_initializer="random_normal")(inputs)
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.Conv2D(5, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(center=False)(x)  # no activation after it: the folded conv stays linear
    x = layers.Conv2D(2, 3, activation="relu")(x)  # an activation of its own: nothing to fold
    model = with_trained_statistics(keras.Model(inputs, layers.GlobalAveragePooling2D()(x)), seed=2)
    folded = folded_for_inference(model)
    assert kinds(folded)["BatchNormalization"] == 0 and kinds(folded)["Conv2D"] == 3
    x = faces(8) / 255
    expected = model.predict(x, verbose=0)
    assert np.isfinite(expected).all() and np.abs(expected).max() > 0.01
    np.testing.assert_allclose(folded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_an_ensemble_folds_each_member_and_still_averages_them() -> None:
    members = [with_trained_statistics(build_emotion_cnn(TINY_STAGES, name=f"m{i}"), seed=3 + i) for i in range(2)]
    ensemble = build_ensemble(members)
    assert not is_chain(ensemble)
    folded = folded_for_inference(ensemble)
    nested = [layer for layer in folded.layers if isinstance(layer, keras.Model)]
    assert len(nested) == 2 and all(kinds(member)["BatchNormalization"] == 0 for member in nested)
    x = faces()
    np.testing.assert_allclose(folded.predict(x, verbose=0), ensemble.predict(x, verbose=0), atol=2e-6)


def test_a_model_that_is_not_a_chain_keeps_its_branches() -> None:
    inputs = keras.Input((48, 48, 1))
    left = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs))
    right = layers.Conv2D(4, 3, padding="same")(inputs)
    model = with_trained_statistics(keras.Model(inputs, layers.Add()([left, right])), seed=5)
    assert not is_chain(model)
    folded = folded_for_inference(model)
    x = faces(4) / 255
    np.testing.assert_allclose(folded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_the_shipped_classifier_runs_folded_with_the_trained_nets_answers(precision: str) -> None:
    """`EmotionClassifier` runs the folded copy, in either precision; its probabilities are the trained net's."""
    trained = keras.models.load_model(DEFAULT_MODEL_PATH, compile=False)
    classifier = EmotionClassifier(flip_tta=False, temperature=1.0, precision=precision)
    assert kinds(classifier.model)["BatchNormalization"] == 0 and kinds(trained)["BatchNormalization"] == 8
    assert classifier.parameters == trained.count_params()
    x = faces(64, seed=7)
    expected = trained.predict(x, verbose=0)
    got = classifier.predict(x[..., 0].astype(np.uint8))
    tolerance = 2e-5 if precision == "float32" else 0.1  # bfloat16 keeps 8 bits of mantissa (test_model.py's bound)
    np.testing.assert_allclose(got, expected, atol=tolerance)
