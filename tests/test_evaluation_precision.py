"""Metrics are measured in float32 where training is mixed precision: as validate re-scores them."""

import numpy as np
import torch

from pairzoo import distributed
from pairzoo.steps import language_models as lm
from pairzoo.train.loop import accuracy

from .test_language_model_full import TINY_LM


def _mixed_precision(monkeypatch) -> None:
    """The CUDA path's bfloat16 autocast, on the CPU."""
    monkeypatch.setattr(distributed, "autocast", lambda _: torch.autocast("cpu", torch.bfloat16))


def _precisions() -> list[str]:
    return [b.fp32_precision for b in distributed._FLOAT32_BACKENDS]


def _recorded(model: torch.nn.Module) -> list[tuple[torch.dtype, list[str]]]:
    """The dtype of each forward pass's logits, and the float32 precisions it ran under."""
    seen = []

    def record(_module, _inputs, out) -> None:
        seen.append((getattr(out, "logits", out).dtype, _precisions()))

    model.register_forward_hook(record)
    return seen


def test_accuracy_is_measured_in_float32_without_tensorfloat32(monkeypatch, digits):
    _mixed_precision(monkeypatch)
    before = _precisions()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    seen = _recorded(model)
    assert 0 <= accuracy(model, digits.x_test, digits.y_test) <= 100
    assert seen and all(d == torch.float32 and p == ["ieee"] * 3 for d, p in seen)
    assert _precisions() == before  # given back as they were


def test_language_model_metrics_are_measured_without_tensorfloat32(monkeypatch):
    _mixed_precision(monkeypatch)
    model = TINY_LM.build(seed=0)
    seen = _recorded(model)
    windows = np.random.default_rng(0).integers(0, 64, (4, 16))
    assert lm.lm_metrics(model, windows, batch_size=2)["perplexity"] > 1
    assert seen and all(d == torch.float32 and p == ["ieee"] * 3 for d, p in seen)
