"""Model files: safetensors weights and ONNX graphs whose initializers keep framework names."""

from __future__ import annotations

import copy
import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import safetensors.numpy
import safetensors.torch
import torch
from onnx import numpy_helper
from safetensors.numpy import load_file
from safetensors.torch import load_file as load_torch_file
from safetensors.torch import save_file
from torch import nn

from pairzoo.atomic import atomic_path
from pairzoo.errors import PairzooError
from pairzoo.ort_threads import cpu_session
from pairzoo.timing import timed

OPSET = 18
DETECTOR_OPSET = 17
PARITY_TOLERANCE = 1e-5  # of the output's scale: float32 rounding passes, export errors fail
PARITY_SCALE_FLOOR = 10.0  # outputs smaller than this are held to 1e-4 absolute
SCORE_TOLERANCE = 1e-4  # detector scores, in [0, 1]
BOX_TOLERANCE = 1e-3
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class OnnxExport:
    """An ONNX file written and checked against the framework."""

    path: Path
    opset: int
    max_abs_diff: float
    exporter: str
    parity: dict = field(default_factory=dict)
    initializer_names: str = "framework"  # "framework": every framework tensor by its name
    output_scale: float | None = None  # max |framework output| on the parity batch
    initializer_map: dict[str, dict] | None = None  # "mapped": where each framework tensor lies


@dataclass(frozen=True)
class ModelFiles:
    """A model's written files (parity-checked ONNX, safetensors, others) and what wrote them."""

    onnx: OnnxExport
    safetensors: Path
    framework: str
    framework_version: str
    others: dict[str, Path] = field(default_factory=dict)


class Exporter(Protocol):
    """Writes one framework's model as `stem`.safetensors, `stem`.onnx and its other files."""

    def save(self, model: Any, stem: Path) -> ModelFiles:
        """Write the files; return what was written."""
        ...


@dataclass(frozen=True)
class Parity:
    """Largest |ONNX − framework| difference on a batch, and the outputs' scale (max |output|)."""

    max_abs_diff: float
    output_scale: float

    @classmethod
    def between(cls, ours: np.ndarray, theirs: np.ndarray) -> Parity:
        """Compare onnxruntime's outputs `ours` with the framework's `theirs`."""
        return cls(float(np.max(np.abs(ours - theirs))), float(np.max(np.abs(theirs))))

    def check(self, tolerance: float, path: Path | str) -> Parity:
        """Self, if the difference is within `tolerance` of the output's scale; else an error."""
        allowed = tolerance * max(self.output_scale, PARITY_SCALE_FLOOR)
        if not self.max_abs_diff <= allowed:
            raise PairzooError(
                f"ONNX parity for {path}: outputs differ by {self.max_abs_diff:.2e}, more than "
                f"{allowed:.2e} ({tolerance:.0e} of the output scale {self.output_scale:.3g})"
            )
        return self


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


def _tensor_headers(source: Path | bytes) -> list[dict]:
    """The header entry (dtype, shape, offsets) of each tensor of a safetensors file or bytes."""
    if isinstance(source, bytes):
        size = int.from_bytes(source[:8], "little")
        header = json.loads(source[8 : 8 + size])
    else:
        with Path(source).open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
    return [v for k, v in header.items() if k != "__metadata__"]


def stored_dtypes(source: Path | bytes) -> set[str]:
    """The dtypes of a safetensors file's tensors (path or bytes), as its header names them."""
    return {tensor["dtype"] for tensor in _tensor_headers(source)}


def stored_values(source: Path | bytes) -> int:
    """A model's parameters as pairzoo counts them: the values of every tensor in its safetensors.

    Trainable or not (BatchNorm's running statistics count), of any dtype; read from the header.
    """
    return sum(math.prod(tensor["shape"]) for tensor in _tensor_headers(source))


def _widened(tensors: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in tensors.items()}


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy arrays; bfloat16 ones widened to float32.

    numpy has no bfloat16; widening is exact (`stored_dtypes` tells whether it happened).
    """
    if "BF16" not in stored_dtypes(path):
        return load_file(str(path))
    return _widened(load_torch_file(str(path)))


def read_tensors(data: bytes) -> dict[str, np.ndarray]:
    """A safetensors file's bytes as numpy arrays, bfloat16 widened to float32 as `load_tensors`."""
    if "BF16" not in stored_dtypes(data):
        return safetensors.numpy.load(data)
    return _widened(safetensors.torch.load(data))


