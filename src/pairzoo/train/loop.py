"""The training loop, accuracy and batched outputs: deterministic on CPU for a seed; GPUs, DDP."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from pairzoo import distributed, progress
from pairzoo.data.image_files import ImageFiles
from pairzoo.errors import PairzooError
from pairzoo.timing import timed
from pairzoo.train import device_input
from pairzoo.train.config import TrainConfig

OPTIMIZERS = ("sgd", "adam")
LOSSES = {"cross-entropy": nn.CrossEntropyLoss, "mse": nn.MSELoss}


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


def _feed(
    x: np.ndarray | ImageFiles, y: np.ndarray, batch_size: int, here: torch.device
) -> Callable[[torch.Tensor], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Batches of (images, labels) at the indices it is called with, in order.

    On the CPU, arrays in memory are sliced and files decoded by a DataLoader's workers; on CUDA
    both are made on the GPU, ahead of the step that uses them (`train.device_input`), and the
    feed is made once for all epochs (arrays moved once, file-reading workers kept).
    """
    if here.type == "cuda":
        if isinstance(x, np.ndarray):
            return device_input.ArrayFeed(x, y, batch_size, here)
        return device_input.JpegFeed(x, y, batch_size, here, device_input.decoder())
    if isinstance(x, np.ndarray):
        return partial(_slices, torch.from_numpy(x), torch.from_numpy(y), batch_size)
    return lambda indices: iter(
        DataLoader(
            Subset(x.labelled(y), indices.tolist()),
            batch_size=batch_size,
            num_workers=distributed.workers(),
        )
    )


def _slices(
    inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, indices: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(indices), batch_size):
        batch = indices[start : start + batch_size]
        yield inputs[batch], targets[batch]


def _share(count: int) -> int:
    """Examples per process when `count` are shared among them, padded so that all take as many."""
    return -(-count // distributed.world_size())


def _shard(order: torch.Tensor) -> torch.Tensor:
    """The share of `order` this process takes (`_share` of them)."""
    size = distributed.world_size()
    padded = _share(len(order)) * size
    return torch.cat([order, order[: padded - len(order)]])[distributed.rank() :: size]


def _steps(count: int, batch_size: int) -> int:
    """Batches per epoch in each process, for `count` examples shared among the processes."""
    return -(-_share(count) // batch_size)


def train(
    model: nn.Module,
    x: np.ndarray | ImageFiles,
    y: np.ndarray,
    config: TrainConfig,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> list[float]:
    """Train `model` in place on inputs `x` and targets `y`; return the mean loss of each epoch.

    `y` holds class labels (cross-entropy) or arrays shaped like the outputs ("mse"; an
    autoencoder learns with `train(model, x, x, config)`). Only modules named with the prefix
    `config.trainable` learn; the others stay bit-identical.
    `on_epoch(epoch, model)` runs after every epoch (1-based), e.g. to keep snapshots. Training
    runs on the GPU when there is one (mixed precision), under torchrun on every process's GPU
    (DistributedDataParallel, `batch_size` images per process); the model ends on the CPU.
    On a terminal a bar counts the batches and shows each epoch's loss (`pairzoo.progress`).
    """
    if len(x) == 0:
        raise PairzooError("cannot train on an empty training set")
    if config.loss not in LOSSES:
        raise PairzooError(f"unknown loss {config.loss!r}: choose one of {list(LOSSES)}")
    here = distributed.setup()
    optimizer = _optimizer(model, config)
    schedule = _schedule(optimizer, config)
    scaler = distributed.grad_scaler(here)
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = LOSSES[config.loss]()
    losses: list[float] = []
    frozen = [p for n, p in model.named_parameters() if not n.startswith(config.trainable)]
    shown = progress.bar(config.epochs * _steps(len(y), config.batch_size), "train", "batch")
    try:
        for param in frozen:
            param.requires_grad_(False)
        net = parallel(_placed(model, here), here)
        batches = _feed(x, y, config.batch_size, here)
        for epoch in range(1, config.epochs + 1):
            with timed("train"):
                _train_mode(model, config.trainable)
                order = _shard(torch.randperm(len(y), generator=generator))
                total = torch.zeros((), dtype=torch.float64, device=here)
                for inputs, targets in batches(order):
                    optimizer.zero_grad(set_to_none=True)
                    with distributed.autocast(here):
                        loss = loss_fn(net(inputs.to(here, non_blocking=True)),
                                       targets.to(here, non_blocking=True))  # fmt: skip
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    total += loss.detach().double() * len(targets)  # no sync per step
                    shown.update()
                schedule.step()
                distributed.share_buffers(model)
                model.eval()
                total, count = distributed.all_sum([total.item(), float(len(order))])
                losses.append(total / count)
                shown.set_postfix_str(f"epoch {epoch}/{config.epochs}, loss {losses[-1]:.4g}")
            if on_epoch is not None:
                with shown.external_write_mode(nolock=True):  # its prints go above the bar
                    on_epoch(epoch, model if here.type == "cpu" else copy.deepcopy(model).cpu())
    finally:
        shown.close()
        model.cpu().to(memory_format=torch.contiguous_format)
        for param in frozen:
            param.requires_grad_(True)
    return losses


def _placed(model: nn.Module, here: torch.device) -> nn.Module:
    """`model` on `here`; on CUDA in channels_last, the layout its convolutions run fastest in."""
    if here.type == "cuda":
        return model.to(here, memory_format=torch.channels_last)
    return model.to(here)


def parallel(model: nn.Module, here: torch.device) -> nn.Module:
    """`model` wrapped in DistributedDataParallel under torchrun; as it is otherwise."""
    if distributed.world_size() == 1:
        return model
    return DistributedDataParallel(model, device_ids=[here] if here.type == "cuda" else None)


@torch.no_grad()
def accuracy(
    model: nn.Module, x: np.ndarray | ImageFiles, y: np.ndarray, batch_size: int = 512
) -> float:
    """Top-1 accuracy in percent, on the GPU when there is one (split over torchrun's processes).

    In float32 throughout (`distributed.full_float32`), also where training is mixed precision.
    """
    with timed("evaluate"), distributed.full_float32():
        here = distributed.setup()
        model.to(here).eval()
        indices = torch.arange(len(y))[distributed.rank() :: distributed.world_size()]
        correct = torch.zeros((), dtype=torch.int64, device=here)
        try:
            for inputs, targets in _feed(x, y, batch_size, here)(indices):
                logits = model(inputs.to(here, non_blocking=True))
                correct += (logits.argmax(1) == targets.to(here)).sum()  # no sync per batch
        finally:
            model.cpu()
        return 100.0 * distributed.all_sum([float(correct)])[0] / len(y)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs on `x` in evaluation mode, computed batch by batch on the CPU."""
    with timed("evaluate"):
        model.eval()
        batches = [
            model(torch.from_numpy(x[start : start + batch_size])).numpy()
            for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(batches)
