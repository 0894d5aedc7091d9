"""An ONNX graph whose float initializers are graph inputs, so any tensors can be fed by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from pairzoo.errors import PairzooError
from pairzoo.export.external_data import ReadExternal, external_tensors, inline_external


def weights_as_inputs(
    onnx_model: Path | bytes, read_external: ReadExternal | None = None
) -> tuple[bytes, dict[str, np.ndarray]]:
    """The graph with its float initializers turned into inputs (serialized), and their values.

    A file's external data is read from beside it; the bytes' only through `read_external`.
    """
    if isinstance(onnx_model, bytes):
        proto = onnx.load_from_string(onnx_model)
        if read_external is not None:
            inline_external(proto, read_external)
        elif external_tensors(proto):
            raise PairzooError("the ONNX graph keeps tensors as external data, and no reader")
    else:
        proto = onnx.load(str(onnx_model))
    graph = proto.graph
    floats = [i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    values = {i.name: numpy_helper.to_array(i) for i in floats}
    for init in floats:
        graph.initializer.remove(init)
        graph.input.append(
            onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    return proto.SerializeToString(), values


def feeds(
    defaults: Mapping[str, np.ndarray], tensors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Every weight input's value: from `tensors` where given (as many values), else the default."""
    absent = sorted(set(tensors) - set(defaults))
    if absent:
        raise PairzooError(f"tensors {absent[:5]} are not float initializers of the ONNX graph")
    values = {}
    for name, default in defaults.items():
        value = np.asarray(tensors.get(name, default), dtype=np.float32)
        if value.size != default.size:
            raise PairzooError(f"tensor {name!r} has {value.size} values, the graph {default.size}")
        values[name] = value.reshape(default.shape)
    return values
