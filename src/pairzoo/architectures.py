"""Every network pairzoo builds, one record each: builder, head, weights, input, defaults.

Modelled on timm's `PretrainedCfg`: what the code needs to know about an architecture is stated
here once, and the model modules, the weight loaders and the recipes read it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from pairzoo.errors import PairzooError

# torchvision's ImageNet weights take images in [0, 1] normalised by this mean and std per channel
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_SIDE = 224  # the side of the crops those weights (and Keras's) were trained on
IMAGENET_INPUT = (3, IMAGENET_SIDE, IMAGENET_SIDE)


@dataclass(frozen=True)
class Architecture:
    """One architecture: how to build it, its head and, for pretrained ones, what its weights take.

    `builder` is "module:attribute", imported on use (PyTorch: (num_classes, in_channels); Keras:
    (num_classes, input_shape, seed[, pretrained])). `defaults` lists the (role, profile) pairs
    whose default it is; `top1` is the publisher's ImageNet top-1 where the weights do not carry it.
    """

    name: str
    framework: str
    builder: str
    head: str | None = None
    weights: str | None = None
    input_size: tuple[int, int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    top1: float | None = None
    defaults: tuple[tuple[str, str], ...] = ()

    def build(self) -> Callable:
        """The function that builds this architecture."""
        module, _, attribute = self.builder.partition(":")
        return getattr(importlib.import_module(module), attribute)


def _torchvision(name: str, weights: str, head: str, *defaults: tuple[str, str]) -> Architecture:
    builder = f"pairzoo.models.build:{name}"
    return Architecture(name, "pytorch", builder, head, weights, IMAGENET_INPUT,
                        IMAGENET_MEAN, IMAGENET_STD, defaults=defaults)  # fmt: skip


def _torch(name: str, builder: str, head: str | None, *defaults: tuple[str, str]) -> Architecture:
    return Architecture(name, "pytorch", f"pairzoo.models.build:{builder}", head, defaults=defaults)


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        _torch("digits-cnn", "DigitsCNN", "classifier", ("classifier", "ci"), ("federated", "ci")),
        _torchvision("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "fc", ("federated", "full")),
        _torchvision("resnet50", "ResNet50_Weights.IMAGENET1K_V1", "fc", ("classifier", "full")),
        _torchvision("vgg16", "VGG16_Weights.IMAGENET1K_V1", "classifier.6"),
        _torchvision("mobilenet_v2", "MobileNet_V2_Weights.IMAGENET1K_V1", "classifier.1"),
        _torchvision("efficientnet_b0", "EfficientNet_B0_Weights.IMAGENET1K_V1", "classifier.1"),
        _torch("digits-ae", "digits_ae", None, ("autoencoder", "ci")),
        _torch("cifar-ae", "cifar_ae", None, ("autoencoder", "full")),
        _torch("digits-lstm", "digits_lstm", "classifier", ("sequence", "ci")),
        _torch("cifar-lstm", "cifar_lstm", "classifier", ("sequence", "full")),
        _torch("digits-vit", "digits_vit", "classifier"),
        Architecture(
            "keras-digits-cnn",
            "keras",
            "pairzoo.keras.models:digits_cnn",
            "head",
            defaults=(("keras-classifier", "ci"),),
        ),  # fmt: skip
        Architecture(
            "keras-mobilenet_v2",
            "keras",
            "pairzoo.keras.models:mobilenet_v2",
            "head",
            weights="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            input_size=IMAGENET_INPUT,
            mean=(0.5, 0.5, 0.5),  # keras.applications.mobilenet_v2.preprocess_input: [-1, 1]
            std=(0.5, 0.5, 0.5),
            top1=71.3,  # Keras's applications table, 224² inputs
            defaults=(("keras-classifier", "full"),),
        ),
    )
}


def names(framework: str) -> list[str]:
    """The architectures of `framework` ("pytorch" or "keras"), sorted."""
    return sorted(a.name for a in ARCHITECTURES.values() if a.framework == framework)


def find(name: str, framework: str) -> Architecture:
    """The record of architecture `name` of `framework`."""
    if name not in ARCHITECTURES or ARCHITECTURES[name].framework != framework:
        known = ", ".join(names(framework))
        raise PairzooError(f"unknown architecture {name!r}: choose one of {known}")
    return ARCHITECTURES[name]


def heads(framework: str) -> dict[str, str]:
    """Architecture name → name of its linear head, for the classifiers of `framework`."""
    return {a.name: a.head for a in ARCHITECTURES.values() if a.framework == framework and a.head}


def default(role: str, profile: str) -> str:
    """The architecture a recipe of `role` (e.g. "classifier", "autoencoder") uses in `profile`."""
    chosen = [a.name for a in ARCHITECTURES.values() if (role, profile) in a.defaults]
    if len(chosen) != 1:
        raise PairzooError(f"no single default architecture for {role!r} in profile {profile!r}")
    return chosen[0]
