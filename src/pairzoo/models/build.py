"""Network architectures by name: small nets for the ci profile, larger ones for full."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torchvision
from torch import nn

from pairzoo import architectures
from pairzoo.errors import PairzooError
from pairzoo.models.autoencoders import ConvAutoencoder
from pairzoo.models.pretrained import Pretrained, load_torch_state
from pairzoo.models.sequence import RowLSTM
from pairzoo.profiles import PROFILES


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


def _resnet(depth: int) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, in_channels: int) -> nn.Module:
        net = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        return net

    return build


def _rgb_only(name: str) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, in_channels: int) -> nn.Module:
        if in_channels != 3:
            raise PairzooError(f"{name} takes 3-channel images")
        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    return build


# The builders `pairzoo.architectures` names: each takes (num_classes, in_channels); the
# autoencoders have no classes and ignore the first.
resnet18 = _resnet(18)
resnet50 = _resnet(50)
vgg16 = _rgb_only("vgg16")
mobilenet_v2 = _rgb_only("mobilenet_v2")
efficientnet_b0 = _rgb_only("efficientnet_b0")


def digits_ae(_: int, in_channels: int) -> nn.Module:
    """The ci autoencoder: 16 channels wide, an 8-channel code."""
    return ConvAutoencoder(in_channels, width=16, code=8)


def cifar_ae(_: int, in_channels: int) -> nn.Module:
    """The full autoencoder: 32 channels wide, a 16-channel code."""
    return ConvAutoencoder(in_channels, width=32, code=16)


def digits_lstm(num_classes: int, in_channels: int) -> nn.Module:
    """A row LSTM over 8-pixel rows, 64 hidden units."""
    return RowLSTM(num_classes, 8 * in_channels, 64)


def cifar_lstm(num_classes: int, in_channels: int) -> nn.Module:
    """A row LSTM over 32-pixel rows, 128 hidden units."""
    return RowLSTM(num_classes, 32 * in_channels, 128)


def digits_vit(num_classes: int, in_channels: int) -> nn.Module:
    """The small vision transformer for digits (transformers is imported when needed)."""
    from pairzoo.models import vision_transformers

    return vision_transformers.digits_vit(num_classes, in_channels)


DEFAULT_ARCHITECTURE = {p: architectures.default("classifier", p) for p in PROFILES}
HEADS = architectures.heads("pytorch")


def build_model(
    architecture: str,
    num_classes: int,
    in_channels: int,
    seed: int,
    pretrained: Pretrained | None = None,
) -> nn.Module:
    """A network; the same `seed` gives the same weights.

    With `pretrained`, every tensor but the head's comes from its checkpoint, and the head too when
    it has `num_classes` outputs; otherwise the head is freshly initialised (seeded).
    """
    build = architectures.find(architecture, "pytorch").build()
    torch.manual_seed(seed)
    if pretrained is None:
        return build(num_classes, in_channels)
    state = load_torch_state(pretrained)
    head = f"{HEADS[architecture]}.weight"
    if head not in state:
        raise PairzooError(f"{pretrained.path} holds no {head}: not {architecture} weights")
    model = build(len(state[head]), in_channels)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise PairzooError(f"{pretrained.path} does not fit {architecture}: {exc}") from exc
    if len(state[head]) == num_classes:
        return model
    return remap_head(model, architecture, [None] * num_classes, seed)


def _head(architecture: str) -> str:
    if architecture not in HEADS:
        raise PairzooError(f"no known head for architecture {architecture!r}")
    return HEADS[architecture]


def remap_head(
    model: nn.Module, architecture: str, sources: Sequence[int | None], seed: int
) -> nn.Module:
    """A copy of `model` whose linear head has one output per entry of `sources`.

    Output `i` keeps the old head's row `sources[i]`; a `None` slot gets a fresh row (seeded).
    """
    head_name = _head(architecture)
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


def grow_head(
    model: nn.Module, architecture: str, added: int, seed: int
) -> tuple[nn.Module, dict[str, list[list[int]]]]:
    """A copy of `model` whose linear head gains `added` fresh outputs after its own (rows copied).

    Also returns, per head tensor by state-dict name, the block ([start, stop) per axis) holding
    the old one.
    """
    head = _head(architecture)
    old = model.get_submodule(head)
    grown = remap_head(model, architecture, [*range(old.out_features), *[None] * added], seed)
    return grown, {f"{head}.{n}": [[0, s] for s in p.shape] for n, p in old.named_parameters()}
