"""Several expression nets averaged into one model file: an ensemble within the speed floor.

Nets that make different mistakes (trained apart) are usually right more often, and better
calibrated, as the mean of their probabilities than any one of them. Two fine-tunes of one
base with the same recipe and other seeds did not differ enough to gain (BENCHMARKS.md,
"Seeds, ensembles and test-time views"). Each member is a nested model inside one
`keras.Model`, so the ensemble is a single `.keras` file that `EmotionClassifier` loads like
any other (its precision clone recurses into the members) and the card, calibration and
abstention work unchanged.

Which members (any non-empty subset of those given) and whether to add flip averaging is
chosen like every other choice, by `models.ship.selection_score` on the choosing sets
(PublicTest and the wild calibration fold), among the configurations that cost at most
`MAX_PASSES` net evaluations per face: one pass of the v4 net runs at about 2,400 faces/s
on this CPU (`bench/classifier_speed.py`), and issue 15's floor is 500 faces/s.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import keras
from keras import layers

from models.classifier import OUTPUT_LAYER
from models.labels import EMOTIONS, FACE_SIZE

MAX_PASSES = 4  # net evaluations per face: members x (2 with flip averaging, else 1)


def build_ensemble(members: Sequence[keras.Model], name: str = "emotion_cnn_ensemble") -> keras.Model:
    """One model whose output is the mean of the members' probabilities (each member a nested copy)."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    for index, member in enumerate(members):
        shapes = (tuple(member.input_shape[1:]), tuple(member.output_shape[1:]))
        if shapes != ((FACE_SIZE, FACE_SIZE, 1), (len(EMOTIONS),)):
            raise ValueError(
                f"member {index} ({member.name}) maps {shapes[0]} to {shapes[1]}: an expression net maps "
                f"({FACE_SIZE}, {FACE_SIZE}, 1) faces to {len(EMOTIONS)} probabilities"
            )
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    outputs = []
    for index, member in enumerate(members):
        clone = keras.models.clone_model(member)
        clone.set_weights(member.get_weights())
        outputs.append(keras.Model(clone.input, clone.output, name=f"member_{index}")(inputs))
    if len(outputs) == 1:
        return keras.Model(inputs, outputs[0], name=name)
    mean = layers.Average(dtype="float32", name=OUTPUT_LAYER)(outputs)
    return keras.Model(inputs, mean, name=name)


def member_subsets(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of the members, largest first."""
    return [subset for size in range(len(names), 0, -1) for subset in itertools.combinations(names, size)]


def member_name(path: Path) -> str:
    """How the card names a member: its run directory and file (members are often all emotion_cnn.keras)."""
    return f"{path.parent.name}/{path.name}"
