"""Miniatures of the full profile's inputs, written in their real layouts (the `tiny-real` data)."""

import pickle
from pathlib import Path

import numpy as np
import scipy.io
import torch
import torchvision
from PIL import Image

from pairzoo.architectures import ARCHITECTURES
from pairzoo.models.pretrained import torchvision_weights

WNIDS = ("n01440764", "n01443537", "n01484850")
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")  # fmt: skip


def _jpeg(path: Path, rng: np.random.Generator, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def photos(folder: Path, count: int, side: int = 200) -> list[str]:
    """Smooth photo-like JPEGs (upsampled colour fields with mild noise), `side` × 3/4 `side`."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
        smooth = np.asarray(low.resize((side, side * 3 // 4), Image.BICUBIC), dtype=np.int16)
        pixels = np.clip(smooth + rng.integers(-8, 9, smooth.shape), 0, 255).astype(np.uint8)
        paths.append(str(folder / f"photo_{i}.JPEG"))
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def imagenet(root: Path, val: str, per_class: int = 4, val_per_class: int = 2) -> Path:
    """$PAIRZOO_DATA/imagenet with train/<wnid>/ and val/ in layout `val`: folders, devkit or loc.

    Flat validation images are numbered so that image n has class (n - 1) % 3.
    """
    folder = root / "imagenet"
    rng = np.random.default_rng(0)
    for wnid in WNIDS:
        for i in range(per_class):
            _jpeg(folder / "train" / wnid / f"{wnid}_{i}.JPEG", rng)
    count = val_per_class * len(WNIDS)
    classes = [n % len(WNIDS) for n in range(count)]
    for n, c in enumerate(classes, start=1):
        name = f"ILSVRC2012_val_{n:08d}.JPEG"
        _jpeg(folder / "val" / (WNIDS[c] if val == "folders" else "") / name, rng)
    if val == "devkit":
        data = folder / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        # devkit ids are 1-based and not in wnid order; one inner synset is left out by the reader
        ids = {WNIDS[0]: 3, WNIDS[1]: 1, WNIDS[2]: 2}
        fields = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
        synsets = np.array(
            [(ids[w], w, f"class {w}", 0) for w in WNIDS] + [(1001, "n00000001", "inner", 2)],
            dtype=fields,
        )
        scipy.io.savemat(data / "meta.mat", {"synsets": synsets})
        truth = "".join(f"{ids[WNIDS[c]]}\n" for c in classes)
        (data / "ILSVRC2012_validation_ground_truth.txt").write_text(truth)
    if val == "loc":
        rows = [f"ILSVRC2012_val_{n:08d},{WNIDS[c]} 1 2 30 20" for n, c in enumerate(classes, 1)]
        (folder / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(rows))
    return folder


def _batch(rng: np.random.Generator, count: int, key: str, classes: int) -> dict:
    return {
        key.encode(): [int(v) for v in rng.integers(0, classes, count)],
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
    }


def cifar10(root: Path, per_batch: int = 4) -> Path:
    """$PAIRZOO_DATA/cifar10/cifar-10-batches-py with five train batches, test batch and meta."""
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(_batch(rng, per_batch, "labels", 10)))
    names = [n.encode() for n in CIFAR10_NAMES]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return folder


def cifar100(root: Path, train: int = 12, test: int = 6) -> Path:
    """$PAIRZOO_DATA/cifar100/cifar-100-python with train, test (fine and coarse labels), meta."""
    folder = root / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, count in (("train", train), ("test", test)):
        batch = {**_batch(rng, count, "fine_labels", 100), b"coarse_labels": [0] * count}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return folder


def voc(root: Path, ids: tuple[str, ...] = ("2008_000001", "2008_000002", "2008_000003")) -> Path:
    """$PAIRZOO_DATA/voc2012/VOCdevkit/VOC2012 with JPEGs, annotations and train/val lists."""
    folder = root / "voc2012" / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(ids):
        height, width = 60 + 10 * index, 80
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
        torchvision.io.write_jpeg(image, str(folder / "JPEGImages" / f"{name}.jpg"))
        objects = [("dog", 0, (11, 6, 50, 40)), ("person", 1, (2, 2, 20, 30)),
                   ("car", 0, (30, 20, 79, 59))]  # fmt: skip
        xml = "".join(
            f"<object><name>{cls}</name><difficult>{hard}</difficult><bndbox><xmin>{x0}</xmin>"
            f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for cls, hard, (x0, y0, x1, y1) in objects
        )
        (folder / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename>{xml}</annotation>"
        )
    (folder / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    (folder / "ImageSets" / "Main" / "val.txt").write_text(ids[2] + "\n")
    return folder


def torch_weights(torch_home: Path, architecture: str, seed: int = 0) -> Path:
    """A randomly initialised 1000-class state dict under the file name torch.hub caches it as."""
    name = Path(torchvision_weights(architecture).url).name
    path = torch_home / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(ARCHITECTURES[architecture].build()(1000, 3).state_dict(), path)
    return path
