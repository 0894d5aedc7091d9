"""Image sets too large for memory: files decoded on access with the ImageNet transforms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import interpolate
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets.folder import pil_loader
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms import RandomResizedCrop, v2
from torchvision.transforms.v2 import functional as F

from pairzoo import distributed
from pairzoo.architectures import IMAGENET_MEAN, IMAGENET_SIDE, IMAGENET_STD
from pairzoo.data.preprocessing import Normalisation, Preprocessing
from pairzoo.errors import PairzooError

_CROP = RandomResizedCrop(1)  # its scale and ratio ranges, and get_params
# uint8 pixels as ToDtype(scale=True) scales them (/255), then Normalize(mean, std)
NORMALISATION = Normalisation(255.0, IMAGENET_MEAN, IMAGENET_STD)


def resize_side(size: int) -> int:
    """The side the shorter image side is resized to before the evaluation's centre crop."""
    return round(size * 8 / 7)


def _geometry(train: bool, size: int) -> list[v2.Transform]:
    if train:
        return [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
    return [v2.Resize(resize_side(size), antialias=True), v2.CenterCrop(size)]


def _normalise() -> list[v2.Transform]:
    mean, std = NORMALISATION.mean, NORMALISATION.std
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]


def evaluation_preprocessing(size: int) -> Preprocessing:
    """What `ImageFiles` makes of a test image: resized, centre-cropped, normalised (no flip)."""
    return Preprocessing(
        "JPEG files decoded as RGB (PIL), the shorter side resized to "
        f"{resize_side(size)} (bilinear, antialiased), the centre {size}x{size} cropped, then "
        f"float32 {NORMALISATION.text()} per channel",
        "NCHW float32",
        NORMALISATION,
        resize=resize_side(size),
        crop=size,
    )


def imagenet_transform(train: bool, size: int = IMAGENET_SIDE) -> v2.Compose:
    """Train: RandomResizedCrop + flip; eval: Resize(size · 8/7) + CenterCrop; both normalised."""
    return v2.Compose([v2.PILToTensor(), *_geometry(train, size), *_normalise()])


