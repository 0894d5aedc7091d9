"""Head surgery and head-only training for transfer learning (PyTorch)."""

import numpy as np
import pytest
import torch

from pairzoo.data.sets import Subset, select_classes
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import float_state
from pairzoo.models.build import build_model, grow_head, remap_head
from pairzoo.record.writer import PairWriter, Training
from pairzoo.steps.transfer import forgetting
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import train


def test_remap_head_copies_kept_rows_and_seeds_new_ones():
    base = build_model("digits-cnn", 8, 1, 0)
    grown = remap_head(base, "digits-cnn", [0, 1, 2, 3, 4, 5, 6, 7, None, None], 5)
    again = remap_head(base, "digits-cnn", [0, 1, 2, 3, 4, 5, 6, 7, None, None], 5)
    assert grown.classifier.weight.shape == (10, 128)
    assert torch.equal(grown.classifier.weight[:8], base.classifier.weight)
    assert torch.equal(grown.classifier.weight, again.classifier.weight)
    assert base.classifier.weight.shape == (8, 128)
    exchanged = remap_head(base, "digits-cnn", [0, 1, 2, 3, 4, 5, 6, None], 5)
    assert not torch.equal(exchanged.classifier.weight[7], base.classifier.weight[7])
    with pytest.raises(PairzooError, match="do not exist"):
        remap_head(base, "digits-cnn", [8], 0)


def test_grow_head_returns_the_block_holding_the_old_head():
    base = build_model("digits-lstm", 8, 1, 0)
    grown, correspondence = grow_head(base, "digits-lstm", 2, 5)
    assert correspondence == {
        "classifier.weight": [[0, 8], [0, 64]],
        "classifier.bias": [[0, 8]],
    }
    old, new = float_state(base), float_state(grown)
    for name, block in correspondence.items():
        copied = new[name][tuple(slice(a, b) for a, b in block)]
        assert torch.equal(copied, old[name])
    assert new["classifier.weight"].shape == (10, 64)
    assert torch.equal(new["lstm.weight_hh_l0"], old["lstm.weight_hh_l0"])


def test_forgetting_measures_both_models_on_the_classes_kept_in_place(digits):
    base_task = select_classes(digits, [0, 1, 2])
    task = select_classes(digits, [0, 1, 9])  # slot 2 now means digit 9
    seen = []

    def accuracy(model, x, y):
        seen.append((model, np.unique(y).tolist(), len(y)))
        return {"base": 90.0, "updated": 80.0}[model]

    measured = forgetting(accuracy, "base", "updated", base_task, task)["top1-known-classes"]
    kept = int(np.isin(base_task.y_test, [0, 1]).sum())
    assert (measured.base, measured.updated, measured.classes) == (90.0, 80.0, ["0", "1"])
    assert seen == [("base", [0, 1], kept), ("updated", [0, 1], kept)]


def test_head_only_training_leaves_everything_else_bit_identical(digits):
    model = build_model("digits-cnn", 10, 1, 0)
    before = {name: tensor.clone() for name, tensor in float_state(model).items()}
    config = TrainConfig(epochs=1, seed=0, trainable="classifier")
    train(model, digits.x_train[:256], digits.y_train[:256], config)
    after = float_state(model)
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]) != name.startswith("classifier"), name
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(PairzooError, match="no parameters start with"):
        train(model, digits.x_train[:8], digits.y_train[:8], TrainConfig(epochs=1, trainable="x"))


def test_pair_rejects_a_correspondence_that_does_not_fit(tmp_path, digits):
    writer = PairWriter("heads", "ci", digits, tmp_path)
    training = Training(config=TrainConfig(epochs=0), subset=Subset(1.0, 0, 1))
    base = build_model("digits-cnn", 8, 1, 0)
    for name, model in {
        "base": base,
        "grown": remap_head(base, "digits-cnn", [*range(8), None], 1),
    }.items():
        writer.add_model(name, model, architecture="digits-cnn", training=training, metrics={})
    with pytest.raises(PairzooError, match="axis 0"):
        writer.add_pair(
            "base", "grown", "transfer-add-classes", correspondence={"classifier.bias": [[2, 10]]}
        )
    with pytest.raises(PairzooError, match="not reshaped"):
        writer.add_pair(
            "base",
            "grown",
            "transfer-add-classes",
            correspondence={"features.0.0.weight": [[0, 1]]},
        )
    stats = writer.add_pair(
        "base", "grown", "transfer-add-classes", correspondence={"classifier.bias": [[0, 8]]}
    )
    assert stats.structure.changed
    assert np.isclose(stats.total.rel_l2, 0.0)
