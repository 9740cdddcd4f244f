"""The expression CNN: one readable function, keras-io style."""

from __future__ import annotations

import keras
from keras import layers

from models.labels import EMOTIONS, FACE_SIZE


def conv_block(x, filters: int, convs: int = 2):
    """`convs` x (3x3 conv, batch norm, ReLU), then 2x2 max pooling."""
    for _ in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    return layers.MaxPooling2D()(x)


def build_emotion_cnn(widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4) -> keras.Model:
    """VGG-style CNN taking raw 48x48 uint8 grayscale faces, giving 7 probabilities.

    Scaling to [0, 1] lives inside the model so callers pass pixels exactly as cropped.
    """
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for width in widths:
        x = conv_block(x, width)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="emotion_cnn")
