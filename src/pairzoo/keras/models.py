"""Keras 3 networks under the PyTorch functions' names: build, re-head, grow, train, measure.

`build_model`, `remap_head`, `grow_head`, `train` and `accuracy` mean what they mean in
`pairzoo.models.build` and `pairzoo.train.loop`. TensorFlow and Keras are imported inside the
functions, so importing pairzoo never loads them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from pairzoo import architectures
from pairzoo.errors import PairzooError
from pairzoo.models.pretrained import Pretrained
from pairzoo.profiles import PROFILES
from pairzoo.timing import timed
from pairzoo.train.config import TrainConfig

if TYPE_CHECKING:
    import keras

HEAD = "head"  # the layer name the builders give the head, as `pairzoo.architectures` records
HEADS = architectures.heads("keras")
KERAS_IMAGE_SIZE = architectures.ARCHITECTURES["keras-mobilenet_v2"].input_size[-1]
DEFAULT_ARCHITECTURE = {p: architectures.default("keras-classifier", p) for p in PROFILES}


def load_keras(seed: int | None = None, threads: int | None = None) -> ModuleType:
    """Import Keras with deterministic ops; seed every generator when `seed` is given.

    oneDNN's reordered kernels are switched off (before TensorFlow loads): results then do not
    depend on the CPU, and TensorFlow has no start-up message to print. `threads` caps
    TensorFlow's thread pools; it only takes effect before TensorFlow's first operation.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras


def digits_cnn(
    num_classes: int, input_shape: Sequence[int], seed: int, width: int = 32
) -> keras.Model:
    """The Keras twin of `models.build.DigitsCNN`; takes NCHW images like the PyTorch nets."""
    keras = load_keras(seed)
    layers = keras.layers
    inputs = keras.Input(tuple(input_shape), name="input")
    x = layers.Permute((2, 3, 1), name="to_channels_last")(inputs)
    for block, channels in enumerate((width, 2 * width, 4 * width), start=1):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"block{block}_conv")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn")(x)
        x = layers.ReLU(name=f"block{block}_relu")(x)
        if block == 2:
            x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    outputs = layers.Dense(num_classes, name=HEAD)(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def mobilenet_v2(
    num_classes: int, input_shape: Sequence[int], seed: int, pretrained: Pretrained
) -> keras.Model:
    """Keras's MobileNetV2 (α 1.0) with `pretrained` ImageNet weights and a fresh linear head.

    NCHW images are permuted and resized to the weights' side inside the network, so it takes the
    dataset's images as they are.
    """
    keras = load_keras(seed)
    layers = keras.layers
    size = KERAS_IMAGE_SIZE
    inputs = keras.Input(tuple(input_shape), name="input")
    x = layers.Permute((2, 3, 1), name="to_channels_last")(inputs)
    x = layers.Resizing(size, size, name="resize")(x)
    backbone = keras.applications.MobileNetV2(
        input_tensor=x, include_top=False, weights=None, pooling="avg"
    )
    try:
        backbone.load_weights(str(pretrained.path))
    except (OSError, ValueError) as exc:
        raise PairzooError(f"{pretrained.path} does not fit MobileNetV2: {exc}") from exc
    outputs = layers.Dense(num_classes, name=HEAD)(backbone.output)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


def build_model(
    architecture: str,
    num_classes: int,
    input_shape: Sequence[int],
    seed: int,
    pretrained: Pretrained | None = None,
) -> keras.Model:
    """The digits CNN (fresh), or MobileNetV2 from `pretrained` ImageNet weights; seeded.

    Takes the image shape where `pairzoo.models.build.build_model` takes the channels: Keras builds
    the input too.
    """
    known = {name: architectures.ARCHITECTURES[name] for name in architectures.names("keras")}
    record = known.get(architecture)
    if record is not None and (record.weights is None) == (pretrained is None):
        if pretrained is None:
            return record.build()(num_classes, input_shape, seed)
        return record.build()(num_classes, input_shape, seed, pretrained)
    start = {True: "from pretrained weights", False: "fresh"}
    choices = [f"{name} ({start[r.weights is not None]})" for name, r in known.items()]
    raise PairzooError(f"architecture {architecture!r}: choose {' or '.join(choices)}")


def _head(architecture: str) -> str:
    if architecture not in HEADS:
        raise PairzooError(f"no known head for architecture {architecture!r}")
    return HEADS[architecture]


def remap_head(
    model: keras.Model, architecture: str, sources: Sequence[int | None], seed: int
) -> keras.Model:
    """A copy of `model` whose head has one output per entry of `sources`.

    Output `i` keeps the old head's column `sources[i]` (Keras kernels are inputs × outputs);
    a `None` slot gets a fresh one (seeded). Every other layer keeps its weights.
    """
    keras = load_keras(seed)
    head = _head(architecture)
    old_kernel, old_bias = model.get_layer(head).get_weights()
    bad = [s for s in sources if s is not None and not 0 <= s < old_kernel.shape[1]]
    if bad:
        raise PairzooError(f"head columns {bad} do not exist (the head has {old_kernel.shape[1]})")

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name == head:
            return keras.layers.Dense(len(sources), name=head)
        return layer.__class__.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in new.layers:
        if layer.name != head and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    kernel, bias = new.get_layer(head).get_weights()
    for column, source in enumerate(sources):
        if source is not None:
            kernel[:, column], bias[column] = old_kernel[:, source], old_bias[source]
    new.get_layer(head).set_weights([kernel, bias])
    return new


def grow_head(
    model: keras.Model, architecture: str, added: int, seed: int
) -> tuple[keras.Model, dict[str, list[list[int]]]]:
    """A copy of `model` whose head gains `added` fresh outputs after its own (columns copied).

    Also returns, per head tensor by Keras path, the block ([start, stop) per axis) holding the old.
    """
    old = model.get_layer(_head(architecture))
    outputs = old.get_weights()[1].shape[0]
    grown = remap_head(model, architecture, [*range(outputs), *[None] * added], seed)
    return grown, {w.path: [[0, n] for n in w.shape] for w in old.weights}


def train(model: keras.Model, x: np.ndarray, y: np.ndarray, config: TrainConfig) -> None:
    """Train `model` in place like `pairzoo.train.loop.train`: SGD or Adam, cosine or constant rate.

    Only layers named with the prefix `config.trainable` learn; the others (BatchNorm statistics
    too) stay bit-identical.
    """
    if len(x) == 0:
        raise PairzooError("cannot train on an empty training set")
    keras = load_keras(config.seed)
    steps = config.epochs * -(-len(x) // config.batch_size)
    rate = config.lr
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=steps)
    elif config.schedule != "constant":
        raise PairzooError(f"unknown schedule {config.schedule!r}: choose cosine or constant")
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(
            rate, momentum=config.momentum, weight_decay=config.weight_decay
        )
    elif config.optimizer == "adam":
        optimizer = keras.optimizers.Adam(rate, weight_decay=config.weight_decay)
    else:
        raise PairzooError(f"unknown optimizer {config.optimizer!r}: choose sgd or adam")
    for layer in model.layers:
        layer.trainable = layer.name.startswith(config.trainable)
    if not model.trainable_weights:
        raise PairzooError(f"no layers start with trainable prefix {config.trainable!r}")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    try:
        with timed("train"):
            model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
    finally:
        for layer in model.layers:
            layer.trainable = True


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent."""
    with timed("evaluate"):
        correct = 0
        for start in range(0, len(x), batch_size):
            logits = np.asarray(model(x[start : start + batch_size], training=False))
            correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
        return 100.0 * correct / len(x)
