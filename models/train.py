"""Training the expression CNN on FER2013 Training, selecting on PublicTest.

Resumable: every epoch writes `last.keras` (with optimizer state) and `state.json`
into the run directory; running again with the same directory continues from there.
The export picks, on PublicTest, between the best single epoch and the mean weights of the
last epochs (`models/averaging.py`). PrivateTest is only touched once, after that choice,
to report the chosen model.

Under TensorFlow (this project's CPUs) the input is a tf.data pipeline; under another Keras
backend (`KERAS_BACKEND=jax` on a GPU machine without TensorFlow) the same augmenter runs on
numpy batches of an `AugmentedBatches` sequence, so a run can go where TensorFlow is not.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from models.architecture import DEFAULT_STAGES, build_emotion_cnn
from models.averaging import average_weights, recalibrate_batch_norm, snapshot_path, snapshots
from models.data import default_data_path, file_sha256, load_split
from models.hardware import measured_precision
from models.labels import EMOTIONS, FACE_SIZE
from models.weights import DEFAULT_MODEL_PATH, model_card_path

BEST_WEIGHTS = "best.weights.h5"  # the PublicTest-best weights, without optimizer state


@dataclass
class TrainConfig:
    data: Path
    run_dir: Path
    output: Path = DEFAULT_MODEL_PATH
    epochs: int = 120
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_epochs: int = 3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    stages: tuple[tuple[int, int], ...] = DEFAULT_STAGES
    dropout: float = 0.4
    precision: str = "auto"  # "float32", "mixed_bfloat16", or "auto": bfloat16 where the hardware has it
    seed: int = 1337
    # Export also tries the mean weights of the last N epochs for each N here (snapshots kept for the largest).
    average_counts: tuple[int, ...] = (5, 10, 20, 40)
    limit: int | None = None  # use only the first N training images (smoke tests)
    verbose: bool = False  # Keras' per-epoch progress lines


def augmenter(seed: int) -> keras.Sequential:
    """What FER2013 needs: faces are roughly aligned but vary in pose, framing and light."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 1),
            layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 2),
            layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 3),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 4),
            layers.RandomContrast(0.2, seed=seed + 5),
            layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), fill_value=0.0, value_range=(0, 255), seed=seed + 6),
        ],
        name="augment",
    )


