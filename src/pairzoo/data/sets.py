"""Classification sets: scikit-learn's digits (ci); CIFAR-10/100 and ImageNet from disk (full)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.datasets import load_digits as sklearn_digits
from sklearn.model_selection import train_test_split

from pairzoo.data.preprocessing import Normalisation, Preprocessing
from pairzoo.errors import PairzooError

if TYPE_CHECKING:
    from pairzoo.data.image_files import ImageFiles

CIFAR10_LAYOUT = (
    "cifar-10-batches-py/ with data_batch_1 … data_batch_5, test_batch and batches.meta "
    "(the official python-pickle release, unpacked)"
)
CIFAR100_LAYOUT = (
    "cifar-100-python/ with train, test and meta (the official python-pickle release, unpacked)"
)
CIFAR_NORMALISATION = Normalisation(255.0, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
DIGITS_NORMALISATION = Normalisation(16.0, (0.5,), (0.5,))  # intensities 0…16 to [-1, 1]
DIGITS_TEST_SIZE = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, where it comes from, under which licence, and how it becomes input.

    `rows` lists, per split, the indices of its samples in the source's order (where the source
    is one fixed list), in the loader's order.
    """

    id: str
    name: str
    source: str
    citation: str
    licence: str
    preprocessing: Preprocessing
    splits: dict[str, str] = field(default_factory=dict)
    rows: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def record(self, sizes: dict[str, int], classes: Sequence[str]) -> dict:
        """The manifest entry, with the size of each split and the name of each label."""
        splits = {
            k: {"description": v, "size": sizes[k]}
            | ({"rows": list(self.rows[k])} if k in self.rows else {})
            for k, v in self.splits.items()
        }
        return {
            "name": self.name,
            "source": self.source,
            "citation": self.citation,
            "licence": self.licence,
            "classes": list(classes),
            "preprocessing": self.preprocessing.record(),
            "splits": splits,
        }


@dataclass(frozen=True)
class Subset:
    """How a training split was drawn: a seeded, class-stratified `fraction` of some `classes`.

    `seed` is None until drawn (`draw`); `classes` is None where the set keeps all of them.
    """

    fraction: float
    seed: int | None
    size: int
    classes: tuple[str, ...] | None = None

    def record(self) -> dict:
        """The manifest's `training.subset`."""
        return {"fraction": self.fraction, "size": self.size, "seed": self.seed}


