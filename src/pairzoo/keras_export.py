"""Keras model files: `.keras`, safetensors under the weights' Keras paths, and ONNX via tf2onnx.

TensorFlow, Keras and tf2onnx are imported inside the functions, so importing pairzoo never loads
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import save_file

from pairzoo.atomic import atomic_path
from pairzoo.errors import PairzooError
from pairzoo.export import INPUT_NAME, OPSET, OUTPUT_NAME, PARITY_TOLERANCE, OnnxExport
from pairzoo.keras_models import load_keras
from pairzoo.publish import ModelFiles
from pairzoo.timing import timed

if TYPE_CHECKING:
    import keras


def keras_state(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight (BatchNorm's moving statistics too) by its Keras path, e.g. `head/kernel`."""
    state = {weight.path: np.ascontiguousarray(weight.numpy()) for weight in model.weights}
    if len(state) != len(model.weights):
        raise PairzooError(f"{model.name} has weights sharing one path; name its layers uniquely")
    return state


def keras_to_onnx(model: keras.Model, opset: int = OPSET) -> onnx.ModelProto:
    """The model as ONNX by tf2onnx, from a `tf.function` with a batch-dynamic input signature.

    Input and output are named `input` and `logits` like pairzoo's PyTorch exports. The
    initializers keep tf2onnx's names: TensorFlow's graph optimiser folds BatchNorm into the
    convolutions, so Keras's tensors are not all in the graph.
    """
    load_keras()
    import tensorflow as tf
    import tf2onnx

    spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if name == old else name for name in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    onnx.checker.check_model(proto)
    return proto


def keras_parity(proto: onnx.ModelProto, model: keras.Model, x: np.ndarray) -> float:
    """Max absolute difference between onnxruntime and Keras on batch `x`."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = session.run(None, {INPUT_NAME: x.astype(np.float32)})[0]
    return float(np.max(np.abs(ours - np.asarray(model(x, training=False)))))


def save_keras(
    model: keras.Model, stem: Path, sample: np.ndarray, tolerance: float = PARITY_TOLERANCE
) -> ModelFiles:
    """Write `stem`.keras, `stem`.safetensors and a parity-checked `stem`.onnx, each atomically."""
    keras = load_keras()
    import tensorflow as tf
    import tf2onnx

    stem = Path(stem)
    with timed("export"):
        proto = keras_to_onnx(model)
    with timed("parity"):
        diff = keras_parity(proto, model, sample)
    if diff > tolerance:
        raise PairzooError(f"ONNX parity {diff:.2e} exceeds {tolerance:.0e} for {stem}.onnx")
    with timed("export"):
        with atomic_path(stem.with_suffix(".keras"), suffix=".tmp.keras") as tmp:
            model.save(tmp)
        with atomic_path(stem.with_suffix(".safetensors")) as tmp:
            save_file(keras_state(model), str(tmp), metadata={"model": stem.name})
        with atomic_path(stem.with_suffix(".onnx")) as tmp:
            onnx.save(proto, str(tmp))
    exporter = (
        f"tf2onnx {tf2onnx.__version__} (tensorflow {tf.__version__}, keras {keras.__version__})"
    )
    return ModelFiles(
        OnnxExport(stem.with_suffix(".onnx"), OPSET, diff, exporter, initializer_names="exporter"),
        stem.with_suffix(".safetensors"),
        {"keras": stem.with_suffix(".keras")},
    )
