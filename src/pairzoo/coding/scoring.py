"""A model's metric measured framework-free: ONNX in onnxruntime, with its initializers replaced."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pairzoo.coding.detection_scoring import DetectionEvaluator
from pairzoo.coding.graph_weights import GraphWeights
from pairzoo.coding.graph_weights import feeds as weight_feeds
from pairzoo.data.detection import DetectionData
from pairzoo.data.image_files import DecodedImages, ImageFiles
from pairzoo.data.sets import ImageData
from pairzoo.errors import PairzooError
from pairzoo.export.external_data import ReadExternal
from pairzoo.export.initializer_map import placed, taken_back
from pairzoo.record.metrics import METRICS, scorer

# CUDA's provider in float32 throughout: TensorFloat-32, on by default, would round its inputs as
# the CPU does not, and a metric re-scored on one machine must agree with one measured on another.
CUDA = ("CUDAExecutionProvider", {"use_tf32": "0"})


def providers() -> list[str | tuple[str, dict]]:
    """The execution providers scores run on: CUDA's first where installed (onnxruntime-gpu)."""
    available = ort.get_available_providers()
    return [CUDA] * (CUDA[0] in available) + ["CPUExecutionProvider"]


INPUT_TYPES = {"tensor(int64)": np.int64}


class OnnxEvaluator:
    """Scores an ONNX model (a file or its bytes) on a test split, optionally with other tensors.

    Pairzoo's ONNX files keep each framework tensor as an initializer under its framework name,
    or `initializer_map` says which initializer holds it, transposed how (`export.initializer_map`).
    Decoded tensors are given by framework name and put in the graph's initializers for each score
    (`GraphWeights`): no framework is needed to measure them.
    """

    def __init__(
        self,
        onnx_model: Path | bytes,
        data: ImageData,
        metric: str,
        batch_size: int = 512,
        initializer_map: Mapping[str, dict] | None = None,
        read_external: ReadExternal | None = None,
    ):
        score = scorer(metric)
        if score is None:
            known = sorted(m for m in METRICS if scorer(m))
            raise PairzooError(f"no scorer for metric {metric!r}: known are {known}")
        self.graph = GraphWeights(onnx_model, providers(), len(data.y_test), read_external)
        self.initializer_map = dict(initializer_map or {})
        unknown = sorted(
            {e["initializer"] for e in self.initializer_map.values()} - {*self.graph.defaults}
        )
        if unknown:
            raise PairzooError(f"the map names {unknown[:5]}, not float initializers of the graph")
        self.defaults = dict(self.graph.defaults)  # by framework name, in its axis order
        self.defaults.update(
            {
                name: taken_back(self.defaults.pop(entry["initializer"]), entry)
                for name, entry in self.initializer_map.items()
            }
        )
        self.session = self.graph.session({})
        self.input = self.session.get_inputs()[0]
        self.dtype = INPUT_TYPES.get(self.input.type, np.float32)  # token ids: int64
        self.score = score
        self.batch_size = batch_size
        self.data, self.x, self.y = data, self._inputs(data), data.y_test

    def _batch(self, start: int) -> np.ndarray:
        return np.asarray(self.x[start : start + self.batch_size], dtype=self.dtype)

    def _inputs(self, data: ImageData) -> np.ndarray | DecodedImages:
        wanted = tuple(self.input.shape[1:])
        if isinstance(data.x_test, ImageFiles) and wanted == data.x_test.shape[1:]:
            return data.x_test.decoded()  # decoded once, not at every score
        if wanted == data.x_test.shape[1:]:
            return data.x_test
        channels_last = np.ascontiguousarray(data.x_test.transpose(0, 2, 3, 1))
        if wanted == channels_last.shape[1:]:
            return channels_last
        raise PairzooError(f"the ONNX input {wanted} fits neither {data.x_test.shape[1:]} nor NHWC")

    def __call__(self, tensors: Mapping[str, np.ndarray] | None = None) -> float:
        """The metric of the model, with `tensors` (by framework name) in place of its own."""
        return self.score(self.outputs(tensors), self.x, self.data)

    def outputs(self, tensors: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """The model's outputs on the whole test split, with `tensors` in place of its own."""
        session = self.session
        if tensors:
            values = weight_feeds(self.defaults, tensors)
            for name, entry in self.initializer_map.items():
                values[entry["initializer"]] = placed(values.pop(name), entry)
            session = self.graph.session(values)
        outputs = [
            session.run(None, {self.input.name: self._batch(i)})[0]
            for i in range(0, len(self.x), self.batch_size)
        ]
        return np.concatenate(outputs)


def evaluator(
    onnx_model: Path | bytes,
    data: ImageData | DetectionData,
    metric: str,
    initializer_map: Mapping[str, dict] | None = None,
    read_external: ReadExternal | None = None,
) -> OnnxEvaluator | DetectionEvaluator:
    """The scorer of an ONNX model on `data`'s test split; a detector's runs image by image.

    `initializer_map` (the manifest's, for an exporter that renamed them) leads framework tensor
    names to the ONNX initializers; `read_external` reads the external data that ONNX bytes name.
    """
    if isinstance(data, DetectionData):
        if initializer_map:
            raise PairzooError("a detector's ONNX must carry the framework's tensor names")
        return DetectionEvaluator(onnx_model, data, metric, providers(), read_external)
    return OnnxEvaluator(
        onnx_model, data, metric, initializer_map=initializer_map, read_external=read_external
    )
