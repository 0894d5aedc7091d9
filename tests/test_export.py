from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pairzoo.errors import PairzooError
from pairzoo.export.exporters import (
    PARITY_TOLERANCE,
    OnnxExporter,
    Parity,
    float_state,
    load_tensors,
    load_weights,
    onnx_parity,
    save_safetensors,
)
from pairzoo.models.build import build_model


def _run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_onnx_matches_pytorch_and_keeps_framework_tensors(tmp_path, digits):
    model = build_model("digits-cnn", 10, 1, 0).eval()
    exported = OnnxExporter(digits.x_test[:16]).export(model, tmp_path / "m.onnx")
    assert exported.max_abs_diff <= 1e-4
    x = digits.x_test[16:80]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(_run(exported.path, x) - expected)) <= 1e-4

    graph = onnx.load(str(exported.path)).graph
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    state = float_state(model)
    assert set(state) <= set(initializers)
    for name, tensor in state.items():
        np.testing.assert_array_equal(initializers[name], tensor.numpy())
    assert sum(node.op_type == "BatchNormalization" for node in graph.node) == 3
    assert any(name.endswith("running_var") for name in initializers)


def test_second_model_of_one_architecture_carries_its_own_weights(tmp_path, digits):
    exporter = OnnxExporter(digits.x_test[:8])
    first, second = build_model("digits-cnn", 10, 1, 0), build_model("digits-cnn", 10, 1, 1)
    exporter.export(first, tmp_path / "a.onnx")
    exported = exporter.export(second, tmp_path / "b.onnx")
    x = digits.x_test[:32]
    with torch.no_grad():
        expected = second.eval()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(_run(exported.path, x) - expected)) <= 1e-4
    assert not np.allclose(_run(tmp_path / "a.onnx", x), expected)


def test_safetensors_round_trip(tmp_path, digits):
    model = build_model("digits-cnn", 10, 1, 3).eval()
    path = save_safetensors(model, tmp_path / "m.safetensors", {"model": "x"})
    stored = load_tensors(path)
    assert set(stored) == set(float_state(model))
    assert not any(name.endswith("num_batches_tracked") for name in stored)
    fresh = load_weights(build_model("digits-cnn", 10, 1, 4).eval(), path)
    for name, tensor in float_state(fresh).items():
        np.testing.assert_array_equal(tensor.numpy(), stored[name])
    x = torch.from_numpy(digits.x_test[:8])
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


def test_parity_is_judged_against_the_output_scale(tmp_path, digits):
    """Logits in the thousands pass with float32 rounding; another model's ONNX still fails."""
    model = build_model("digits-cnn", 10, 1, 0).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1e5)
    exporter = OnnxExporter(digits.x_test[:64])
    exported = exporter.export(model, tmp_path / "loud.onnx")
    assert exported.output_scale > 1000 and exported.max_abs_diff <= 1e-5 * exported.output_scale
    other = build_model("digits-cnn", 10, 1, 1).eval()
    parity = onnx_parity(exported.path, other, digits.x_test[:64])
    with pytest.raises(PairzooError, match="of the output scale"):
        parity.check(PARITY_TOLERANCE, exported.path)
    assert Parity(4e-3, 10415.0).check(PARITY_TOLERANCE, "resnet50.onnx")  # measured on a GPU
    with pytest.raises(PairzooError, match="differ by 2.00e-04"):
        Parity(2e-4, 3.0).check(PARITY_TOLERANCE, "small.onnx")  # small outputs: 1e-4 absolute


def test_onnx_bytes_name_no_file_of_the_exporting_process(tmp_path, digits):
    model = build_model("digits-cnn", 10, 1, 0).eval()
    exported = OnnxExporter(digits.x_test[:16]).export(model, tmp_path / "m.onnx")
    data = exported.path.read_bytes()
    for folder in {Path(torch.__file__).parents[2], Path(__file__).parents[1]}:
        assert str(folder).encode() not in data  # the venv's and the checkout's paths
    nodes = onnx.load(str(exported.path)).graph.node
    assert all(p.key != "pkg.torch.onnx.stack_trace" for n in nodes for p in n.metadata_props)
    assert any(p.key == "pkg.torch.onnx.name_scopes" for n in nodes for p in n.metadata_props)
