"""Batches made where the model runs: JPEGs decoded on the GPU, prepared ahead on a side stream.

On CUDA a thread prepares the next batches (file bytes from DataLoader workers, decoded by nvJPEG,
cropped, normalised, channels_last) on its own CUDA stream while the default stream trains on the
current one. Everything here also runs on the CPU, where it is tested.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import nullcontext

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler

from pairzoo import distributed
from pairzoo.data.image_files import (
    ImageFiles,
    SplitBatches,
    decode_images,
    normalise,
    split_files,
)
from pairzoo.errors import PairzooError

Batch = tuple[torch.Tensor, torch.Tensor]
_DONE = object()


def _layout(inputs: torch.Tensor) -> torch.Tensor:
    """Images in channels_last on CUDA (where convolutions run fastest in it); as they are else."""
    if inputs.is_cuda and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


class _Order(Sampler[int]):
    """The indices of the current epoch, set before each pass over a persistent DataLoader."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


# How much lower the workers' scheduling priority is than the training process's (Linux nice).
WORKER_NICENESS = 5


def _yielding(_worker: int) -> None:
    """A worker gives way: when all cores are busy, the threads that feed the GPU run first."""
    os.nice(WORKER_NICENESS)


DECODERS = {"gpu": 0.0, "workers": 1.0}


def decoder() -> float:
    """The share of each batch that CPU workers decode for a GPU, the rest going to nvJPEG.

    $PAIRZOO_DECODE: "gpu" (0), "workers" (1) or a share between; by default "gpu".
    """
    where = os.environ.get("PAIRZOO_DECODE") or "gpu"
    try:
        share = DECODERS[where] if where in DECODERS else float(where)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise PairzooError(
            f"PAIRZOO_DECODE={where!r}: choose one of {sorted(DECODERS)} or a share from 0 to 1"
        )
    return share


class JpegFeed:
    """Batches of JPEG files decoded and transformed for `device`, made one batch ahead.

    In each batch, DataLoader workers decode and crop the first `cpu_share` of the images (libjpeg,
    to uint8) and read the others' bytes, which nvJPEG decodes and `device` transforms as
    `ImageFiles` does on the CPU; `device` normalises. Decoding both ways at once keeps the CPU
    cores and the GPU's decoder busy. The workers stay alive from one pass to the next, at a lower
    priority than the process that trains.
    """

    def __init__(
        self,
        files: ImageFiles,
        labels: np.ndarray,
        batch_size: int,
        device: torch.device | str,
        cpu_share: float = 0.0,
    ) -> None:
        self.files, self.device = files, torch.device(device)
        self.order = _Order()
        most = max(1, (os.cpu_count() or 2) - 1) if cpu_share > 0 else 8
        workers = distributed.workers(most=most)
        self.loader = DataLoader(
            SplitBatches(files, labels, cpu_share),
            batch_size=None,
            sampler=BatchSampler(self.order, batch_size, drop_last=False),
            num_workers=workers,
            worker_init_fn=_yielding,
            pin_memory=self.device.type == "cuda",  # copies that need no synchronisation
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers else None,
        )

    def __call__(self, indices: torch.Tensor) -> Iterator[Batch]:
        """(images, labels) at `indices`, in order."""
        self.order.indices = indices.tolist()
        yield from prefetched((self._made(*batch) for batch in self.loader), self.device)

    def _made(
        self,
        pixels: torch.Tensor,
        joined: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor,
    ) -> Batch:
        device, files, parts = self.device, self.files, []
        if len(pixels):
            parts.append(normalise(pixels.to(device, non_blocking=True)))
        if len(lengths):
            encoded = split_files(joined, lengths)
            parts.append(decode_images(encoded, files.train, files.size, device))
        images = parts[0] if len(parts) == 1 else torch.cat(parts)
        return _layout(images), labels.to(device, non_blocking=True)


def prefetched(batches: Iterable[Batch], device: torch.device, depth: int = 2) -> Iterator[Batch]:
    """`batches`, made up to `depth` ahead by a thread.

    On a GPU the thread works on its own stream of high priority: its kernels do not queue
    behind the training step's.
    """
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    side = torch.cuda.Stream(device, priority=-1) if device.type == "cuda" else None

    def produce() -> None:
        try:
            if side is not None:
                torch.cuda.set_device(device)
            with torch.cuda.stream(side) if side is not None else nullcontext():
                for batch in batches:
                    event = side.record_event() if side is not None else None
                    while not stop.is_set():
                        try:
                            ready.put((batch, event), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            ready.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put((exc, None))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            batch, event = ready.get()
            if batch is _DONE:
                return
            if isinstance(batch, BaseException):
                raise batch
            if event is not None:
                stream = torch.cuda.current_stream(device)
                stream.wait_event(event)
                for tensor in batch:
                    tensor.record_stream(stream)  # its memory is not reused while it trains
            yield batch
    finally:
        stop.set()
        thread.join()


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.pin_memory() if torch.cuda.is_available() else tensor


class ArrayFeed:
    """Batches of in-memory arrays on `device`, moved there once when they fit.

    Arrays larger than a quarter of the device's free memory are gathered batch by batch into
    pinned host memory and copied without blocking.
    """

    def __init__(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, device: torch.device | str
    ) -> None:
        self.device, self.batch_size = torch.device(device), batch_size
        self.inputs, self.targets = torch.from_numpy(x), torch.from_numpy(y)
        cuda = self.device.type == "cuda"
        free = torch.cuda.mem_get_info(self.device)[0] if cuda else 0
        self.on_device = self.inputs.nbytes + self.targets.nbytes < free // 4
        if self.on_device:
            self.inputs, self.targets = self.inputs.to(device), self.targets.to(device)

    def __call__(self, indices: torch.Tensor) -> Iterator[Batch]:
        """(inputs, targets) at `indices`, in order."""
        if self.on_device:
            indices = indices.to(self.device)
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start : start + self.batch_size]
            if self.on_device:
                yield _layout(self.inputs[batch]), self.targets[batch]
            else:
                pinned = [_pinned(t[batch]) for t in (self.inputs, self.targets)]
                yield tuple(_layout(t.to(self.device, non_blocking=True)) for t in pinned)
