"""Keras model files: `.keras`, safetensors under the weights' Keras paths, and ONNX via tf2onnx.

TensorFlow, Keras and tf2onnx are imported inside the functions, so importing pairzoo never loads
them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

from pairzoo.atomic import atomic_path
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    PARITY_TOLERANCE,
    ModelFiles,
    OnnxExport,
    Parity,
)
from pairzoo.export.initializer_map import mismatches
from pairzoo.keras.models import load_keras
from pairzoo.ort_threads import cpu_session
from pairzoo.timing import timed

if TYPE_CHECKING:
    import keras


def keras_state(model: keras.Model) -> dict[str, np.ndarray]:
    """Every weight (BatchNorm's moving statistics too) by its Keras path, e.g. `head/kernel`."""
    state = {weight.path: np.ascontiguousarray(weight.numpy()) for weight in model.weights}
    if len(state) != len(model.weights):
        raise PairzooError(f"{model.name} has weights sharing one path; name its layers uniquely")
    return state


def _renumber_shared_objects(config: object, ids: dict[int, int]) -> object:
    """Keras names objects shared between layers by their memory address: number them in order."""
    if isinstance(config, dict):
        return {
            key: ids.setdefault(value, len(ids))
            if key == "shared_object_id"
            else _renumber_shared_objects(value, ids)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_renumber_shared_objects(value, ids) for value in config]
    return config


def save_keras_file(model: keras.Model, path: Path) -> Path:
    """Write the `.keras` file byte-reproducibly (atomically).

    No save date, fixed zip times, and shared objects numbered in order instead of by address.
    """
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "model.keras"
        model.save(raw)
        with (
            zipfile.ZipFile(raw) as source,
            atomic_path(path) as tmp,
            zipfile.ZipFile(tmp, "w") as target,
        ):
            for entry in source.infolist():
                data = source.read(entry)
                if entry.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)
                    data = json.dumps(metadata).encode()
                if entry.filename == "config.json":
                    data = json.dumps(_renumber_shared_objects(json.loads(data), {})).encode()
                fixed = zipfile.ZipInfo(entry.filename, date_time=(1980, 1, 1, 0, 0, 0))
                fixed.compress_type = entry.compress_type
                target.writestr(fixed, data)
    return path


def _content_name(init: onnx.TensorProto) -> str:
    """A name for a constant from its content: equal constants get one name."""
    value = numpy_helper.to_array(init)
    digest = hashlib.sha256(f"{value.dtype}{value.shape}".encode() + value.tobytes())
    return f"const_{digest.hexdigest()[:16]}"


def _canonical(graph: onnx.GraphProto, initializer_map: dict[str, dict]) -> None:
    """One order and one set of names for the graph, whatever order tf2onnx built it in.

    tf2onnx emits nodes, shares equal constants under the first name it meets and numbers its
    made-up names in an order that varies between runs. Here the weights take their Keras names,
    other constants a name from their content, the nodes a topological order whose ties are
    broken by operator, inputs and attributes, and every other tensor a name from that order.
    """
    names = {entry["initializer"]: name for name, entry in initializer_map.items()}
    for name, entry in initializer_map.items():
        entry["initializer"] = name
    kept = {}
    for init in graph.initializer:
        names.setdefault(init.name, _content_name(init))
        init.name = names[init.name]
        kept.setdefault(init.name, init)
    del graph.initializer[:]
    graph.initializer.extend(kept[name] for name in sorted(kept))
    fixed = {info.name for info in [*graph.input, *graph.output]}
    available = set(fixed) | set(names)
    pending, order = list(graph.node), []

    def key(node: onnx.NodeProto) -> tuple:
        inputs = tuple(names.get(name, name) for name in node.input)
        return node.op_type, inputs, [a.SerializeToString() for a in node.attribute]

    while pending:
        node = min((n for n in pending if set(n.input) <= available | {""}), key=key)
        pending.remove(node)
        index = len(order)
        for k, output in enumerate(node.output):
            names[output] = output if output in fixed else f"{node.op_type}_{index}_{k}"
            available.add(output)
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names[name] for name in node.output]
        node.name = f"{node.op_type}_{index}"
        order.append(node)
    del graph.node[:]
    graph.node.extend(order)
    del graph.value_info[:]


LAYOUT_OPS = ("Transpose", "Reshape")


def _layout_node(consumers: dict, name: str, constants: dict) -> onnx.NodeProto | None:
    """The Transpose or Reshape (by a constant shape) that is the only consumer of `name`."""
    nodes = consumers.get(name, [])
    if len(nodes) != 1 or nodes[0].op_type not in LAYOUT_OPS or nodes[0].input[0] != name:
        return None
    node = nodes[0]
    return node if node.op_type == "Transpose" or node.input[1] in constants else None


def _apply_layout(node: onnx.NodeProto, array: np.ndarray, constants: dict) -> np.ndarray:
    """What the Transpose or Reshape `node` makes of `array`."""
    if node.op_type == "Transpose":  # ONNX's default perm reverses the axes, like numpy's
        perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
        return np.transpose(array, perm)
    shape = constants[node.input[1]]  # 0 keeps the dimension
    return array.reshape([array.shape[i] if s == 0 else s for i, s in enumerate(shape)])


