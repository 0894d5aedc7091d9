"""A detector's box mAP measured framework-free: its ONNX in onnxruntime, initializers replaced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pairzoo.coding.graph_weights import GraphWeights
from pairzoo.data.detection import DetectionData
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import DETECTION_OUTPUTS, INPUT_NAME
from pairzoo.export.external_data import ReadExternal
from pairzoo.record.metrics import METRICS, detection_scorer


class DetectionEvaluator:
    """Scores a detector's ONNX (a file or its bytes) on a detection test split, as `OnnxEvaluator`.

    The graph takes one CHW image and gives its boxes, scores and labels (`DetectorExporter`), so
    images run one at a time, each at its own size; float initializers are replaced by name.
    """

    def __init__(
        self,
        onnx_model: Path | bytes,
        data: DetectionData,
        metric: str,
        providers: Sequence[str | tuple[str, dict]] = ("CPUExecutionProvider",),
        read_external: ReadExternal | None = None,
    ):
        score = detection_scorer(metric)
        if score is None:
            known = sorted(m for m in METRICS if detection_scorer(m))
            raise PairzooError(f"no detection scorer for metric {metric!r}: known are {known}")
        self.graph = GraphWeights(onnx_model, providers, len(data.test), read_external)
        self.session = self.graph.session({})
        self.score = score
        self.data = data

    def detections(
        self, tensors: Mapping[str, np.ndarray] | None = None
    ) -> list[dict[str, np.ndarray]]:
        """Boxes, scores and labels of each test image, with `tensors` in place of the graph's."""
        session = self.graph.session(tensors) if tensors else self.session
        found = []
        for sample in self.data.test:
            image = np.ascontiguousarray(sample.image, dtype=np.float32)
            outputs = session.run(list(DETECTION_OUTPUTS), {INPUT_NAME: image})
            found.append(dict(zip(DETECTION_OUTPUTS, outputs, strict=True)))
        return found

    def __call__(self, tensors: Mapping[str, np.ndarray] | None = None) -> float:
        """The metric of the detector, with `tensors` (by initializer name) in place of its own."""
        return self.score(self.detections(tensors), self.data.test)
