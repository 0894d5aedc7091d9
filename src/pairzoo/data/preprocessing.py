"""How a loader makes a model's input from a dataset's stored samples: one record, one function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pairzoo.errors import PairzooError

FORMULA = "input = (stored / divisor - mean[c]) / std[c] for each channel c, in float32"


@dataclass(frozen=True)
class Normalisation:
    """Per channel c: input = (stored / divisor − mean[c]) / std[c], computed in float32.

    `divisor` is the top of the stored range, so `stored / divisor` is the pixel in [0, 1].
    """

    divisor: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def _per_channel(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if images.ndim != 4 or images.shape[1] != len(self.mean):
            raise PairzooError(
                f"expected NCHW images with {len(self.mean)} channel(s), got shape {images.shape}"
            )
        mean = np.array(self.mean, dtype=np.float32)[:, None, None]
        return mean, np.array(self.std, dtype=np.float32)[:, None, None]

    def apply(self, stored: np.ndarray) -> np.ndarray:
        """NCHW stored values as the model's float32 input."""
        mean, std = self._per_channel(stored)
        return (stored.astype(np.float32) / np.float32(self.divisor) - mean) / std

    def unit_pixels(self, images: np.ndarray) -> np.ndarray:
        """NCHW model inputs mapped back to `stored / divisor`: the pixel range as [0, 1]."""
        mean, std = self._per_channel(images)
        return images * std + mean

    def then(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Normalisation:
        """One normalisation doing this one, then (x − mean[c]) / std[c]."""
        return Normalisation(
            self.divisor,
            tuple(m + a * s for m, a, s in zip(self.mean, mean, self.std, strict=True)),
            tuple(s * b for s, b in zip(self.std, std, strict=True)),
        )

    def text(self) -> str:
        """The formula with its numbers, e.g. `(x / 16 − 0.5) / 0.5 = x / 8 − 1`."""
        if len(self.mean) > 1:
            return f"(x / {self.divisor:g} − {list(self.mean)}) / {list(self.std)}"
        (mean,), (std,) = self.mean, self.std
        affine = f"x / {self.divisor * std:g} − {mean / std:g}"
        return f"(x / {self.divisor:g} − {mean}) / {std} = {affine}"

    def record(self) -> dict:
        """The manifest's `preprocessing.normalisation`."""
        return {
            "formula": FORMULA,
            "divisor": self.divisor,
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass(frozen=True)
class Preprocessing:
    """What a model's input is: the stored samples, the layout, normalisation and geometry.

    `resize` is the side the shorter image side is resized to, `crop` the side of the centre crop
    taken after it (evaluation); None where images are used at their stored size.
    """

    description: str
    layout: str
    normalisation: Normalisation | None = None
    resize: int | None = None
    crop: int | None = None

    def record(self) -> dict:
        """The manifest's `preprocessing` of a dataset."""
        optional = {"resize": self.resize, "crop": self.crop}
        return {
            "description": self.description,
            "layout": self.layout,
            **({"normalisation": self.normalisation.record()} if self.normalisation else {}),
            **{k: v for k, v in optional.items() if v is not None},
        }
