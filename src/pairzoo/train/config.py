"""Training hyper-parameters in words every framework's training loop reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
