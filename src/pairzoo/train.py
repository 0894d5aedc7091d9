"""The training loop, the accuracy metric and batched outputs, deterministic on CPU per seed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from pairzoo.errors import PairzooError
from pairzoo.timing import timed

OPTIMIZERS = ("sgd", "adam")
LOSSES = {"cross-entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss}


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
    trainable: str = ""  # name prefix of the modules to train (e.g. the head); empty: all
    loss: str = "cross-entropy"  # or "mse": outputs against targets of the same shape

    def record(self) -> dict:
        """The manifest's view of this configuration."""
        return asdict(self)


def _trainable(model: nn.Module, config: TrainConfig) -> list[nn.Parameter]:
    params = [p for name, p in model.named_parameters() if name.startswith(config.trainable)]
    if not params:
        raise PairzooError(f"no parameters start with trainable prefix {config.trainable!r}")
    return params


def _train_mode(model: nn.Module, prefix: str) -> None:
    """Training mode for the modules under `prefix`; the rest (BatchNorm statistics too) frozen."""
    model.train()
    for name, module in model.named_modules():
        if name and not name.startswith(prefix):
            module.training = False


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = _trainable(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
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
    """Train `model` in place on inputs `x` and targets `y`; return the mean loss of each epoch.

    `y` holds class labels (cross-entropy) or arrays shaped like the outputs ("mse"; an
    autoencoder learns with `train(model, x, x, config)`). Only modules named with the prefix
    `config.trainable` learn; the others stay bit-identical.
    `on_epoch(epoch, model)` runs after every epoch (1-based), e.g. to keep snapshots.
    """
    if len(x) == 0:
        raise PairzooError("cannot train on an empty training set")
    if config.loss not in LOSSES:
        raise PairzooError(f"unknown loss {config.loss!r}: choose one of {list(LOSSES)}")
    optimizer = _optimizer(model, config)
    schedule = _schedule(optimizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = LOSSES[config.loss]()
    losses: list[float] = []
    frozen = [p for n, p in model.named_parameters() if not n.startswith(config.trainable)]
    try:
        for param in frozen:
            param.requires_grad_(False)
        for epoch in range(1, config.epochs + 1):
            with timed("train"):
                _train_mode(model, config.trainable)
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
    finally:
        for param in frozen:
            param.requires_grad_(True)
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


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs on `x` in evaluation mode, computed batch by batch."""
    with timed("evaluate"):
        model.eval()
        batches = [
            model(torch.from_numpy(x[start : start + batch_size])).numpy()
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(batches)
