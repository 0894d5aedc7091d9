"""Network architectures by name: small nets for the ci profile, larger ones for full."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import nn

from pairzoo.autoencoders import ConvAutoencoder
from pairzoo.errors import PairzooError
from pairzoo.sequence_models import RowLSTM


class DigitsCNN(nn.Module):
    """Three conv-BN-ReLU blocks and a linear head, for 8×8 single-channel digits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU())

        self.features = nn.Sequential(
            block(in_channels, width),
            block(width, 2 * width),
            nn.MaxPool2d(2),
            block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of images."""
        return self.classifier(torch.flatten(self.features(x), 1))


def _resnet18(num_classes: int, in_channels: int) -> nn.Module:
    net = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
    return net


def _mobilenet_v2(num_classes: int, in_channels: int) -> nn.Module:
    if in_channels != 3:
        raise PairzooError("mobilenet_v2 takes 3-channel images")
    return torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes)


# Each takes (num_classes, in_channels); the autoencoders have no classes and ignore the first.
ARCHITECTURES: dict[str, Callable[[int, int], nn.Module]] = {
    "digits-cnn": lambda num_classes, in_channels: DigitsCNN(num_classes, in_channels),
    "resnet18": _resnet18,
    "mobilenet_v2": _mobilenet_v2,
    "digits-ae": lambda _, in_channels: ConvAutoencoder(in_channels, width=16, code=8),
    "cifar-ae": lambda _, in_channels: ConvAutoencoder(in_channels, width=32, code=16),
    "digits-lstm": lambda num_classes, in_channels: RowLSTM(num_classes, 8 * in_channels, 64),
    "cifar-lstm": lambda num_classes, in_channels: RowLSTM(num_classes, 32 * in_channels, 128),
}
DEFAULT_ARCHITECTURE = {"ci": "digits-cnn", "full": "resnet18"}
HEADS = {
    "digits-cnn": "classifier",
    "resnet18": "fc",
    "mobilenet_v2": "classifier.1",
    "digits-lstm": "classifier",
    "cifar-lstm": "classifier",
}


def build_model(architecture: str, num_classes: int, in_channels: int, seed: int) -> nn.Module:
    """A freshly initialised network; the same `seed` gives the same weights."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise PairzooError(f"unknown architecture {architecture!r}: choose one of {known}")
    torch.manual_seed(seed)
    return ARCHITECTURES[architecture](num_classes, in_channels)


def remap_head(
    model: nn.Module, architecture: str, sources: Sequence[int | None], seed: int
) -> nn.Module:
    """A copy of `model` whose linear head has one output per entry of `sources`.

    Output `i` keeps the old head's row `sources[i]`; a `None` slot gets a fresh row (seeded).
    """
    head_name = HEADS.get(architecture)
    if head_name is None:
        raise PairzooError(f"no known head for architecture {architecture!r}")
    model = copy.deepcopy(model)
    parent_name, _, attribute = head_name.rpartition(".")
    parent = model.get_submodule(parent_name)
    old = getattr(parent, attribute)
    bad = [s for s in sources if s is not None and not 0 <= s < old.out_features]
    if bad:
        raise PairzooError(f"head rows {bad} do not exist (the head has {old.out_features})")
    torch.manual_seed(seed)
    new = nn.Linear(old.in_features, len(sources))
    with torch.no_grad():
        for row, source in enumerate(sources):
            if source is not None:
                new.weight[row] = old.weight[source]
                new.bias[row] = old.bias[source]
    setattr(parent, attribute, new)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