def load_state(
    model: nn.Module, tensors: Mapping[str, np.ndarray | torch.Tensor], source: str
) -> nn.Module:
    """Load tensors into `model` by state-dict name (integer bookkeeping buffers may be absent).

    Any other missing or unexpected tensor is an error naming `source`.
    """
    state = {k: torch.as_tensor(v) for k, v in tensors.items()}
    result = model.load_state_dict(state, strict=False)
    missing = [name for name in result.missing_keys if not name.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise PairzooError(
            f"{source} does not fit {type(model).__name__}: missing {missing}, "
            f"unexpected {result.unexpected_keys}"
        )
    return model


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """Load a pairzoo safetensors file into `model` (integer bookkeeping buffers may be absent)."""
    return load_state(model, load_tensors(path), str(path))


# Node metadata naming the files of the exporting process: its Python traceback (venv, checkout)
SOURCE_METADATA = "pkg.torch.onnx.stack_trace"


def drop_source_paths(proto: onnx.ModelProto) -> None:
    """Remove the exporter's per-node tracebacks, in place: bytes independent of where it ran."""
    for graph in [proto.graph, *proto.functions]:
        for node in graph.node:
            kept = [p for p in node.metadata_props if p.key != SOURCE_METADATA]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)


def cast_constants(proto: onnx.ModelProto) -> None:
    """Turn `CastLike(x, constant)` into `Cast(x, to=the constant's type)`, in place.

    onnxruntime cannot fold CastLike and warns about each such node whenever it loads the graph
    (the dynamo exporter writes them for transformers' attention).
    """
    types = {
        node.output[0]: node.attribute[0].t.data_type
        for node in proto.graph.node
        if node.op_type == "Constant" and node.attribute[0].name == "value"
    }
    for node in proto.graph.node:
        if node.op_type == "CastLike" and node.input[1] in types:
            to = types[node.input[1]]
            node.op_type = "Cast"
            del node.input[1]
            node.attribute.append(onnx.helper.make_attribute("to", to))


class _TracedGraph:
    """One trace per architecture; each model's float tensors are written into it by name."""

    _key: tuple | None = None
    _template: onnx.ModelProto | None = None

    def _trace(self, model: nn.Module) -> onnx.ModelProto:
        raise NotImplementedError

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        raise NotImplementedError

    def save(self, model: nn.Module, stem: Path) -> ModelFiles:
        """Write `stem`.safetensors (float state) and a parity-checked `stem`.onnx, atomically."""
        weights = save_safetensors(model, stem.with_suffix(".safetensors"), {"model": stem.name})
        onnx_file = self.export(model, stem.with_suffix(".onnx"))
        return ModelFiles(onnx_file, weights, "pytorch", torch.__version__)

    def to_proto(self, model: nn.Module) -> onnx.ModelProto:
        """The model as an ONNX proto holding its current weights under their names."""
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


