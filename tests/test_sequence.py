"""The autoencoder and the row-LSTM: ONNX export, PSNR scoring, the grown LSTM head."""

import numpy as np
import onnx
import pytest
import torch

from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.data.sets import unit_pixels
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import OnnxExporter, float_state, upstream_initializers
from pairzoo.models.build import build_model, remap_head
from pairzoo.record.metrics import mse, psnr
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, predict, train


def test_lstm_onnx_uses_the_lstm_operator_fed_by_the_framework_tensors(tmp_path, digits):
    first = build_model("digits-lstm", 10, 1, 0).eval()
    second = build_model("digits-lstm", 10, 1, 1).eval()
    exporter = OnnxExporter(digits.x_test[:16])
    exported = exporter.export(first, tmp_path / "first.onnx")
    exporter.export(second, tmp_path / "second.onnx")
    assert exported.max_abs_diff <= 1e-4 and exported.initializer_names == "framework"

    proto = onnx.load(str(exported.path))
    (lstm,) = [node for node in proto.graph.node if node.op_type == "LSTM"]
    sources = [upstream_initializers(proto, name) for name in lstm.input[1:4]]
    assert sources == [
        ["lstm.weight_ih_l0"],
        ["lstm.weight_hh_l0"],
        ["lstm.bias_hh_l0", "lstm.bias_ih_l0"],
    ]
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for name, tensor in float_state(first).items():
        np.testing.assert_array_equal(initializers[name], tensor.numpy())

    evaluate = OnnxEvaluator(exported.path, digits, "top1")
    assert evaluate() == pytest.approx(accuracy(first, digits.x_test, digits.y_test))
    swapped = {name: tensor.numpy() for name, tensor in float_state(second).items()}
    assert evaluate(swapped) == pytest.approx(accuracy(second, digits.x_test, digits.y_test))
    assert evaluate(swapped) != evaluate()


def test_psnr_of_a_known_error_and_its_pixel_range():
    images = np.zeros((2, 1, 8, 8), dtype=np.float32)
    assert mse(images + 0.1, images) == pytest.approx(0.01)
    assert psnr(images + 0.1, images) == pytest.approx(20.0)
    # digits: the loader maps intensities 0…16 to [-1, 1]; 0.2 there is 0.1 of the pixel range
    loader = np.full((2, 1, 8, 8), -1.0, dtype=np.float32)
    units = unit_pixels("sklearn-digits", loader)
    np.testing.assert_allclose(units, 0.0)
    assert psnr(unit_pixels("sklearn-digits", loader + 0.2), units) == pytest.approx(20.0)
    with pytest.raises(PairzooError, match="unbounded"):
        psnr(images, images)
    with pytest.raises(PairzooError, match="differ"):
        mse(images[:1], images)
    with pytest.raises(PairzooError, match="no pixel range"):
        unit_pixels("imagenet", images)
    with pytest.raises(PairzooError, match="channel"):
        unit_pixels("sklearn-digits", np.zeros((2, 3, 8, 8), dtype=np.float32))


def test_autoencoder_learns_with_mse_and_scores_alike_in_onnx(tmp_path, digits):
    model = build_model("digits-ae", 0, 1, 0)
    x = digits.x_train[:256]
    losses = train(model, x, x, TrainConfig(epochs=3, optimizer="adam", lr=3e-3, loss="mse"))
    assert losses[-1] < losses[0]
    exported = OnnxExporter(digits.x_test[:16], output_name="reconstruction").export(
        model, tmp_path / "ae.onnx"
    )
    assert exported.max_abs_diff <= 1e-4
    assert [o.name for o in onnx.load(str(exported.path)).graph.output] == ["reconstruction"]
    originals = unit_pixels(digits.info.id, digits.x_test)
    reconstructions = unit_pixels(digits.info.id, predict(model, digits.x_test))
    expected = psnr(reconstructions, originals)
    assert OnnxEvaluator(exported.path, digits, "psnr")() == pytest.approx(expected, abs=1e-4)
    error = OnnxEvaluator(exported.path, digits, "reconstruction-mse")()
    assert error == pytest.approx(mse(reconstructions, originals), abs=1e-6)
    with pytest.raises(PairzooError, match="unknown loss"):
        train(model, x, x, TrainConfig(epochs=1, loss="l1"))


def test_grown_lstm_head_keeps_the_old_rows_and_the_recurrent_tensors():
    base = build_model("digits-lstm", 9, 1, 0).eval()
    grown = remap_head(base, "digits-lstm", [*range(9), None], 1).eval()
    old, new = float_state(base), float_state(grown)
    assert new["classifier.weight"].shape == (10, 64) and new["classifier.bias"].shape == (10,)
    assert torch.equal(new["classifier.weight"][:9], old["classifier.weight"])
    assert torch.equal(new["classifier.bias"][:9], old["classifier.bias"])
    assert all(torch.equal(new[k], v) for k, v in old.items() if k.startswith("lstm."))
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(grown(x)[:, :9], base(x))
