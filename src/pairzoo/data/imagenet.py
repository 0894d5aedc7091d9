"""ImageNet (ILSVRC2012) from local files: train/ as class folders, val/ in either common layout."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from torchvision.datasets import ImageFolder

from pairzoo.architectures import IMAGENET_SIDE
from pairzoo.data.image_files import ImageFiles, evaluation_preprocessing
from pairzoo.data.sets import DatasetInfo, ImageData
from pairzoo.errors import PairzooError

DEVKIT = Path("ILSVRC2012_devkit_t12") / "data"
GROUND_TRUTH = DEVKIT / "ILSVRC2012_validation_ground_truth.txt"
META = DEVKIT / "meta.mat"
LOC_SOLUTION = "LOC_val_solution.csv"
IMAGENET_LAYOUT = (
    "train/<wnid>/*.JPEG, and val/ either as val/<wnid>/*.JPEG or flat "
    f"(val/ILSVRC2012_val_00000001.JPEG …) with the devkit's {GROUND_TRUTH} and {META}, "
    f"or with {LOC_SOLUTION}"
)

IMAGENET = DatasetInfo(
    id="imagenet",
    name="ImageNet Large Scale Visual Recognition Challenge 2012 (ILSVRC2012), classification",
    source="https://image-net.org/challenges/LSVRC/2012/ (train and validation images), read "
    "from $PAIRZOO_DATA",
    citation="O. Russakovsky, J. Deng, H. Su et al. ImageNet Large Scale Visual Recognition "
    "Challenge. IJCV 115(3), 2015",
    licence="ImageNet terms of access: non-commercial research and educational use only",
    preprocessing=evaluation_preprocessing(IMAGENET_SIDE),
    splits={
        "train": "the training images (train/<wnid>/), RandomResizedCrop + flip",
        "test": "all validation images (val/: 50,000 in the official release), in path order, "
        f"labelled by class folder, by the devkit's ground truth or by {LOC_SOLUTION}",
    },
)


def _devkit_labels(root: Path) -> dict[str, str]:
    """Validation image name → wnid, from the devkit's ground truth and meta.mat."""
    synsets = loadmat(root / META, squeeze_me=True)["synsets"]
    wnid = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets if s["num_children"] == 0}
    ids = [int(line) for line in (root / GROUND_TRUTH).read_text().split()]
    return {f"ILSVRC2012_val_{n:08d}": wnid[i] for n, i in enumerate(ids, start=1)}


def _loc_labels(root: Path) -> dict[str, str]:
    """Validation image name → wnid, from LOC_val_solution.csv (first box's class)."""
    with (root / LOC_SOLUTION).open(newline="") as handle:
        rows = csv.DictReader(handle)
        return {row["ImageId"]: row["PredictionString"].split()[0] for row in rows}


def _flat_val(root: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    if (root / GROUND_TRUTH).is_file() and (root / META).is_file():
        truth = _devkit_labels(root)
    elif (root / LOC_SOLUTION).is_file():
        truth = _loc_labels(root)
    else:
        raise PairzooError(
            f"ImageNet at {root}: val/ is flat but its labels are missing: looked for "
            f"{root / GROUND_TRUTH} with {root / META}, and for {root / LOC_SOLUTION}"
        )
    paths = sorted(str(p) for p in (root / "val").iterdir() if p.suffix.upper() == ".JPEG")
    index = {wnid: i for i, wnid in enumerate(classes)}
    try:
        labels = [index[truth[Path(p).stem]] for p in paths]
    except KeyError as exc:
        raise PairzooError(f"ImageNet validation image or class {exc} has no label") from exc
    return paths, np.array(labels, dtype=np.int64)


def load_imagenet(root: Path, size: int = IMAGENET_SIDE) -> ImageData:
    """ImageNet from `root`: classes are the wnids of train/, sorted (torchvision's order)."""
    root = Path(root)
    missing = [str(root / sub) + "/" for sub in ("train", "val") if not (root / sub).is_dir()]
    if missing:
        raise PairzooError(f"ImageNet incomplete: missing {', '.join(missing)}; "
                           f"expected {IMAGENET_LAYOUT}")  # fmt: skip
    try:
        train = ImageFolder(str(root / "train"))
    except (FileNotFoundError, RuntimeError) as exc:
        raise PairzooError(f"ImageNet train/ unreadable: {exc}") from exc
    if any(p.is_dir() for p in (root / "val").iterdir()):
        val = ImageFolder(str(root / "val"))
        if val.classes != train.classes:
            raise PairzooError(f"ImageNet val/ class folders differ from train/'s in {root}")
        paths, labels = [p for p, _ in val.samples], np.array(val.targets, dtype=np.int64)
    else:
        paths, labels = _flat_val(root, train.classes)
    return ImageData(
        ImageFiles([p for p, _ in train.samples], train=True, size=size),
        np.array(train.targets, dtype=np.int64),
        ImageFiles(paths, train=False, size=size),
        labels,
        tuple(train.classes),
        replace(IMAGENET, preprocessing=evaluation_preprocessing(size)),
    )
