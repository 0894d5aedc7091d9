"""Training hyper-parameters in words every framework's training loop reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from pairzoo import distributed

# Examples per step on the CPU; a GPU takes as many per 16 GiB of its memory, up to four times.
CPU_BATCH = 64
MOST_CPU_BATCHES = 4


def batch_for_memory(total_bytes: int) -> int:
    """The default batch on a GPU with `total_bytes` of memory: 64 per 16 GiB, from 64 to 256."""
    return CPU_BATCH * max(1, min(MOST_CPU_BATCHES, total_bytes // (16 * 2**30)))


def default_batch_size() -> int:
    """64 on the CPU; on a GPU more, where its memory allows (fewer, larger steps keep it busy)."""
    if not torch.cuda.is_available():
        return CPU_BATCH
    return batch_for_memory(torch.cuda.get_device_properties(distributed.device()).total_memory)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int
    lr: float = 0.05
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = field(default_factory=default_batch_size)
    seed: int = 0
    schedule: str = "cosine"
    trainable: str = ""  # name prefix of the modules to train (e.g. the head); empty: all
    loss: str = "cross-entropy"  # or "mse": outputs against targets of the same shape

    def record(self) -> dict:
        """The manifest's view of this configuration."""
        return asdict(self)
