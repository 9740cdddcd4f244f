"""The expression CNN: one readable function, keras-io style."""

from __future__ import annotations

import keras
from keras import layers

from models.labels import EMOTIONS, FACE_SIZE

# (filters, 3x3 convs) per stage; every stage but the last ends in 2x2 max pooling, so the
# stages run at 48, 24, 12, 6 and 3 pixels. One conv at full size keeps the cost low (about
# 107 M multiply-adds per face); the width goes where the map is small and convs are cheap.
DEFAULT_STAGES: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 2), (256, 2), (512, 1))


def conv_bn_relu(x, filters: int):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def build_emotion_cnn(
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES, dropout: float = 0.4, name: str = "emotion_cnn"
) -> keras.Model:
    """VGG-style CNN taking raw 48x48 uint8 grayscale faces, giving 7 probabilities.

    Scaling to [0, 1] lives inside the model so callers pass pixels exactly as cropped.
    The softmax is computed in float32 even when the convs run in bfloat16.
    """
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for index, (filters, convs) in enumerate(stages):
        for _ in range(convs):
            x = conv_bn_relu(x, filters)
        if index < len(stages) - 1:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(len(EMOTIONS), name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="emotion")(logits)
    return keras.Model(inputs, outputs, name=name)
