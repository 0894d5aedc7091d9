"""Sessions of an ONNX graph with other weights inside: as the graph exported with them gives."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pairzoo.coding import graph_weights
from pairzoo.coding.graph_weights import FedWeights, GraphWeights
from pairzoo.coding.scoring import providers
from pairzoo.export.exporters import OnnxExporter

CPU = ["CPUExecutionProvider"]


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5),
    )  # fmt: skip
    for module in net:
        if isinstance(module, torch.nn.BatchNorm2d):  # statistics of their own, to fold
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return net.eval()


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    x = np.random.default_rng(0).standard_normal((4, 3, 12, 12), dtype=np.float32)
    exporter = OnnxExporter(x)
    paths = [exporter.export(_net(seed), folder / f"{seed}.onnx").path for seed in (0, 1)]
    return x, paths


def _own_outputs(path, x) -> np.ndarray:
    return _run(ort.InferenceSession(str(path), providers=CPU), x)


def _weights(path) -> dict[str, np.ndarray]:
    proto = onnx.load(str(path))
    floats = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    return {i.name: onnx.numpy_helper.to_array(i) for i in floats}


def _run(session, x) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_other_weights_inside_give_what_their_own_graph_gives_and_none_stay(graphs):
    x, (first, second) = graphs
    graph = GraphWeights(first, CPU, graph_weights.INSIDE_FROM)
    own, other = _own_outputs(first, x), _own_outputs(second, x)
    assert np.abs(own - other).max() > 0.1  # the two nets differ
    scale = np.abs(other).max()
    inside = graph.session(_weights(second))
    assert isinstance(inside, ort.InferenceSession)
    np.testing.assert_allclose(_run(inside, x), other, atol=1e-5 * scale)
    # each session takes every weight afresh: none of the last one's are left in the graph
    np.testing.assert_allclose(_run(graph.session({}), x), own, atol=1e-5 * scale)


@pytest.mark.parametrize("why", ["a small test set", "a graph over protobuf's 2 GiB"])
def test_weights_are_fed_as_inputs_for_a_small_test_set_or_a_large_graph(graphs, why, monkeypatch):
    x, (first, second) = graphs
    small = why == "a small test set"
    if not small:
        monkeypatch.setattr(graph_weights, "PROTOBUF_LIMIT", 1)
    examples = graph_weights.INSIDE_FROM - small
    session = GraphWeights(first, CPU, examples).session(_weights(second))
    assert isinstance(session, FedWeights)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert {i.name for i in session.fed.get_inputs()} >= set(_weights(second))
    other = _own_outputs(second, x)
    np.testing.assert_allclose(_run(session, x), other, atol=1e-5 * np.abs(other).max())


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(), reason="needs onnxruntime-gpu"
)
def test_scores_on_a_gpu_run_in_float32_and_give_the_cpus_outputs(graphs):
    x, (first, second) = graphs
    session = GraphWeights(first, providers(), graph_weights.INSIDE_FROM).session(_weights(second))
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    assert session.get_provider_options()["CUDAExecutionProvider"]["use_tf32"] == "0"
    other = _own_outputs(second, x)
    np.testing.assert_allclose(_run(session, x), other, atol=1e-5 * np.abs(other).max())


def test_feeds_keep_each_weights_shape_scalars_too():
    defaults = {"scale": np.array(0.5, dtype=np.float32), "w": np.zeros((2, 3), np.float32)}
    values = graph_weights.feeds(defaults, {"w": np.arange(6, dtype=np.float64)})
    assert values["scale"].shape == () and values["w"].shape == (2, 3)  # QDQ scales are 0-d
    assert values["w"].dtype == np.float32 and values["w"].flags.c_contiguous