class AugmentedBatches(keras.utils.PyDataset):
    """Batches of faces for a backend without tf.data: shuffled anew each epoch from `seed` and augmented
    by `augment` (Keras' preprocessing layers run in any backend) when it is given; in order otherwise."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int, augment=None, seed: int = 0):
        super().__init__()
        self.x, self.y, self.batch, self.augment = x, y, batch, augment
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x)) if augment is not None else np.arange(len(x))

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch))

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch : (index + 1) * self.batch]
        faces = self.x[rows]
        if self.augment is not None:
            faces = keras.ops.convert_to_numpy(keras.ops.clip(self.augment(faces, training=True), 0, 255))
        return faces, self.y[rows]

    def on_epoch_end(self) -> None:
        if self.augment is not None:
            self.order = self.rng.permutation(len(self.x))


def to_dataset(images: np.ndarray, labels: np.ndarray, batch: int, *, augment=None, seed: int = 0):
    x = images[..., None].astype("float32")
    y = keras.utils.to_categorical(labels, len(EMOTIONS))
    if keras.backend.backend() != "tensorflow":
        return AugmentedBatches(x, y, batch, augment, seed)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if augment is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch).map(
            lambda a, b: (tf.clip_by_value(augment(a, training=True), 0, 255), b),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        ds = ds.batch(batch)
    return ds.prefetch(tf.data.AUTOTUNE)


class RunState(keras.callbacks.Callback):
    """After every epoch: the PublicTest-best weights, the resumable state, one progress line.

    The best weights go through `shadow`, an uncompiled copy of the net: Keras saves a compiled
    model's optimizer moments with its weights, which would triple the file.
    """

    def __init__(
        self, run_dir: Path, best: float, started: float, elapsed_before: float, shadow: keras.Model, snapshot_from: int
    ):
        super().__init__()
        self.run_dir, self.best, self.shadow, self.snapshot_from = run_dir, best, shadow, snapshot_from
        self.started, self.elapsed_before = started, elapsed_before

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs = logs or {}
        accuracy = float(logs.get("val_accuracy", 0.0))
        self.shadow.set_weights(self.model.get_weights())
        if accuracy > self.best:
            self.best = accuracy
            self.shadow.save_weights(self.run_dir / BEST_WEIGHTS)
        if epoch + 1 >= self.snapshot_from:
            snapshot_path(self.run_dir, epoch + 1).parent.mkdir(exist_ok=True)
            self.shadow.save_weights(snapshot_path(self.run_dir, epoch + 1))
        self.model.save(self.run_dir / "last.keras")
        elapsed = self.elapsed_before + time.time() - self.started
        state = {"epoch": epoch + 1, "best_val_accuracy": self.best, "elapsed_s": elapsed}
        (self.run_dir / "state.json").write_text(json.dumps(state))
        print(
            f"epoch {epoch + 1}: loss {logs.get('loss', 0):.4f} acc {logs.get('accuracy', 0):.4f} "
            f"PublicTest acc {logs.get('val_accuracy', 0):.4f} (best {self.best:.4f}) "
            f"elapsed {elapsed / 60:.1f} min",
            flush=True,
        )


# What "auto" times each training precision on, after a few steps to compile and warm: with 6 steps after 2
# the two precisions timed alike on a host where bfloat16 trains at half float32's speed.
PROBE_WARMUP, PROBE_STEPS, PROBE_BATCH = 4, 20, 64


def probe_training_seconds(policy: str) -> float:
    """Seconds for PROBE_STEPS training steps of the default net on random faces in `policy`."""
    keras.mixed_precision.set_global_policy(policy)
    net = build_emotion_cnn()
    net.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (PROBE_STEPS * PROBE_BATCH, FACE_SIZE, FACE_SIZE, 1)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, len(EMOTIONS), len(faces)), len(EMOTIONS))
    warmup = PROBE_WARMUP * PROBE_BATCH
    net.fit(faces[:warmup], labels[:warmup], batch_size=PROBE_BATCH, verbose=0)
    started = time.perf_counter()
    net.fit(faces, labels, batch_size=PROBE_BATCH, verbose=0)
    return time.perf_counter() - started


def training_precision(requested: str) -> str:
    """The precision a run trains in ("auto": the faster here, timed; models/hardware.py), set as Keras' policy.

    Called before the run's seed is set, so the probe leaves the run's random streams as they were.
    """
    precision = measured_precision(requested, probe_training_seconds)
    keras.mixed_precision.set_global_policy(precision)
    return precision


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int) -> None:
    """AdamW with linear warm-up then cosine decay; no weight decay on batch-norm and bias terms."""
    warmup = min(cfg.warmup_epochs, cfg.epochs - 1) * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        cfg.learning_rate / 10,
        decay_steps=cfg.epochs * steps_per_epoch - warmup,
        alpha=0.01,
        warmup_target=cfg.learning_rate,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        metrics=["accuracy"],
    )


def restore_checkpoint(model: keras.Model, last: Path) -> None:
    """Load weights and optimizer slots from `last` into a freshly compiled `model`.

    Loading the compiled model itself would lose the optimizer's weight-decay exclusions
    (Keras does not serialise them), so batch-norm scales would start decaying on resume.
    """
    saved = keras.models.load_model(last)
    model.set_weights(saved.get_weights())
    model.optimizer.build(model.trainable_variables)
    # Slots come in the order of the trainable variables, which the same architecture repeats.
    for variable, value in zip(model.optimizer.variables, saved.optimizer.variables, strict=True):
        if variable.shape != value.shape:
            raise ValueError(f"checkpoint {last} does not match this architecture at {variable.path}")
        variable.assign(value)


STATE_FILE, LAST_CHECKPOINT = "state.json", "last.keras"


def new_run_state() -> dict:
    return {"epoch": 0, "best_val_accuracy": 0.0, "elapsed_s": 0.0}


def resume_run(run_dir: Path, epochs: int, model: keras.Model) -> dict | None:
    """A run directory's state, `model` restored to its last epoch when the run has epochs left; None for a new run.

    Shared by training and fine-tuning: a finished run's state comes back with `model` untouched.
    """
    state_file, last = run_dir / STATE_FILE, run_dir / LAST_CHECKPOINT
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    if state["epoch"] < epochs:
        if not last.exists():
            raise FileNotFoundError(f"{last} is missing: run {run_dir} stopped at epoch {state['epoch']}")
        restore_checkpoint(model, last)
        print(f"resuming {run_dir} at epoch {state['epoch']}", flush=True)
    return state


def train(cfg: TrainConfig) -> dict:
    """Train (or resume), export the PublicTest-best model to `cfg.output`, write its card."""
    precision = training_precision(cfg.precision)
    keras.utils.set_random_seed(cfg.seed)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    train_split = load_split(cfg.data, "Training")
    public = load_split(cfg.data, "PublicTest")
    x_train, y_train = train_split.images[: cfg.limit], train_split.labels[: cfg.limit]
    steps = int(np.ceil(len(x_train) / cfg.batch_size))

    state_file = cfg.run_dir / STATE_FILE
    model = build_emotion_cnn(cfg.stages, cfg.dropout)
    compile_model(model, cfg, steps)
    state = resume_run(cfg.run_dir, cfg.epochs, model)
    if state is None:
        state = new_run_state()
    elif state["epoch"] >= cfg.epochs:
        print(f"{cfg.run_dir} finished its {state['epoch']} epochs: exporting only", flush=True)
    print(f"{model.count_params():,} parameters, {len(x_train):,} training images, {precision}", flush=True)

    best_path = cfg.run_dir / BEST_WEIGHTS
    shadow = build_emotion_cnn(cfg.stages, cfg.dropout)
    callbacks = [
        keras.callbacks.CSVLogger(str(cfg.run_dir / "history.csv"), append=True),
        RunState(
            cfg.run_dir,
            state["best_val_accuracy"],
            time.time(),
            state["elapsed_s"],
            shadow,
            snapshot_from=cfg.epochs - max(cfg.average_counts, default=0) + 1,
        ),
    ]
    stream_seed = cfg.seed + 1000 * state["epoch"]
    if state["epoch"] < cfg.epochs:
        model.fit(
            # A fresh process replays its random streams from the start: offset the seeds by the
            # epoch so a resumed run does not see the first epochs' exact augmented batches again.
            to_dataset(x_train, y_train, cfg.batch_size, augment=augmenter(stream_seed), seed=stream_seed),
            validation_data=to_dataset(public.images, public.labels, 256),
            epochs=cfg.epochs,
            initial_epoch=state["epoch"],
            callbacks=callbacks,
            verbose=2 if cfg.verbose else 0,
        )
    final_state = json.loads(state_file.read_text())
    return export(cfg, best_path, final_state, x_train)


def candidate_weights(cfg: TrainConfig, best_path: Path, net: keras.Model, train_images: np.ndarray):
    """The single PublicTest-best epoch, then the means of the last N snapshots for each average count."""
    net.load_weights(best_path)
    yield "best PublicTest epoch", net.get_weights()
    kept = snapshots(cfg.run_dir)
    for count in cfg.average_counts:
        if count <= len(kept):
            net.set_weights(average_weights(net, kept[-count:]))
            recalibrate_batch_norm(net, train_images)
            yield f"mean of the last {count} epochs' weights", net.get_weights()


def export(cfg: TrainConfig, best_path: Path, state: dict, train_images: np.ndarray) -> dict:
    """Save the PublicTest-best candidate without optimizer state, then score it once on PrivateTest."""
    from models.evaluate import evaluate_model

    if not best_path.exists():
        raise FileNotFoundError(f"{best_path} is missing: the run's weights are gone, so there is nothing to export")
    # The shipped file is plain float32 whatever the training precision: the classifier picks
    # its own inference precision for the machine it runs on.
    keras.mixed_precision.set_global_policy("float32")
    best = build_emotion_cnn(cfg.stages, cfg.dropout)
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    chosen, best_accuracy, tried = "", -1.0, {}
    candidate = cfg.run_dir / "candidate.keras"
    for name, weights in candidate_weights(cfg, best_path, build_emotion_cnn(cfg.stages, cfg.dropout), train_images):
        best.set_weights(weights)
        best.save(candidate)
        # Candidates are compared in float32, the precision the file stores: under "auto" each
        # candidate's precision came from its own timing race, so the choice (and a re-export's)
        # could turn on which one happened to win it rather than on the weights.
        scored = evaluate_model(candidate, cfg.data, "PublicTest", precision="float32")
        tried[name] = scored["accuracy"]
        print(f"candidate {name}: PublicTest {scored['accuracy']:.4f}", flush=True)
        if scored["accuracy"] > best_accuracy:
            chosen, best_accuracy = name, scored["accuracy"]
            candidate.replace(cfg.output)
    candidate.unlink(missing_ok=True)
    public = evaluate_model(cfg.output, cfg.data, "PublicTest")
    private = evaluate_model(cfg.output, cfg.data, "PrivateTest")
    card = {
        "model": cfg.output.name,
        "architecture": best.name,
        "parameters": best.count_params(),
        "classes": list(EMOTIONS),
        "input": "48x48 uint8 grayscale face crop (see models/crops.py)",
        "data_file": cfg.data.name,
        "data_sha256": file_sha256(cfg.data),
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "epochs": state["epoch"],
        "wall_time_s": round(state["elapsed_s"], 1),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "versions": backend_versions(),
        "selection": f"{chosen}: best PublicTest accuracy in float32 of {json.dumps(tried)}",
        "public_test_accuracy": public["accuracy"],
        "private_test_accuracy": private["accuracy"],
        "private_test_accuracy_no_tta": private["accuracy_no_tta"],
        "private_test_accuracy_flip_tta": private["accuracy_flip_tta"],
        "inference": {"flip_tta": private["flip_tta"], "precision": private["precision"]},
        "accuracy_note": "public/private_test_accuracy are what EmotionClassifier.predict delivers by default",
    }
    model_card_path(cfg.output).write_text(json.dumps(card, indent=2) + "\n")
    return card


def backend_versions() -> dict[str, str]:
    """Keras' version and its backend's, for the card: {"tensorflow": ..., "keras": ...} on this project's CPUs."""
    from importlib import import_module

    backend = keras.backend.backend()
    return {backend: import_module(backend).__version__, "keras": keras.__version__}


def main_defaults() -> TrainConfig:
    return TrainConfig(data=default_data_path(), run_dir=Path("runs/emotion_cnn"))
