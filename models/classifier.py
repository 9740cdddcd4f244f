"""Batched expression classification of 48x48 grayscale faces."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from models.calibration import calibrated
from models.folding import folded_for_inference
from models.hardware import measured_precision, resolve_precision
from models.labels import EMOTIONS, FACE_SIZE
from models.weights import DEFAULT_MODEL_PATH, model_card_path

OUTPUT_LAYER = "emotion"  # the softmax stays float32 whatever the compute precision
PROBE_FACES, PROBE_RUNS = 256, 3  # what "auto" times each precision on (the best of the runs, after a warm-up)
Forward = Callable[[np.ndarray], np.ndarray]


def with_compute_dtype(model: keras.Model, policy: str) -> keras.Model:
    """A copy of `model` whose layers compute in `policy` (weights identical, softmax kept float32).

    Nested models (an ensemble's members, models/ensemble.py) are cloned layer by layer too.
    """
    if policy == "float32":
        return model

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.name != OUTPUT_LAYER:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    clone.set_weights(model.get_weights())
    return clone


def compiled_forward(model: keras.Model, mirrored: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """One traced graph for every batch size: eager Keras calls cost about a third of the speed.

    `mirrored`: flip averaging, the mean of the faces' and their mirror images' probabilities,
    as two independent branches of the same graph, which TensorFlow runs side by side on the
    cores; two calls one after the other left them idle in the small late layers (506 against
    442 faces/s, BENCHMARKS.md).
    """

    def probabilities(x):
        return keras.ops.cast(model(x, training=False), "float32")

    def forward(x):
        if not mirrored:
            return probabilities(x)
        return (probabilities(x) + probabilities(keras.ops.flip(x, axis=2))) / 2

    if keras.backend.backend() != "tensorflow":
        return lambda x: keras.ops.convert_to_numpy(forward(x))
    import tensorflow as tf

    spec = tf.TensorSpec((None, FACE_SIZE, FACE_SIZE, 1), tf.float32)
    graph = tf.function(forward, input_signature=[spec])
    return lambda x: graph(tf.constant(x)).numpy()


FASTEST: dict[tuple[str, int], str] = {}  # per model file and its mtime: the precision "auto" measured fastest


def timed(forward: Forward, probe: np.ndarray) -> float:
    forward(probe)  # traces the graph and warms it
    best = float("inf")
    for _ in range(PROBE_RUNS):
        started = time.perf_counter()
        forward(probe)
        best = min(best, time.perf_counter() - started)
    return best


def fastest_variant(model: keras.Model, key: tuple[str, int]) -> tuple[str, keras.Model, Forward]:
    """The precision "auto" means here, with the model cloned to it and traced: float32, or bfloat16 where the
    CPU has its units and a probe batch runs faster in it (`models.hardware.measured_precision`); measured
    once per model file (`key`: its path and mtime) and process."""
    variants: dict[str, tuple[keras.Model, Forward]] = {}

    def variant(policy: str) -> tuple[keras.Model, Forward]:
        if policy not in variants:
            clone = with_compute_dtype(model, policy)
            variants[policy] = (clone, compiled_forward(clone))
        return variants[policy]

    probe = np.random.default_rng(0).integers(0, 256, (PROBE_FACES, FACE_SIZE, FACE_SIZE, 1)).astype(np.float32)

    def seconds(policy: str) -> float:
        return timed(variant(policy)[1], probe)

    if key not in FASTEST:
        FASTEST[key] = measured_precision("auto", seconds)
    return FASTEST[key], *variant(FASTEST[key])


def read_card(model_path: Path) -> dict:
    """The model card beside `model_path`, or {} for a model file without one."""
    card = model_card_path(model_path)
    return json.loads(card.read_text()) if card.exists() else {}


def calibration_profile(card: dict, profile: str | None) -> tuple[str | None, dict]:
    """(name, {temperature, bias, abstain_below}) of the card's profile `profile` (None: its default).

    A card from before profiles (one temperature, one threshold) is its own single profile.
    """
    calibration = card.get("calibration", {})
    profiles = calibration.get("profiles")
    if not profiles:
        if profile is not None:
            raise ValueError(f"the model card has no calibration profiles (asked for {profile!r})")
        threshold = card.get("abstention", {}).get("threshold", 0.0)
        return None, {"temperature": calibration.get("temperature", 1.0), "abstain_below": threshold}
    name = profile or calibration.get("default_profile") or next(iter(profiles))
    if name not in profiles:
        raise ValueError(f"the model card has no calibration profile {name!r} (it has {', '.join(sorted(profiles))})")
    return name, profiles[name]


class EmotionClassifier:
    """Loads the committed model (or `model_path`) once; `predict` maps (N, 48, 48) uint8 to (N, 7) probabilities.

    `precision="auto"` runs the convolutions in float32, or in bfloat16 on a CPU with native
    bfloat16 units where a probe batch measures it faster (same accuracy to 0.1 point; once per
    model file and process, about 2 s): 1.5x float32's faces/s on one host, 0.65x on another.
    With `flip_tta` each face is also classified mirrored and the two answers averaged. The
    net runs with its batch normalisation folded into its convolutions (`models.folding`: the
    same answers to about 1e-6, a fifth faster); `model` is that folded copy.

    The model card beside the model file sets the defaults: `inference.flip_tta` (whether the
    mirrored pass is on) and a calibration profile, `calibration.profiles[profile]` (default
    `calibration.default_profile`, "photos"): how the probabilities are scaled,
    softmax(log(p) / temperature + bias), so a 0.8 means right about 80 % of the time on faces
    of that kind, and `abstain_below`: a face whose top probability is below it should be
    reported as uncertain (the kept faces were right at least 80 % of the time on that
    profile's calibration set). "photos" (real photos: what the product analyses) scales by a
    temperature alone, so its argmax is the model's; "fer2013" (FER2013's lab-like crops) also
    has per-class biases, then maps the top probability to how often it was right (an isotonic
    map fitted on PublicTest, `top_label_map`; the argmax stays). An explicit `temperature`
    replaces the profile's scaling and map (1.0: the raw probabilities). Without a card: one
    pass, temperature 1, no abstention.
    """

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        flip_tta: bool | None = None,
        temperature: float | None = None,
        profile: str | None = None,
        batch_size: int = 256,
        precision: str = "auto",
    ):
        self.model_path = Path(model_path or DEFAULT_MODEL_PATH)
        if not self.model_path.exists():
            raise FileNotFoundError(f"expression model not found: {self.model_path}")
        trained = keras.models.load_model(self.model_path, compile=False)
        self.parameters = trained.count_params()  # as trained; folding drops the normalisation's statistics
        loaded = folded_for_inference(trained)
        if precision == "auto":
            key = (str(self.model_path.resolve()), self.model_path.stat().st_mtime_ns)
            self.precision, self.model, self._forward_batch = fastest_variant(loaded, key)
        else:
            self.precision = resolve_precision(precision)
            self.model = with_compute_dtype(loaded, self.precision)
            self._forward_batch = compiled_forward(self.model)
        card = read_card(self.model_path)
        self.flip_tta = bool(card.get("inference", {}).get("flip_tta", False)) if flip_tta is None else flip_tta
        self.profile, scaling = calibration_profile(card, profile)
        self.temperature = float(scaling.get("temperature", 1.0) if temperature is None else temperature)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        bias = scaling.get("bias") if temperature is None else None
        self.bias = None if bias is None or not np.any(bias) else np.asarray(bias, dtype=np.float64)
        self.top_label_map = scaling.get("top_label_map") if temperature is None else None
        self.abstain_below = float(scaling.get("abstain_below", 0.0))
        self.batch_size = batch_size
        self._mirrored_batch: Forward | None = None  # flip averaging's graph, traced when first needed
        self.classes = EMOTIONS

    def predict(self, faces: np.ndarray) -> np.ndarray:
        faces = np.asarray(faces)
        if faces.ndim != 3 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE):
            raise ValueError(f"expected faces of shape (N, {FACE_SIZE}, {FACE_SIZE}), got {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
        x = faces.astype(np.float32)[..., None]
        if self.flip_tta:
            if self._mirrored_batch is None:
                self._mirrored_batch = compiled_forward(self.model, mirrored=True)
            probs = self._forward(x, self._mirrored_batch)
        else:
            probs = self._forward(x, self._forward_batch)
        if self.temperature == 1.0 and self.bias is None and self.top_label_map is None:
            return probs
        return calibrated(probs, self.temperature, self.bias, self.top_label_map)

    def is_uncertain(self, probs: np.ndarray) -> np.ndarray:
        """(N,) bool: the faces whose top probability is under `abstain_below`."""
        return np.asarray(probs).max(1) < self.abstain_below

    def _forward(self, x: np.ndarray, forward: Forward) -> np.ndarray:
        out = [forward(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out).astype(np.float32)