class OnnxExporter(_TracedGraph):
    """Exports models with every float tensor as its own initializer under its framework name.

    The dynamo exporter runs with `optimize=False`, so BatchNorm stays unfolded, and an LSTM's
    tensors reach ONNX's LSTM operator through Slice and Concat nodes (gates reordered). One trace
    serves every model of the same architecture: later models' weights are written into the traced
    graph, and each file is checked by `onnx.checker` and against the framework in onnxruntime.
    """

    def __init__(
        self,
        sample: np.ndarray,
        opset: int = OPSET,
        tolerance: float = PARITY_TOLERANCE,
        output_name: str = OUTPUT_NAME,
    ) -> None:
        self.sample = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
        self.opset = opset
        self.tolerance = tolerance
        self.output_name = output_name

    def _trace(self, model: nn.Module) -> onnx.ModelProto:
        batch = torch.export.Dim("batch")
        with warnings.catch_warnings():
            # nn.LSTM's export: torch notes its flat-weight views and its own deprecated size check
            warnings.filterwarnings("ignore", "The tensor attributes .*_flat_weights", UserWarning)
            warnings.filterwarnings("ignore", "_check_is_size will be removed", FutureWarning)
            program = torch.onnx.export(
                model,
                (self.sample,),
                dynamo=True,
                optimize=False,
                opset_version=self.opset,
                input_names=[INPUT_NAME],
                output_names=[self.output_name],
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
        proto = program.model_proto  # a new proto at each access
        cast_constants(proto)
        drop_source_paths(proto)
        return proto

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        """Write `model` to `path` (atomically) after checking parity in onnxruntime."""
        with timed("export"):
            proto = self.to_proto(model)
        with timed("parity"):
            parity = onnx_parity(proto.SerializeToString(), model, self.sample.numpy())
        parity.check(self.tolerance, path)
        with timed("export"), atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
        exporter = f"torch.onnx dynamo (torch {torch.__version__})"
        return OnnxExport(
            Path(path),
            self.opset,
            parity.max_abs_diff,
            exporter,
            output_scale=parity.output_scale,
        )


def upstream_initializers(proto: onnx.ModelProto, tensor: str) -> list[str]:
    """The initializers that `tensor` of the graph is computed from, sorted by name."""
    producers = {output: node for node in proto.graph.node for output in node.output}
    initializers = {init.name for init in proto.graph.initializer}
    found, pending, seen = set(), [tensor], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in initializers:
            found.add(name)
        elif name in producers:
            pending.extend(producers[name].input)
    return sorted(found)


@torch.no_grad()
def onnx_parity(onnx_model: bytes | str | Path, model: nn.Module, x: np.ndarray) -> Parity:
    """Difference between onnxruntime and the framework on batch `x`, and the outputs' scale."""
    source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    session = cpu_session(source)
    ours = session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
    model.eval()
    theirs = model(torch.from_numpy(x)).numpy()
    return Parity.between(ours, theirs)


class DetectorExporter(_TracedGraph):
    """Exports torchvision detectors (one CHW image in; boxes, scores, labels out) to ONNX.

    The TorchScript exporter (`dynamo=False`; dynamo fails on NMS) runs without constant folding,
    so BatchNorm stays unfolded and tensors keep their names. It merges initializers of equal
    value, so it traces a copy whose tensors are made distinct, then writes the real weights in
    by name. Height and width are dynamic. Parity in onnxruntime on `images`: same labels,
    scores within `score_tolerance`, boxes within `box_tolerance` pixels.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        opset: int = DETECTOR_OPSET,
        score_tolerance: float = SCORE_TOLERANCE,
        box_tolerance: float = BOX_TOLERANCE,
    ) -> None:
        self.images = [np.ascontiguousarray(image, dtype=np.float32) for image in images]
        self.opset = opset
        self.score_tolerance = score_tolerance
        self.box_tolerance = box_tolerance

    def _trace(self, model: nn.Module) -> onnx.ModelProto:
        distinct = copy.deepcopy(model).eval()
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for tensor in float_state(distinct).values():
                tensor.add_(torch.rand(tensor.shape, generator=generator) * 1e-3)
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                distinct,
                ([torch.from_numpy(self.images[0])],),
                buffer,
                dynamo=False,
                opset_version=self.opset,
                do_constant_folding=False,
                input_names=[INPUT_NAME],
                output_names=list(DETECTION_OUTPUTS),
                dynamic_axes={
                    INPUT_NAME: {1: "height", 2: "width"},
                    **{name: {0: "detections"} for name in DETECTION_OUTPUTS},
                },
            )
        return onnx.load_from_string(buffer.getvalue())

    def export(self, model: nn.Module, path: Path) -> OnnxExport:
        """Write `model` to `path` (atomically) after checking its detections in onnxruntime."""
        with timed("export"):
            proto = self.to_proto(model)
        with timed("parity"):
            parity = detection_parity(proto.SerializeToString(), model, self.images)
        if parity["scores"] > self.score_tolerance or parity["boxes"] > self.box_tolerance:
            raise PairzooError(
                f"ONNX parity for {path}: scores differ by {parity['scores']:.2e} "
                f"(limit {self.score_tolerance:.0e}), boxes by {parity['boxes']:.2e} pixels "
                f"(limit {self.box_tolerance:.0e})"
            )
        with timed("export"), atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
        exporter = (
            f"torch.onnx TorchScript, dynamo=False, no constant folding (torch {torch.__version__})"
        )
        diff = max(parity["scores"], parity["boxes"])
        return OnnxExport(Path(path), self.opset, diff, exporter, parity)


DETECTION_OUTPUTS = ("boxes", "scores", "labels")


@torch.no_grad()
def detection_parity(
    onnx_model: bytes | str | Path, model: nn.Module, images: Sequence[np.ndarray]
) -> dict:
    """Largest score and box differences between onnxruntime and the framework over `images`.

    Each image must give as many detections on both sides, paired one to one with equal labels;
    detections are paired by nearest score and box, since near-equal scores may swap order.
    """
    source = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    session = cpu_session(source)
    model.eval()
    worst = {"boxes": 0.0, "scores": 0.0}
    for image in images:
        ours = dict(zip(DETECTION_OUTPUTS, session.run(None, {INPUT_NAME: image}), strict=True))
        theirs = {k: v.numpy() for k, v in model([torch.from_numpy(image)])[0].items()}
        if len(ours["labels"]) != len(theirs["labels"]):
            raise PairzooError(
                f"ONNX gives {len(ours['labels'])} detections, the framework "
                f"{len(theirs['labels'])}, on a {image.shape} image"
            )
        score_gap = np.abs(theirs["scores"][:, None] - ours["scores"][None, :])
        box_gap = np.abs(theirs["boxes"][:, None, :] - ours["boxes"][None, :, :]).max(-1, initial=0)
        cost = np.where(theirs["labels"][:, None] == ours["labels"][None, :], 0.0, np.inf)
        cost = cost + score_gap + box_gap
        free = np.ones(len(ours["labels"]), dtype=bool)
        for row in range(len(theirs["labels"])):
            column = int(np.argmin(np.where(free, cost[row], np.inf)))
            if not np.isfinite(cost[row, column]):
                raise PairzooError(f"ONNX and framework labels differ on a {image.shape} image")
            free[column] = False
            worst["scores"] = max(worst["scores"], float(score_gap[row, column]))
            worst["boxes"] = max(worst["boxes"], float(box_gap[row, column]))
    sizes = sorted({tuple(image.shape[1:]) for image in images})
    return {**worst, "images": len(images), "sizes": [list(size) for size in sizes]}
