"""Image sets too large for memory: files decoded on access with the ImageNet transforms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.datasets.folder import pil_loader
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_transform(train: bool, size: int = 224) -> v2.Compose:
    """Train: RandomResizedCrop + flip; eval: Resize(size · 8/7) + CenterCrop; both normalised."""
    geometry = (
        [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        if train
        else [v2.Resize(round(size * 8 / 7), antialias=True), v2.CenterCrop(size)]
    )
    return v2.Compose(
        [
            v2.PILToTensor(),
            *geometry,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class ImageFiles:
    """Images stored as files, indexed like a float32 array of shape (n, 3, size, size).

    Indexing with a slice, an index array or a boolean mask selects files (nothing is decoded);
    an integer index or `np.asarray` decodes. Train sets decode with random augmentation.
    """

    def __init__(self, paths: Sequence[str], train: bool, size: int = 224) -> None:
        self.paths = np.asarray(paths, dtype=object)
        self.train = train
        self.size = size
        self.transform = imagenet_transform(train, size)

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

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        images = np.stack([self.decode(i).numpy() for i in range(len(self))])
        return images if dtype is None else images.astype(dtype, copy=False)

    def labelled(self, labels: np.ndarray) -> Dataset:
        """A torch dataset of (image, label) pairs for a DataLoader with workers."""
        return _Labelled(self, labels)


class _Labelled(Dataset):
    def __init__(self, images: ImageFiles, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images.decode(index), int(self.labels[index])
