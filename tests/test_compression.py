import numpy as np
import pytest
import torch

from pairzoo.archive.validate import validate
from pairzoo.coding.compression import (
    int8_qdq,
    load_state,
    make_permanent,
    prune_magnitude,
    quantise_per_channel,
    quantised,
    sparse_size,
    weight_sparsity,
)
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.data.sets import Subset
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import INPUT_NAME, OnnxExporter, float_state
from pairzoo.models.build import build_model
from pairzoo.record import manifest
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import train


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_quantisation_uses_at_most_2_to_bits_levels_and_errs_by_half_a_step(bits):
    weight = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(bits))
    dequantised, step = quantise_per_channel(weight, bits)
    for channel in range(len(weight)):
        levels = torch.unique(dequantised[channel])
        assert len(levels) <= 2**bits - 1
        error = (dequantised[channel] - weight[channel]).abs().max()
        assert error <= step[channel] / 2 + 1e-7
    assert torch.allclose(dequantised.abs().amax(dim=(1, 2, 3)), weight.abs().amax(dim=(1, 2, 3)))


def test_quantisation_refuses_one_bit():
    with pytest.raises(PairzooError, match="2 to 16 bits"):
        quantise_per_channel(torch.ones(2, 2), 1)


def test_quantised_model_keeps_biases_and_counts_bytes():
    model = build_model("digits-cnn", 10, 1, 0)
    variant = quantised(model, 4)
    before, after = float_state(model), float_state(variant.model)
    assert torch.equal(before["classifier.bias"], after["classifier.bias"])
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert variant.size_bytes > 4 * weights / 8
    assert variant.record() == {
        "method": "uniform-quantisation",
        "parameters": {"bits": 4, "granularity": "per-output-channel", "symmetric": True},
        "tool": "pytorch",
        "tool_version": torch.__version__,
        "size_bytes": variant.size_bytes,
        "size_measure": variant.size_measure,
    }


@pytest.mark.parametrize("sparsity", [0.25, 0.9])
def test_pruning_gives_the_exact_global_sparsity_and_is_permanent(sparsity):
    model = prune_magnitude(build_model("digits-cnn", 10, 1, 0), sparsity)
    make_permanent(model)
    zero, total = weight_sparsity(model)
    assert zero == round(sparsity * total)
    assert not any(name.endswith("_orig") for name in model.state_dict())
    dense = build_model("digits-cnn", 10, 1, 0)
    variant = sparse_size(model, sparsity)
    assert variant.size_bytes < sparse_size(dense, sparsity).size_bytes
    assert variant.record()["parameters"]["sparsity"] == sparsity


def test_load_state_rejects_tensors_that_do_not_fit():
    model = build_model("digits-cnn", 10, 1, 0)
    with pytest.raises(PairzooError, match="do not fit"):
        load_state(model, {"no.such.tensor": np.zeros(3, dtype=np.float32)})


def test_int8_qdq_runs_in_onnxruntime_close_to_float(digits, tmp_path):
    model = build_model("digits-cnn", 10, 1, 0)
    train(model, digits.x_train, digits.y_train, TrainConfig(epochs=2, seed=0))
    exported = OnnxExporter(digits.x_test[:8]).export(model, tmp_path / "float.onnx")
    qdq = int8_qdq(exported.path, tmp_path / "int8.onnx", digits.x_train, INPUT_NAME)
    float_top1 = OnnxEvaluator(exported.path, digits, "top1")()
    assert abs(OnnxEvaluator(qdq, digits, "top1")() - float_top1) <= 2.0
    assert qdq.stat().st_size < exported.path.stat().st_size


def test_attached_file_is_verified_and_needs_a_recorded_model(folder_copy, digits):
    writer = PairWriter("unit", "ci", digits, folder_copy)
    writer.add_model(
        "m",
        build_model("digits-cnn", 10, 1, 0),
        architecture="digits-cnn",
        training=Training(config=TrainConfig(epochs=0), subset=Subset(1.0, 0, 1)),
        metrics={"top1": 10.0},
    )
    extra = writer.path_stem("m-extra")
    extra.write_bytes(b"int8")
    block = {"method": "m", "parameters": {}, "tool": "t", "tool_version": "1",
             "size_bytes": 4, "size_measure": "file bytes"}  # fmt: skip
    writer.attach("m", "extra", extra, block)
    with pytest.raises(PairzooError, match="no model"):
        writer.attach("absent", "extra", extra, block)
    writer.finish()
    extra = folder_copy / "unit" / "m-extra"
    assert validate(folder_copy) == []
    assert manifest.load(folder_copy)["models"]["unit/m"]["derived"]["extra"]["file"] == "extra"
    extra.write_bytes(b"int9")
    assert validate(folder_copy)
