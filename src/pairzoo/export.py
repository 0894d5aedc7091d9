"""Model files: safetensors weights and ONNX graphs whose initializers keep framework names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from safetensors.numpy import load_file
from safetensors.torch import save_file
from torch import nn

from pairzoo.atomic import atomic_path
from pairzoo.errors import PairzooError
from pairzoo.timing import timed

OPSET = 18
PARITY_TOLERANCE = 1e-4
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class OnnxExport:
    """An ONNX file written and checked against the framework."""

    path: Path
    opset: int
    max_abs_diff: float
    exporter: str
    initializer_names: str = "framework"  # "framework": every framework tensor by its name


def float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's floating-point tensors (parameters and running statistics) by state-dict name.

    Integer bookkeeping buffers such as BatchNorm's `num_batches_tracked` are left out: they are
    not part of the network's function and not in its ONNX graph.
    """
    return {
        name: tensor.detach().cpu().contiguous()
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point()
    }


def save_safetensors(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write the model's float state to `path` atomically."""
    with timed("export"), atomic_path(path) as tmp:
        save_file(float_state(model), str(tmp), metadata=metadata)
    return path


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays."""
    return load_file(str(path))


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load a pairzoo safetensors file into `model` (integer bookkeeping buffers may be absent)."""
    state = {name: torch.from_numpy(array) for name, array in load_tensors(path).items()}
    result = model.load_state_dict(state, strict=False)
    missing = [name for name in result.missing_keys if not name.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise PairzooError(
            f"{path} does not fit {type(model).__name__}: missing {missing}, "
            f"unexpected {result.unexpected_keys}"
        )
    return model


class OnnxExporter:
    """Exports models with every float tensor as its own initializer under its framework name.

    The dynamo exporter runs with `optimize=False`, so BatchNorm stays unfolded. One trace serves
    every model of the same architecture: later models' weights are written into the traced graph,
    and each file is checked by `onnx.checker` and against the framework in onnxruntime.
    """

    def __init__(self, sample: np.ndarray, opset: int = OPSET, tolerance: float = PARITY_TOLERANCE):
        self.sample = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
        self.opset = opset
        self.tolerance = tolerance
        self._key: tuple | None = None
        self._template: onnx.ModelProto | None = None

    def _trace(self, model: nn.Module) -> onnx.ModelProto:
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(
            model,
            (self.sample,),
            dynamo=True,
            optimize=False,
            opset_version=self.opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
        return program.model_proto

    def to_proto(self, model: nn.Module) -> onnx.ModelProto:
        """The model as an ONNX proto holding its current weights."""
        model.eval()
        state = float_state(model)
        key = (type(model).__qualname__, tuple((k, tuple(v.shape)) for k, v in state.items()))
        if key != self._key:
            self._template, self._key = self._trace(model), key
        proto = onnx.ModelProto()
        proto.CopyFrom(self._template)
        initializers = {init.name: init for init in proto.graph.initializer}
        absent = sorted(set(state) - set(initializers))
        if absent:
            raise PairzooError(f"the ONNX graph lacks framework tensors {absent}")
        for name, tensor in state.items():
            initializers[name].CopyFrom(numpy_helper.from_array(tensor.numpy(), name))
        onnx.checker.check_model(proto)
        return proto

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        """Write `model` to `path` (atomically) after checking parity in onnxruntime."""
        with timed("export"):
            proto = self.to_proto(model)
        with timed("parity"):
            diff = onnx_parity(proto.SerializeToString(), model, self.sample.numpy())
        if diff > self.tolerance:
            raise PairzooError(f"ONNX parity {diff:.2e} exceeds {self.tolerance:.0e} for {path}")
        with timed("export"), atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
        return OnnxExport(
            Path(path), self.opset, diff, f"torch.onnx dynamo (torch {torch.__version__})"
        )


@torch.no_grad()
def onnx_parity(onnx_model: bytes | str | Path, model: nn.Module, x: np.ndarray) -> float:
    """Max absolute difference between onnxruntime and the framework on batch `x`."""
    source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    ours = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    model.eval()
    theirs = model(torch.from_numpy(x)).numpy()
    return float(np.max(np.abs(ours - theirs)))