@dataclass(frozen=True)
class ImageData:
    """An image classification set: float32 NCHW images and int64 labels.

    Images are arrays in memory, or `ImageFiles` (decoded on access) for sets too large for it.
    """

    x_train: np.ndarray | ImageFiles
    y_train: np.ndarray
    x_test: np.ndarray | ImageFiles
    y_test: np.ndarray
    classes: tuple[str, ...]
    info: DatasetInfo
    subset: Subset | None = None  # how the training split was drawn; None: the whole set

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split."""
        return {"train": len(self.y_train), "test": len(self.y_test)}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image (C, H, W)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


DIGITS = DatasetInfo(
    id="sklearn-digits",
    name="Optical Recognition of Handwritten Digits (scikit-learn's digits, 8x8)",
    source="shipped with scikit-learn (sklearn.datasets.load_digits); UCI ML repository",
    citation="E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. "
    "UCI Machine Learning Repository, 1998. doi:10.24432/C50P49",
    licence="CC BY 4.0",
    preprocessing=Preprocessing(
        "sklearn.datasets.load_digits().images (8x8 grey levels 0…16) as float32 "
        f"{DIGITS_NORMALISATION.text()} (so [-1, 1]), one channel",
        "NCHW float32",
        DIGITS_NORMALISATION,
    ),
    splits={
        "train": f"the {1 - DIGITS_TEST_SIZE:.0%} of load_digits()'s 1797 rows not in test",
        "test": f"{DIGITS_TEST_SIZE:.0%} of load_digits()'s rows: the second part of "
        f"sklearn.model_selection.train_test_split(rows, test_size={DIGITS_TEST_SIZE}, "
        f"stratify=target, random_state={DIGITS_SPLIT_SEED}), listed in order as `rows`",
    },
)

CIFAR_PREPROCESSING = Preprocessing(
    "the python release's uint8 RGB pixels (rows of 3072: red, green, blue planes of 32x32) as "
    f"float32 {CIFAR_NORMALISATION.text()} per channel",
    "NCHW float32",
    CIFAR_NORMALISATION,
)

CIFAR10 = DatasetInfo(
    id="cifar10",
    name="CIFAR-10",
    source="https://www.cs.toronto.edu/~kriz/cifar.html (python version), read from $PAIRZOO_DATA",
    citation="A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. "
    "Tech. report, University of Toronto, 2009",
    licence="no explicit licence; free for research use as stated by the authors",
    preprocessing=CIFAR_PREPROCESSING,
    splits={
        "train": "data_batch_1 … data_batch_5, in file order",
        "test": "test_batch (all its images), in file order",
    },
)

CIFAR100 = DatasetInfo(
    id="cifar100",
    name="CIFAR-100 (100 fine classes)",
    source="https://www.cs.toronto.edu/~kriz/cifar.html (python version), read from $PAIRZOO_DATA",
    citation=CIFAR10.citation,
    licence=CIFAR10.licence,
    preprocessing=CIFAR_PREPROCESSING,
    splits={
        "train": "train (fine labels), in file order",
        "test": "test (all its images, fine labels), in file order",
    },
)


def load_digits() -> ImageData:
    """scikit-learn's digits as 1×8×8 images scaled to [-1, 1], split 80/20 (stratified, seed 0)."""
    bunch = sklearn_digits()
    images = DIGITS_NORMALISATION.apply(bunch.images[:, None, :, :])
    labels = bunch.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_SIZE,
        stratify=labels,
        random_state=DIGITS_SPLIT_SEED,
    )
    classes = tuple(str(c) for c in bunch.target_names)
    info = replace(DIGITS, rows={"test": tuple(int(i) for i in test)})
    return ImageData(images[train], labels[train], images[test], labels[test], classes, info)


# The only globals the CIFAR python release (and numpy's own pickles of its arrays) refer to.
CIFAR_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }
)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists, dicts, numbers and bytes; refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in CIFAR_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path, layout: str) -> dict:
    if not path.is_file():
        raise PairzooError(f"missing CIFAR file {path}; expected {layout}")
    try:
        with path.open("rb") as handle:
            batch = _CifarUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # a truncated, foreign or hostile file: pickle raises many kinds
        raise PairzooError(f"{path} is not a CIFAR python pickle ({exc})") from exc
    if not isinstance(batch, dict):
        raise PairzooError(f"{path} holds a {type(batch).__name__}, not a CIFAR dict")
    return batch


def _cifar_images(batch: dict, path: Path, key: bytes = b"labels") -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[key], dtype=np.int64)
    except (KeyError, ValueError) as exc:
        raise PairzooError(f"{path} is not a CIFAR python batch: {exc}") from exc
    return CIFAR_NORMALISATION.apply(raw), labels


def load_cifar10(root: Path) -> ImageData:
    """CIFAR-10 from `root`/cifar-10-batches-py, normalised per channel."""
    folder = Path(root) / "cifar-10-batches-py"
    if not folder.is_dir():
        raise PairzooError(f"CIFAR-10 not found at {folder}; expected {CIFAR10_LAYOUT}")
    files = [folder / f"data_batch_{i}" for i in range(1, 6)]
    train = [_cifar_images(_unpickle(path, CIFAR10_LAYOUT), path) for path in files]
    x_test, y_test = _cifar_images(_unpickle(folder / "test_batch", CIFAR10_LAYOUT), folder)
    meta = _unpickle(folder / "batches.meta", CIFAR10_LAYOUT)
    classes = tuple(name.decode() for name in meta[b"label_names"])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return ImageData(x_train, y_train, x_test, y_test, classes, CIFAR10)


