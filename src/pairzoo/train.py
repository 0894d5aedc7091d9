"""The training loop and the accuracy metric, deterministic on CPU for a given seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from pairzoo.errors import PairzooError
from pairzoo.timing import timed

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    seed: int = 0
    schedule: str = "cosine"

    def record(self) -> dict:
        """The manifest's view of this configuration."""
        return asdict(self)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    raise PairzooError(f"unknown optimizer {config.optimizer!r}: choose one of {OPTIMIZERS}")


def _schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0)
    raise PairzooError(f"unknown schedule {config.schedule!r}: choose cosine or constant")


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train `model` in place with cross-entropy; return the mean loss of each epoch.

    `on_epoch(epoch, model)` runs after every epoch (1-based), e.g. to keep snapshots.
    """
    if len(x) == 0:
        raise PairzooError("cannot train on an empty training set")
    optimizer = _optimizer(model, config)
    schedule = _schedule(optimizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []
    for epoch in range(1, config.epochs + 1):
        with timed("train"):
            model.train()
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(inputs[batch]), targets[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            schedule.step()
            model.eval()
            losses.append(total / len(order))
        if on_epoch is not None:
            on_epoch(epoch, model)
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy in percent."""
    with timed("evaluate"):
        model.eval()
        correct = 0
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start : start + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[start : start + batch_size]).sum())
        return 100.0 * correct / len(x)