def crop_boxes(heights: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
    """(top, left, height, width) of one RandomResizedCrop per image, drawn for all at once.

    The draw of `RandomResizedCrop.get_params`, vectorised: ten tries of area and aspect ratio,
    the first that fits, else the central crop of the closest aspect ratio.
    """
    n, tries = len(heights), 10
    area = (heights * widths).double()[:, None]
    scale, ratio = _CROP.scale, torch.log(torch.tensor(_CROP.ratio, dtype=torch.float64))
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, tries, dtype=torch.float64))
    aspect = torch.exp(ratio[0] + (ratio[1] - ratio[0]) * torch.rand(n, tries, dtype=torch.float64))
    w = torch.sqrt(target * aspect).round().long()
    h = torch.sqrt(target / aspect).round().long()
    fits = (w > 0) & (h > 0) & (w <= widths[:, None]) & (h <= heights[:, None])
    first = fits.long().argmax(1)
    h, w = h.gather(1, first[:, None])[:, 0], w.gather(1, first[:, None])[:, 0]
    found = fits.any(1)
    low, high = min(_CROP.ratio), max(_CROP.ratio)
    tall, wide = widths / heights < low, widths / heights > high
    h = torch.where(found, h, torch.where(tall, (widths / low).round().long(), heights))
    w = torch.where(found, w, torch.where(wide, (heights * high).round().long(), widths))
    top = torch.where(found, (torch.rand(n) * (heights - h + 1)).long(), (heights - h) // 2)
    left = torch.where(found, (torch.rand(n) * (widths - w + 1)).long(), (widths - w) // 2)
    return torch.stack([top, left, h, w], 1)


def decode_images(
    encoded: list[torch.Tensor], train: bool, size: int, device: torch.device | str
) -> torch.Tensor:
    """JPEG files' bytes decoded on `device` and transformed as `imagenet_transform` does.

    The batch is decoded at once (nvJPEG on CUDA, libjpeg on the CPU); each image is resized in
    float32 by one kernel (no rounding to uint8 in between: within one level of the PIL path),
    and crop boxes, flips and normalisation are made for the whole batch.
    Returns (n, 3, size, size) float32 on `device`.
    """
    images = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    if train:
        heights, widths = torch.tensor([image.shape[1:] for image in images]).T
        boxes = crop_boxes(heights, widths).tolist()
        crops = [image[:, t : t + h, left : left + w]
                 for image, (t, left, h, w) in zip(images, boxes, strict=True)]  # fmt: skip
        batch = torch.stack([_resized(crop, (size, size)) for crop in crops])
        flip = (torch.rand(len(batch), device=batch.device) < 0.5)[:, None, None, None]
        batch = torch.where(flip, batch.flip(-1), batch)
    else:
        short = resize_side(size)  # Resize(short) then CenterCrop(size), as v2 sizes them
        batch = torch.stack([F.center_crop(_resized(image, _sides(image, short)), [size, size])
                             for image in images])  # fmt: skip
    return F.normalize(batch.div_(NORMALISATION.divisor), NORMALISATION.mean, NORMALISATION.std)


def _sides(image: torch.Tensor, short: int) -> tuple[int, int]:
    height, width = image.shape[1:]
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def _resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return interpolate(image[None].float(), size, mode="bilinear", antialias=True)[0]


class ImageFiles:
    """Images stored as files, indexed like a float32 array of shape (n, 3, size, size).

    Indexing with a slice, an index array or a boolean mask selects files (nothing is decoded);
    an integer index or `np.asarray` decodes. Train sets decode with random augmentation.
    """

    def __init__(self, paths: Sequence[str], train: bool, size: int = IMAGENET_SIDE) -> None:
        self.paths = np.asarray(paths, dtype=object)
        self.train = train
        self.size = size
        self.transform = imagenet_transform(train, size)
        self._decoded: DecodedImages | None = None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(images, channels, height, width) after the transform."""
        return (len(self.paths), 3, self.size, self.size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: int | slice | np.ndarray) -> ImageFiles | np.ndarray:
        if isinstance(key, int | np.integer):
            return self.decode(int(key)).numpy()
        return ImageFiles(self.paths[key], self.train, self.size)

    def for_evaluation(self) -> ImageFiles:
        """The same files with the evaluation transform (no augmentation)."""
        return ImageFiles(self.paths, train=False, size=self.size)

    def decode(self, index: int) -> torch.Tensor:
        """The image at `index`, transformed (CHW float32)."""
        return self.transform(pil_loader(self.paths[index]))

    def decoded(self) -> DecodedImages:
        """The evaluation images decoded once, kept in memory (see `DecodedImages`)."""
        if self.train:
            raise PairzooError("augmented training images differ at every access: not kept")
        if self._decoded is None:
            self._decoded = DecodedImages(self)
        return self._decoded

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        images = np.stack([self.decode(i).numpy() for i in range(len(self))])
        return images if dtype is None else images.astype(dtype, copy=False)

    def labelled(self, labels: np.ndarray) -> Dataset:
        """A torch dataset of (image, label) pairs for a DataLoader with workers."""
        return _Labelled(self, labels)


class DecodedImages:
    """Evaluation images decoded once by DataLoader workers, sliced like their float32 array.

    They are kept cropped as uint8, a quarter of float32's memory (7.5 GB for ImageNet's 50,000
    at 224 px); a slice is normalised as `ImageFiles` normalises each image, to the same values.
    """

    def __init__(self, files: ImageFiles) -> None:
        self.pixels = torch.empty(files.shape, dtype=torch.uint8)
        loader = DataLoader(_Pixels(files), batch_size=64, num_workers=distributed.workers())
        start = 0
        for batch in loader:
            self.pixels[start : start + len(batch)] = batch
            start += len(batch)
        self.normalise = v2.Compose(_normalise())

    @property
    def shape(self) -> tuple[int, ...]:
        """(images, channels, height, width)."""
        return tuple(self.pixels.shape)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, key: slice) -> np.ndarray:
        return self.normalise(self.pixels[key]).numpy()


class _Pixels(Dataset):
    def __init__(self, files: ImageFiles) -> None:
        self.paths = files.paths
        self.geometry = v2.Compose([v2.PILToTensor(), *_geometry(False, files.size)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.geometry(pil_loader(self.paths[index]))


class SplitBatches(Dataset):
    """Batches of files, indexed by lists: the first `cpu_share` decoded here, the rest as bytes.

    Decoded by libjpeg and cropped with the geometry of `ImageFiles` to uint8 (a quarter of
    float32's bytes to hand over; `normalise` where the model runs); the others' file bytes go to
    `decode_images` there, joined in one uint8 tensor (handed over in shared memory, not pickled)
    with each file's length. Returns (uint8 images, joined bytes, lengths, labels of all).
    """

    def __init__(self, images: ImageFiles, labels: np.ndarray, cpu_share: float) -> None:
        self.paths, self.labels, self.cpu_share = images.paths, labels, cpu_share
        self.size = images.size
        self.geometry = v2.Compose(_geometry(images.train, images.size))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        here = round(self.cpu_share * len(indices))
        decoded = [
            self.geometry(decode_jpeg(read_file(self.paths[i]), mode=ImageReadMode.RGB))
            for i in indices[:here]
        ]
        empty = torch.empty(0, 3, self.size, self.size, dtype=torch.uint8)
        pixels = torch.stack(decoded) if decoded else empty
        files = [Path(self.paths[i]).read_bytes() for i in indices[here:]]
        joined = (
            torch.frombuffer(bytearray(b"".join(files)), dtype=torch.uint8)
            if files
            else torch.empty(0, dtype=torch.uint8)  # frombuffer refuses an empty buffer
        )
        lengths = torch.tensor([len(data) for data in files], dtype=torch.int64)
        labels = torch.tensor([int(self.labels[i]) for i in indices])
        return pixels, joined, lengths, labels


def split_files(joined: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """The files' bytes that `SplitBatches` joined, one uint8 tensor (a view) per file."""
    return list(joined.split(lengths.tolist())) if len(lengths) else []


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32, normalised as `imagenet_transform` does."""
    scaled = F.to_dtype(pixels, torch.float32, scale=True)
    return F.normalize(scaled, NORMALISATION.mean, NORMALISATION.std)


class _Labelled(Dataset):
    def __init__(self, images: ImageFiles, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images.decode(index), int(self.labels[index])
