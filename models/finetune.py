"""Fine-tuning a trained expression net on FER2013 Training plus the shared real-photo faces.

The v2 net reads calm news-photo faces as angry, sad or afraid: FER2013 has few calm,
well-lit faces of public people. Fine-tuning on both sets fixes that far faster than a new
run. The training data is FER2013 *Training* and the wild set's *training* folds only
(`mixed_training_set`); PublicTest and the wild calibration fold choose, fold 0 and
PrivateTest only report (`models/ship.py`).

Two ways of mixing the sets, measured against each other on a short budget (BENCHMARKS.md):
- `weight`: every face once per epoch, a wild face's loss counted `wild_weight` times;
- `balanced`: every batch draws `wild_share` of its faces from the wild set (repeated as needed),
  its classes in proportion to n_c^(1 - `wild_class_balance`) (0: as the set has them).

Besides the v2 augmentation (flip, shift, rotation, zoom, light, erasing) a face is often
degraded as small faces in photos are: shrunk to 16-48 px and scaled back, blurred, or
JPEG-compressed (`degrade`).

Resumable like `models/train.py`: every epoch writes `last.keras`, `state.json` and a
weights snapshot into the run directory.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from models.architecture import DEFAULT_STAGES, build_emotion_cnn
from models.averaging import average_weights, recalibrate_batch_norm, snapshots
from models.data import load_split
from models.labels import EMOTIONS, FACE_SIZE
from models.train import (
    STATE_FILE,
    RunState,
    augmenter,
    compile_model,
    new_run_state,
    resume_run,
    training_precision,
)
from models.wild import load_wild

FER_DOMAIN, WILD_DOMAIN = 0, 1
MIXINGS = ("weight", "balanced")


@dataclass
class FinetuneConfig:
    data: Path  # fer2013.npz
    wild: Path  # faces_in_the_wild/muxspace_dev.npz
    base_model: Path  # the trained net to start from (a .keras file of the DEFAULT_STAGES architecture)
    run_dir: Path
    epochs: int = 12
    steps_per_epoch: int | None = None  # default: one pass over both sets' faces
    batch_size: int = 64
    learning_rate: float = 4e-4  # peak after warm-up; a fifth of v2's, since the net is already trained
    warmup_epochs: int = 1
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    mixing: str = "weight"  # one of MIXINGS
    wild_weight: float = 2.0  # mixing "weight": loss multiplier of a wild face
    wild_share: float = 0.3  # mixing "balanced": share of each batch drawn from the wild set
    wild_class_balance: float = 0.0  # mixing "balanced": wild class c drawn in proportion to n_c^(1 - this)
    degrade_probability: float = 0.5  # chance of the shrink-and-scale-back; blur and JPEG each half that
    min_side: int = 16  # smallest side a face is shrunk to
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES
    dropout: float = 0.4
    precision: str = "auto"
    seed: int = 2026
    limit: int | None = None  # use only the first N faces of each set (smoke tests)


@dataclass(frozen=True)
class MixedSet:
    """The fine-tuning faces: FER2013 Training, then the wild training folds."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) uint8, index into EMOTIONS
    domain: np.ndarray  # (N,) uint8, FER_DOMAIN or WILD_DOMAIN
    identity: np.ndarray  # (N,) str, the wild face's person ("" for FER2013)

    def __len__(self) -> int:
        return len(self.labels)


