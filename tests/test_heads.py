"""Head surgery and head-only training for transfer learning (PyTorch)."""

import numpy as np
import pytest
import torch

from pairzoo.errors import PairzooError
from pairzoo.export import float_state
from pairzoo.models import build_model, remap_head
from pairzoo.publish import PairWriter, Training
from pairzoo.train import TrainConfig, train


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
    training = Training(TrainConfig(epochs=0), 1.0, 1, 0)
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
