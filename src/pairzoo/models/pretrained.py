"""Pretrained ImageNet weights from the local caches of torch.hub and Keras; never downloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.models import WeightsEnum, get_weight

from pairzoo.architectures import ARCHITECTURES
from pairzoo.errors import PairzooError

KERAS_MOBILENET_V2 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"


@dataclass(frozen=True)
class Pretrained:
    """Where a model's starting weights come from: their name, file and published top-1."""

    name: str
    path: Path
    top1: float | None

    def record(self) -> dict:
        """The manifest's view: source, file name, the publisher's ImageNet top-1."""
        return {"weights": self.name, "file": self.path.name, "published_top1": self.top1}


def torchvision_weights(architecture: str) -> WeightsEnum:
    """The torchvision ImageNet weights `pairzoo.architectures` names for `architecture`."""
    record = ARCHITECTURES.get(architecture)
    if record is None or record.framework != "pytorch" or record.weights is None:
        known = ", ".join(
            sorted(a.name for a in ARCHITECTURES.values() if a.framework == "pytorch" and a.weights)
        )
        raise PairzooError(f"no pretrained weights for {architecture!r}: known are {known}")
    return get_weight(record.weights)


def torch_checkpoint(architecture: str) -> Pretrained:
    """The torchvision ImageNet weights of `architecture` in $TORCH_HOME/hub/checkpoints."""
    weights = torchvision_weights(architecture)
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise PairzooError(
            f"pretrained {architecture} weights ({weights}) missing: looked for {path} "
            f"($TORCH_HOME/hub/checkpoints, torch.hub's cache); put {weights.url} there"
        )
    top1 = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
    return Pretrained(f"torchvision {weights}", path, top1)


def load_torch_state(pretrained: Pretrained) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, read on the CPU without executing code."""
    try:
        return torch.load(pretrained.path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as exc:
        raise PairzooError(f"{pretrained.path} is not a readable checkpoint: {exc}") from exc


def keras_cache() -> list[Path]:
    """Folders Keras keeps downloaded weights in: $KERAS_HOME/models, else ~/.keras/models."""
    if os.environ.get("KERAS_HOME"):
        return [Path(os.environ["KERAS_HOME"]) / "models"]
    return [Path.home() / ".keras" / "models", Path("/tmp/.keras/models")]


def keras_mobilenet_v2(size: int) -> Pretrained:
    """Keras's ImageNet MobileNetV2 weights (α 1.0, no top) for `size`² inputs, from its cache."""
    name = KERAS_MOBILENET_V2.format(size=size)
    looked = [folder / name for folder in keras_cache()]
    found = [path for path in looked if path.is_file()]
    if not found:
        raise PairzooError(
            f"Keras MobileNetV2 ImageNet weights missing: looked for "
            f"{' and '.join(map(str, looked))} (Keras's cache; $KERAS_HOME/models if set)"
        )
    record = ARCHITECTURES["keras-mobilenet_v2"]
    top1 = record.top1 if record.weights == name else None
    return Pretrained(f"keras.applications.MobileNetV2 imagenet ({name})", found[0], top1)
