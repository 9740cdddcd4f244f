"""An inference copy of a trained net, its batch normalisation folded into the convolutions before it.

At inference a BatchNormalization layer is a fixed affine map per channel, y = s x + (beta - s
mean) with s = gamma / sqrt(variance + epsilon), so after a convolution it folds exactly into
that convolution: the kernel times s, and a bias of beta - s mean (plus s times the old bias).
The activation after it becomes the convolution's own, which TensorFlow's CPU kernels run
fused with it; a Rescaling in front of a convolution folds into its kernel (zero padding
stays zero), and Dropout, the identity at inference, goes. The net's eight
convolution + normalisation + ReLU blocks become eight fused convolutions: the same answers
to about 1e-6, and about a fifth more faces per second (BENCHMARKS.md, classifier
throughput). The file on disk keeps the layers it was trained with; only `EmotionClassifier`
runs the folded copy.

Folded: a model whose layers form one chain (each layer fed by the one before), and the
chains nested in a model of several (an ensemble's members, `models/ensemble.py`). Any other
layer is kept as it is, shared with the original.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


def folded_for_inference(model: keras.Model) -> keras.Model:
    """A model that computes what `model` computes at inference, with fewer layers (see the module docstring)."""
    if is_chain(model):
        return folded_chain(model)

    def fold_nested(layer: keras.layers.Layer) -> keras.layers.Layer:
        return folded_for_inference(layer) if isinstance(layer, keras.Model) else layer

    return keras.models.clone_model(model, clone_function=fold_nested)


def is_chain(model: keras.Model) -> bool:
    """Whether every layer of a one-input, one-output functional model is fed by the one before it, once."""
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        return False
    if not model.layers or not isinstance(model.layers[0], layers.InputLayer):
        return False
    previous = model.layers[0]
    for layer in model.layers[1:]:
        if len(layer._inbound_nodes) != 1 or isinstance(layer, keras.Model):
            return False
        if layer.input is not previous.output:
            return False
        previous = layer
    return previous.output is model.outputs[0]


def channel_scale_and_shift(norm: layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """(s, shift) with norm(x) = s x + shift per channel at inference."""
    variance = keras.ops.convert_to_numpy(norm.moving_variance).astype(np.float64)
    mean = keras.ops.convert_to_numpy(norm.moving_mean).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(norm.gamma).astype(np.float64) if norm.scale else 1.0
    beta = keras.ops.convert_to_numpy(norm.beta).astype(np.float64) if norm.center else 0.0
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return scale, beta - scale * mean


def foldable_norm(layer: keras.layers.Layer | None) -> bool:
    """Whether `layer`, after a linear convolution, is a normalisation over its channels (the last axis)."""
    return isinstance(layer, layers.BatchNormalization) and layer.axis in (-1, 3)


def fused_conv(
    conv: layers.Conv2D, norm: layers.BatchNormalization | None, input_scale: float, activation: str
) -> tuple[layers.Conv2D, list[np.ndarray]]:
    """A convolution with the input's scale, the normalisation and the activation folded in; and its weights."""
    trained_kernel = keras.ops.convert_to_numpy(conv.kernel)
    kernel = trained_kernel.astype(np.float64) * input_scale
    bias = keras.ops.convert_to_numpy(conv.bias).astype(np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    if norm is not None:
        scale, shift = channel_scale_and_shift(norm)
        kernel, bias = kernel * scale, bias * scale + shift
    config = {**conv.get_config(), "use_bias": True, "activation": activation}
    dtype = trained_kernel.dtype
    return layers.Conv2D.from_config(config), [kernel.astype(dtype), bias.astype(dtype)]


def folded_chain(model: keras.Model) -> keras.Model:
    chain = model.layers[1:]
    inputs = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name=model.layers[0].name)
    x, index, pending = inputs, 0, None  # pending: a Rescaling not yet folded into a convolution
    while index < len(chain):
        layer = chain[index]
        before_conv = index + 1 < len(chain) and isinstance(chain[index + 1], layers.Conv2D)
        foldable_scale = isinstance(layer, layers.Rescaling) and np.ndim(layer.scale) == 0 and layer.offset == 0
        if foldable_scale and before_conv and pending is None:
            pending, index = layer, index + 1
            continue
        if isinstance(layer, layers.Conv2D) and layer.get_config()["activation"] == "linear":
            following = chain[index + 1] if index + 1 < len(chain) else None
            norm = following if foldable_norm(following) else None
            after = index + 1 + (norm is not None)
            activation = "linear"
            if norm is not None and after < len(chain) and isinstance(chain[after], layers.Activation):
                activation, after = chain[after].get_config()["activation"], after + 1
            if norm is not None or pending is not None:
                conv, weights = fused_conv(layer, norm, float(pending.scale) if pending else 1.0, activation)
                x = conv(x)
                conv.set_weights(weights)
                pending, index = None, after
                continue
        if isinstance(layer, layers.Dropout):
            index += 1
            continue
        if pending is not None:  # the convolution after it had an activation of its own: nothing folded
            x, pending = pending(x), None
        x, index = layer(x), index + 1
    return keras.Model(inputs, x, name=model.name)
