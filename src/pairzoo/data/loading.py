"""Loading a set by profile or by its manifest id: digits, CIFAR, ImageNet, detection, text."""

from __future__ import annotations

from pairzoo.data.detection import VOC2012, VOC_LAYOUT, DetectionData, digit_canvases, load_voc
from pairzoo.data.imagenet import IMAGENET_LAYOUT, load_imagenet
from pairzoo.data.sets import (
    CIFAR10_LAYOUT,
    CIFAR100_LAYOUT,
    DIGITS,
    ImageData,
    load_cifar10,
    load_cifar100,
    load_digits,
)
from pairzoo.data.text import ID_PATTERN, load_text_by_id
from pairzoo.errors import PairzooError
from pairzoo.profiles import data_dir, pin_threads


def _imagenet() -> ImageData:
    return load_imagenet(data_dir("imagenet", IMAGENET_LAYOUT))


FULL_LOADERS = {
    "cifar10": lambda: load_cifar10(data_dir("cifar10", CIFAR10_LAYOUT)),
    "cifar100": lambda: load_cifar100(data_dir("cifar100", CIFAR100_LAYOUT)),
    "imagenet": _imagenet,
}


def load_dataset(profile: str, dataset: str = "cifar10") -> ImageData:
    """The classification set of a profile: digits (ci), or `dataset` from $PAIRZOO_DATA (full).

    `dataset` (full only) is one of cifar10, cifar100, imagenet.
    """
    pin_threads(profile)
    if profile == "ci":
        return load_digits()
    if dataset not in FULL_LOADERS:
        raise PairzooError(f"unknown dataset {dataset!r}: choose one of {', '.join(FULL_LOADERS)}")
    return FULL_LOADERS[dataset]()


# The detection sets by manifest id: the recipe's canvases (its defaults) and VOC from disk.
DETECTION_LOADERS = {
    "digit-canvases": lambda: digit_canvases(load_digits()),
    VOC2012.id: lambda: load_voc(data_dir("voc2012", VOC_LAYOUT)),
}


LOCAL_TEXT_PREFIXES = ("folder-", "saved-")  # a local text's id names its folder or saved set


def _loaders() -> dict:
    return {DIGITS.id: load_digits, **FULL_LOADERS, **DETECTION_LOADERS}


def loads(dataset_id: str) -> bool:
    """Whether `load_by_id` knows `dataset_id`: a loader's, a text corpus's or a local text's id."""
    text = ID_PATTERN.match(dataset_id) or dataset_id.startswith(LOCAL_TEXT_PREFIXES)
    return dataset_id in _loaders() or bool(text)


def load_by_id(dataset_id: str) -> ImageData | DetectionData:
    """A dataset by its manifest id (the full profile's sets read from $PAIRZOO_DATA).

    `digit-canvases` is `digit_canvases` with its defaults, as its manifest `source` says; a
    local text's id (`folder-…`, `saved-…`) names its folder, tokenizer and windows.
    """
    loaders = _loaders()
    if dataset_id not in loaders and ID_PATTERN.match(dataset_id):
        return load_text_by_id(dataset_id)  # type: ignore[return-value]
    if dataset_id not in loaders and dataset_id.startswith(LOCAL_TEXT_PREFIXES):
        from pairzoo.data.local_text import load_local_text_by_id  # transformers, only when asked

        return load_local_text_by_id(dataset_id)  # type: ignore[return-value]
    if not loads(dataset_id):
        raise PairzooError(f"no loader for dataset {dataset_id!r}: known are {sorted(loaders)}")
    return loaders[dataset_id]()