def load_cifar100(root: Path) -> ImageData:
    """CIFAR-100 from `root`/cifar-100-python with its 100 fine labels, normalised per channel."""
    folder = Path(root) / "cifar-100-python"
    if not folder.is_dir():
        raise PairzooError(f"CIFAR-100 not found at {folder}; expected {CIFAR100_LAYOUT}")
    train, test = folder / "train", folder / "test"
    x_train, y_train = _cifar_images(_unpickle(train, CIFAR100_LAYOUT), train, b"fine_labels")
    x_test, y_test = _cifar_images(_unpickle(test, CIFAR100_LAYOUT), test, b"fine_labels")
    meta = _unpickle(folder / "meta", CIFAR100_LAYOUT)
    classes = tuple(name.decode() for name in meta[b"fine_label_names"])
    return ImageData(x_train, y_train, x_test, y_test, classes, CIFAR100)


PIXEL_UNITS = {info.id: info.preprocessing.normalisation for info in (DIGITS, CIFAR10, CIFAR100)}


def unit_pixels(dataset_id: str, images: np.ndarray) -> np.ndarray:
    """NCHW `images` in a loader's units mapped back to the dataset's pixel range as [0, 1]."""
    if dataset_id not in PIXEL_UNITS:
        raise PairzooError(f"no pixel range known for dataset {dataset_id!r}")
    return PIXEL_UNITS[dataset_id].unit_pixels(images)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified `fraction` of `labels`.

    Subsets drawn with one seed are nested: a larger fraction contains every smaller one.
    """
    if not 0.0 < fraction <= 1.0:
        raise PairzooError(f"subset fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        chosen.append(members[: max(1, round(fraction * len(members)))])
    return np.sort(np.concatenate(chosen))


def draw(data: ImageData, fraction: float, seed: int) -> ImageData:
    """`data` with the training images of a class-stratified `fraction` (`stratified_subset`).

    The result remembers its fraction, seed, size and classes in `subset`; test images stay.
    """
    if data.subset is not None and data.subset.seed is not None:
        raise PairzooError(f"{data.info.id} is already a drawn subset: draw from the whole set")
    classes = data.subset.classes if data.subset is not None else None
    index = stratified_subset(data.y_train, fraction, seed)
    subset = Subset(fraction, seed, len(index), classes)
    return replace(data, x_train=data.x_train[index], y_train=data.y_train[index], subset=subset)


def calibration_images(data: ImageData, limit: int, seed: int) -> np.ndarray | ImageFiles:
    """The training images, or a class-stratified sample of about `limit` of them if more.

    Images read from files are decoded with the evaluation transform (no augmentation).
    """
    if len(data.y_train) <= limit:
        return data.x_train
    chosen = data.x_train[stratified_subset(data.y_train, limit / len(data.y_train), seed)]
    return chosen if isinstance(chosen, np.ndarray) else chosen.for_evaluation()


def select_classes(data: ImageData, classes: Sequence[int]) -> ImageData:
    """The images of `classes` only, each labelled by its class's position in `classes` (its slot).

    `classes` index `data.classes`; `select_classes(digits, [0, 1, 9])` relabels digit 9 as 2.
    """
    chosen = list(classes)
    if not chosen or len(set(chosen)) != len(chosen):
        raise PairzooError(f"choose distinct classes, got {chosen}")
    unknown = [c for c in chosen if not 0 <= c < len(data.classes)]
    if unknown:
        raise PairzooError(f"classes {unknown} not in {data.info.id} (0…{len(data.classes) - 1})")
    slot = np.full(len(data.classes), -1, dtype=np.int64)
    slot[chosen] = np.arange(len(chosen))

    def keep(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask = slot[y] >= 0
        return x[mask], slot[y[mask]]

    x_train, y_train = keep(data.x_train, data.y_train)
    x_test, y_test = keep(data.x_test, data.y_test)
    names = tuple(data.classes[c] for c in chosen)
    drawn = data.subset or Subset(1.0, None, 0)
    subset = replace(drawn, size=len(y_train), classes=names)
    return replace(
        data,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=names,
        subset=subset,
    )