def mixed_training_set(fer2013: Path | str, wild: Path | str, limit: int | None = None) -> MixedSet:
    """FER2013 Training and the wild set's training folds; never PublicTest, PrivateTest, fold 0 or fold 4."""
    fer = load_split(fer2013, "Training")
    faces = load_wild(wild).training()
    fer_images, fer_labels = fer.images[:limit], fer.labels[:limit]
    wild_images, wild_labels, wild_identity = faces.images[:limit], faces.labels[:limit], faces.identity[:limit]
    return MixedSet(
        images=np.concatenate([fer_images, wild_images]),
        labels=np.concatenate([fer_labels, wild_labels]).astype(np.uint8),
        domain=np.concatenate([np.full(len(fer_labels), FER_DOMAIN), np.full(len(wild_labels), WILD_DOMAIN)]).astype(
            np.uint8
        ),
        identity=np.concatenate([np.full(len(fer_labels), ""), wild_identity]),
    )


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor) -> tf.Tensor:
    """A (48, 48, 1) image blurred with a 5x5 Gaussian of width `sigma`, edges mirrored."""
    offsets = tf.range(-2.0, 3.0)
    weights = tf.exp(-(offsets**2) / (2.0 * sigma**2))
    weights /= tf.reduce_sum(weights)
    kernel = tf.reshape(weights[:, None] * weights[None, :], (5, 5, 1, 1))
    padded = tf.pad(image[None], [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
    return tf.nn.conv2d(padded, kernel, strides=1, padding="VALID")[0]


def shrink_and_restore(image: tf.Tensor, side: tf.Tensor) -> tf.Tensor:
    """The face as a photo `side` px wide shows it: area-shrunk, then scaled back bicubically as models/crops.py
    does (TensorFlow's cubic kernel is Keys' a = -0.5, OpenCV's -0.75: nearly the same face; v3 and v4 were
    trained with bilinear, what the crop did then). Cubic overshoots at edges, so the result is clipped."""
    small = tf.image.resize(image, tf.stack([side, side]), method="area")
    return tf.clip_by_value(tf.image.resize(small, (FACE_SIZE, FACE_SIZE), method="bicubic"), 0.0, 255.0)


def degrade(image: tf.Tensor, probability: float, min_side: int) -> tf.Tensor:
    """One (48, 48, 1) float face in 0..255, maybe shrunk and restored, blurred and JPEG-compressed."""

    def chance(p: float) -> tf.Tensor:
        return tf.random.uniform([]) < p

    side = tf.random.uniform([], min_side, FACE_SIZE, dtype=tf.int32)
    image = tf.cond(chance(probability), lambda: shrink_and_restore(image, side), lambda: image)
    sigma = tf.random.uniform([], 0.4, 1.3)
    image = tf.cond(chance(probability / 2), lambda: gaussian_blur(image, sigma), lambda: image)
    quality = tf.random.uniform([], 25, 90, dtype=tf.int32)

    def compress() -> tf.Tensor:
        return tf.image.adjust_jpeg_quality(tf.clip_by_value(image, 0, 255) / 255.0, quality) * 255.0

    image = tf.cond(chance(probability / 2), compress, lambda: image)
    return tf.ensure_shape(image, (FACE_SIZE, FACE_SIZE, 1))


def face_dataset(images: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tf.data.Dataset:
    x = images[..., None].astype("float32")
    y = keras.utils.to_categorical(labels, len(EMOTIONS)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, y, weights.astype("float32")))


def wild_class_shares(labels: np.ndarray, balance: float) -> dict[int, float]:
    """Each present class's share of the wild draws: n_c^(1 - balance), normalised.

    0 draws faces uniformly (classes as the set has them: half neutral, 40 % happy); 1 draws every
    class equally (a fear face of the training folds' handful repeated hundreds of times an epoch);
    0.5 is between: sad, disgust and surprise come about four times as often as uniformly.
    """
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"wild_class_balance must be within [0, 1], got {balance}")
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(float)
    weights = {int(c): counts[c] ** (1.0 - balance) for c in np.flatnonzero(counts)}
    total = sum(weights.values())
    return {c: w / total for c, w in weights.items()}


def training_stream(mixed: MixedSet, cfg: FinetuneConfig, seed: int) -> tf.data.Dataset:
    """Endless augmented batches of (faces, one-hot labels, loss weights) mixed as `cfg.mixing` says."""
    if cfg.mixing not in MIXINGS:
        raise ValueError(f"unknown mixing {cfg.mixing!r}: use one of {', '.join(MIXINGS)}")
    wild = mixed.domain == WILD_DOMAIN
    if cfg.mixing == "weight":
        weights = np.where(wild, cfg.wild_weight, 1.0)
        faces = face_dataset(mixed.images, mixed.labels, weights).shuffle(len(mixed), seed=seed).repeat()
    else:
        groups, shares = [~wild], [1 - cfg.wild_share]
        for emotion, share in wild_class_shares(mixed.labels[wild], cfg.wild_class_balance).items():
            groups.append(wild & (mixed.labels == emotion))
            shares.append(cfg.wild_share * share)
        parts = [
            face_dataset(mixed.images[m], mixed.labels[m], np.ones(int(m.sum())))
            .shuffle(int(m.sum()), seed=seed + i)
            .repeat()
            for i, m in enumerate(groups)
        ]
        faces = tf.data.Dataset.sample_from_datasets(parts, shares, seed=seed)
    augment = augmenter(seed)
    return (
        faces.map(
            lambda x, y, w: (degrade(x, cfg.degrade_probability, cfg.min_side), y, w),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .batch(cfg.batch_size)
        .map(lambda x, y, w: (tf.clip_by_value(augment(x, training=True), 0, 255), y, w))
        .prefetch(tf.data.AUTOTUNE)
    )


class WildCalibrationLog(keras.callbacks.Callback):
    """Each epoch: accuracy, macro recall and share distance on the wild calibration fold, for the log only."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.images, self.labels = images[..., None].astype("float32"), labels

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        from models.calibration import share_distance
        from models.evaluate import metrics

        probs = self.model.predict(self.images, batch_size=256, verbose=0)
        scored = metrics(self.labels, probs)
        recall = scored["macro_recall"]
        tv = share_distance(self.labels, probs.argmax(1))
        print(
            f"epoch {epoch + 1}: wild calibration fold acc {scored['accuracy']:.4f} "
            f"macro recall {recall:.4f} share TV {tv:.4f}",
            flush=True,
        )


def finetune(cfg: FinetuneConfig) -> dict:
    """Fine-tune (or resume) `cfg.base_model`; leaves per-epoch snapshots in the run directory; returns the state."""
    precision = training_precision(cfg.precision)
    keras.utils.set_random_seed(cfg.seed)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    (cfg.run_dir / "config.json").write_text(
        json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}, indent=2) + "\n"
    )
    mixed = mixed_training_set(cfg.data, cfg.wild, cfg.limit)
    public = load_split(cfg.data, "PublicTest")
    calibration = load_wild(cfg.wild).calibration()
    steps = cfg.steps_per_epoch or math.ceil(len(mixed) / cfg.batch_size)

    state_file = cfg.run_dir / STATE_FILE
    model = build_emotion_cnn(cfg.stages, cfg.dropout)
    compile_model(model, cfg, steps)
    state = resume_run(cfg.run_dir, cfg.epochs, model)
    if state is not None and state["epoch"] >= cfg.epochs:
        print(f"{cfg.run_dir} finished its {state['epoch']} epochs", flush=True)
        return state
    if state is None:
        model.set_weights(keras.models.load_model(cfg.base_model, compile=False).get_weights())
        state = new_run_state()
    wild_count = int((mixed.domain == WILD_DOMAIN).sum())
    print(
        f"fine-tuning {cfg.base_model} ({cfg.mixing}): {len(mixed) - wild_count:,} FER2013 + {wild_count:,} wild "
        f"faces, {steps} steps of {cfg.batch_size} per epoch, {precision}",
        flush=True,
    )
    shadow = build_emotion_cnn(cfg.stages, cfg.dropout)
    callbacks = [
        keras.callbacks.CSVLogger(str(cfg.run_dir / "history.csv"), append=True),
        WildCalibrationLog(calibration.images, calibration.labels),
        RunState(cfg.run_dir, state["best_val_accuracy"], time.time(), state["elapsed_s"], shadow, snapshot_from=1),
    ]
    stream_seed = cfg.seed + 1000 * state["epoch"]  # a resumed run does not replay the first epochs' batches
    model.fit(
        training_stream(mixed, cfg, stream_seed),
        steps_per_epoch=steps,
        validation_data=tf.data.Dataset.from_tensor_slices(
            (public.images[..., None].astype("float32"), keras.utils.to_categorical(public.labels, len(EMOTIONS)))
        ).batch(256),
        epochs=cfg.epochs,
        initial_epoch=state["epoch"],
        callbacks=callbacks,
        verbose=0,
    )
    return json.loads(state_file.read_text())


def averaged_candidate(
    run_dir: Path, count: int, recalibration_images: np.ndarray | None, stages=DEFAULT_STAGES
) -> keras.Model:
    """A float32 net holding the mean of the run's last `count` snapshots.

    With `recalibration_images` its batch-norm statistics are recomputed on those (clean) faces:
    a mean of weights needs its own, and a single epoch's were gathered on degraded batches.
    """
    keras.mixed_precision.set_global_policy("float32")
    net = build_emotion_cnn(stages)
    kept = snapshots(run_dir)
    if count > len(kept):
        raise ValueError(f"{run_dir} has {len(kept)} snapshots, not {count}")
    net.set_weights(average_weights(net, kept[-count:]))
    if recalibration_images is not None:
        recalibrate_batch_norm(net, recalibration_images)
    return net