def _transposition(index: np.ndarray, shape: tuple[int, ...], name: str) -> dict:
    """The perm that moved the elements of a tensor of `shape` to `index` (their flat positions)."""
    source = np.arange(index.size).reshape(shape)
    for perm in itertools.permutations(range(len(shape))):
        if np.array_equal(np.transpose(source, perm), index):
            return {} if list(perm) == sorted(perm) else {"perm": list(perm)}
    raise PairzooError(f"tf2onnx rearranges {name} in a way that is no transposition")


def _store_weights(graph: onnx.GraphProto, state: dict[str, np.ndarray]) -> dict[str, dict]:
    """Turn the weight inputs into initializers, folding the layout changes tf2onnx made to them.

    Returns the initializer map: it follows each tensor through the folded nodes, not by value.
    """
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    initializer_map = {}
    for name, value in state.items():
        index, held = np.arange(value.size).reshape(value.shape), name
        while (node := _layout_node(consumers, held, constants)) is not None:
            value, index = (_apply_layout(node, a, constants) for a in (value, index))
            graph.node.remove(node)
            held = node.output[0]
        graph.initializer.append(numpy_helper.from_array(value, held))
        initializer_map[name] = {
            "initializer": held,
            **_transposition(index, state[name].shape, name),
        }
    kept = [i for i in graph.input if i.name not in state]
    del graph.input[:]
    graph.input.extend(kept)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    return initializer_map


def keras_to_onnx(
    model: keras.Model, opset: int = OPSET
) -> tuple[onnx.ModelProto, dict[str, dict]]:
    """The model as ONNX by tf2onnx, and its initializer map (where each Keras tensor lies in it).

    The weights enter the converted `tf.function` as arguments, so neither TensorFlow's graph
    optimiser nor tf2onnx can fold them (BatchNorm stays unfolded); they are then stored as
    initializers in the layout tf2onnx gave them (a convolution's kernel output channels first).
    Input and output are named `input` and `logits` like pairzoo's PyTorch exports.
    """
    load_keras()
    import tensorflow as tf
    import tf2onnx

    state = keras_state(model)
    trainable = len(model.trainable_variables)
    specs = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name=INPUT_NAME)]
    variables = [*model.trainable_variables, *model.non_trainable_variables]
    specs += [tf.TensorSpec(v.shape, v.dtype, name=v.path) for v in variables]

    def logits(x: tf.Tensor, *weights: tf.Tensor) -> tf.Tensor:
        values = list(weights)
        return model.stateless_call(values[:trainable], values[trainable:], x, training=False)[0]

    function = tf.function(logits, input_signature=specs)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=opset)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if name == old else name for name in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    initializer_map = _store_weights(proto.graph, state)
    _canonical(proto.graph, initializer_map)
    absent, differ = mismatches(proto, state, initializer_map)
    inputs = [i.name for i in proto.graph.input]
    if absent or differ or inputs != [INPUT_NAME]:
        raise PairzooError(
            f"tf2onnx's graph of {model.name} holds not every Keras tensor exactly: "
            f"absent {absent[:5]}, different {differ[:5]}, graph inputs {inputs[:5]}"
        )
    onnx.checker.check_model(proto)
    return proto, initializer_map


def keras_parity(proto: onnx.ModelProto, model: keras.Model, x: np.ndarray) -> Parity:
    """Difference between onnxruntime and Keras on batch `x`, and the outputs' scale."""
    session = cpu_session(proto.SerializeToString())
    ours = session.run(None, {INPUT_NAME: x.astype(np.float32)})[0]
    return Parity.between(ours, np.asarray(model(x, training=False)))


class KerasExporter:
    """Writes Keras models as `.keras`, safetensors and ONNX, parity-checked on `sample`."""

    def __init__(self, sample: np.ndarray, tolerance: float = PARITY_TOLERANCE) -> None:
        self.sample = sample
        self.tolerance = tolerance

    def save(self, model: keras.Model, stem: Path) -> ModelFiles:
        """Write `stem`.keras, `stem`.safetensors and a parity-checked `stem`.onnx, atomically."""
        keras = load_keras()
        import tensorflow as tf
        import tf2onnx

        stem = Path(stem)
        with timed("export"):
            proto, initializer_map = keras_to_onnx(model)
        with timed("parity"):
            parity = keras_parity(proto, model, self.sample).check(
                self.tolerance, stem.with_suffix(".onnx")
            )
        with timed("export"):
            save_keras_file(model, stem.with_suffix(".keras"))
            with atomic_path(stem.with_suffix(".safetensors")) as tmp:
                save_file(keras_state(model), str(tmp), metadata={"model": stem.name})
            with atomic_path(stem.with_suffix(".onnx")) as tmp:
                onnx.save(proto, str(tmp))
        versions = f"tensorflow {tf.__version__}, keras {keras.__version__}"
        exporter = f"tf2onnx {tf2onnx.__version__} ({versions})"
        onnx_file = OnnxExport(
            stem.with_suffix(".onnx"),
            OPSET,
            parity.max_abs_diff,
            exporter,
            initializer_names="mapped",
            output_scale=parity.output_scale,
            initializer_map=initializer_map,
        )
        others = {"keras": stem.with_suffix(".keras")}
        safetensors = stem.with_suffix(".safetensors")
        return ModelFiles(onnx_file, safetensors, "keras", keras.__version__, others)
