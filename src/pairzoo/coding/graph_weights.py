"""An ONNX graph's float weights, and onnxruntime runs of the graph with other values in place.

For a large test set the values are put inside the graph, in a session built per set of values:
onnxruntime then folds BatchNorm into the convolutions and prepacks their weights
(`benchmarks/onnx_weights.py`: ResNet-50 ×1.5–1.7 on two cores, ×2.2 on sixteen); its
`add_initializer` override would be ignored by the layout optimisations. For a small test set
building costs more than it saves: the values are fed as graph inputs to one session, as they
are for a graph over protobuf's 2 GiB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from pairzoo.errors import PairzooError
from pairzoo.export.external_data import ReadExternal, external_tensors, inline_external
from pairzoo.ort_threads import session_options

PROTOBUF_LIMIT = 2**31
# Test sets of this many examples or more are run with the weights inside the graph. On the ci
# profile's sets (342-360 examples) a session built per score costs up to 130 ms more than it
# saves (the language model's), on ImageNet's 50,000 it halves the time (`onnx_weights.py`).
INSIDE_FROM = 2048


def _loaded(onnx_model: Path | bytes, read_external: ReadExternal | None) -> onnx.ModelProto:
    """The graph with any external data inside; a file's is read from beside it."""
    if not isinstance(onnx_model, bytes):
        return onnx.load(str(onnx_model))
    proto = onnx.load_from_string(onnx_model)
    if read_external is not None:
        inline_external(proto, read_external)
    elif external_tensors(proto):
        raise PairzooError("the ONNX graph keeps tensors as external data, and no reader")
    return proto


class GraphWeights:
    """An ONNX graph (a file or its bytes) whose float initializers can take any values.

    `examples`: how many the sessions will run on; from `INSIDE_FROM` the values go inside.
    """

    def __init__(
        self,
        onnx_model: Path | bytes,
        providers: Sequence[str | tuple[str, dict]],
        examples: int,
        read_external: ReadExternal | None = None,
    ) -> None:
        self.proto = _loaded(onnx_model, read_external)
        self.providers = list(providers)
        floats = [i for i in self.proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
        self.defaults = {i.name: numpy_helper.to_array(i) for i in floats}
        self._fed: ort.InferenceSession | None = None
        if examples < INSIDE_FROM or self.proto.ByteSize() >= PROTOBUF_LIMIT:
            for init in floats:
                self.proto.graph.initializer.remove(init)
                self.proto.graph.input.append(
                    onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
                )
            self._fed = self._session()
        self.floats = {i.name: i for i in self.proto.graph.initializer if i.name in self.defaults}

    def _session(self) -> ort.InferenceSession:
        data = self.proto.SerializeToString()
        return ort.InferenceSession(data, session_options(), providers=self.providers)

    def session(self, tensors: Mapping[str, np.ndarray]) -> ort.InferenceSession | FedWeights:
        """A session of the graph with `tensors` (by initializer name; the rest its own) inside."""
        values = feeds(self.defaults, tensors)
        if self._fed is not None:
            return FedWeights(self._fed, values)
        for name, init in self.floats.items():
            init.raw_data = values[name].tobytes()
            del init.float_data[:]
        return self._session()


class FedWeights:
    """A session of a graph that takes its weights as inputs, run with `values` fed to them."""

    def __init__(self, session: ort.InferenceSession, values: dict[str, np.ndarray]) -> None:
        self.fed, self.values = session, values

    def get_inputs(self) -> list[ort.NodeArg]:
        """The graph's inputs other than its weights."""
        return [i for i in self.fed.get_inputs() if i.name not in self.values]

    def run(self, names: Sequence[str] | None, given: Mapping[str, np.ndarray]) -> list:
        """The outputs `names` (None: all) of the graph on inputs `given`, with the weights."""
        return self.fed.run(names, {**self.values, **given})

    def __getattr__(self, name: str) -> object:  # the session's others: get_providers, ...
        return getattr(self.fed, name)


def feeds(
    defaults: Mapping[str, np.ndarray], tensors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Every weight's value: from `tensors` where given (as many values), else the default."""
    absent = sorted(set(tensors) - set(defaults))
    if absent:
        raise PairzooError(f"tensors {absent[:5]} are not float initializers of the ONNX graph")
    values = {}
    for name, default in defaults.items():
        value = np.asarray(tensors.get(name, default), dtype=np.float32)
        if value.size != default.size:
            raise PairzooError(f"tensor {name!r} has {value.size} values, the graph {default.size}")
        values[name] = np.asarray(value.reshape(default.shape), order="C")  # 0-d stays 0-d
    return values
