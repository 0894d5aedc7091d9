"""ResNet-50 training: a plain PyTorch loop beside `pairzoo.train.loop.train` on JPEG files.

    python benchmarks/gpu_training.py            # on the CUDA GPU present (ResNet-50, 224 px)
    python benchmarks/gpu_training.py --small    # tiny sizes, on the CPU too: proves it runs

The reference trains on one random batch kept on the device (channels_last, bf16 autocast on
CUDA): the speed of the step alone. Pairzoo trains on JPEG files through its own input pipeline,
timed over its second epoch (the first warms up cuDNN), once per share of each batch that
DataLoader workers decode on the CPU (0: all by nvJPEG on the GPU; 1: all by the workers); its
input pipeline is also timed alone. `--alongside` adds, per share, the loop on arrays in memory
while a thread of the same process runs the JPEG pipeline: if that row falls to the JPEG row, the
two contend inside the process (GIL, CPU cores); if it stays near the arrays row, the handover of
batches to the step is what costs. `--compile` runs every row with the network `torch.compile`d
(the first epoch of each row compiles it).
"""

import argparse
import os
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from pairzoo import distributed
from pairzoo.data.image_files import ImageFiles
from pairzoo.train import device_input
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import train

COMPILED = False  # --compile


def network() -> torch.nn.Module:
    """A fresh ResNet-50, compiled with --compile."""
    model = torchvision.models.resnet50()
    return torch.compile(model) if COMPILED else model


def _jpeg(args: tuple[Path, int, int]) -> None:
    path, side, seed = args
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(low).resize((side, side * 3 // 4), Image.BICUBIC)
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-20, 21, (side * 3 // 4, side, 3))
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)


def jpegs(folder: Path, count: int, side: int) -> list[str]:
    """Smooth random photo-like JPEGs (quality 90), `side` × 3/4 `side` pixels, made in parallel."""
    paths = [folder / f"{i:06d}.JPEG" for i in range(count)]
    with Pool() as pool:
        pool.map(_jpeg, [(path, side, i) for i, path in enumerate(paths)], chunksize=64)
    return [str(path) for path in paths]


def reference(model, batch: int, size: int, steps: int, here: torch.device) -> float:
    """Images per second of the plain loop on one batch kept on the device."""
    model = model.to(here, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=here).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=here)
    loss_fn = torch.nn.CrossEntropyLoss()
    for step in range(steps * 2):
        if step == steps:  # the first half warms up
            if here.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with distributed.autocast(here):
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    if here.type == "cuda":
        torch.cuda.synchronize()
    model.cpu()
    return steps * batch / (time.perf_counter() - start)


def pairzoo_files(model, paths: list[str], batch: int, size: int) -> float:
    """Images per second of `pairzoo.train.loop.train` over its second epoch on the JPEG files."""
    labels = np.arange(len(paths)) % 1000
    ends: list[float] = []
    config = TrainConfig(epochs=2, batch_size=batch, lr=0.01, schedule="constant")
    train(model, ImageFiles(paths, train=True, size=size), labels, config,
          on_epoch=lambda epoch, _: ends.append(time.perf_counter()))  # fmt: skip
    return len(paths) / (ends[1] - ends[0])


def pairzoo_arrays(model, count: int, batch: int, size: int) -> float:
    """Images per second of `pairzoo.train.loop.train` over its second epoch on in-memory arrays."""
    x = np.random.default_rng(0).standard_normal((count, 3, size, size), dtype=np.float32)
    ends: list[float] = []
    config = TrainConfig(epochs=2, batch_size=batch, lr=0.01, schedule="constant")
    train(model, x, np.arange(count) % 1000, config,
          on_epoch=lambda epoch, _: ends.append(time.perf_counter()))  # fmt: skip
    return count / (ends[1] - ends[0])


def feed_alone(paths: list[str], batch: int, size: int, here: torch.device, share: float) -> float:
    """Images per second of pairzoo's input pipeline alone: files read, decoded, transformed."""
    feed = device_input.JpegFeed(ImageFiles(paths, train=True, size=size),
                                 np.zeros(len(paths), dtype=np.int64), batch, here,
                                 share)  # fmt: skip
    order = torch.arange(len(paths))
    for _ in feed(order[: batch * 2]):  # starts the workers and nvJPEG
        pass
    start = time.perf_counter()
    for _ in feed(order):
        pass
    if here.type == "cuda":
        torch.cuda.synchronize()
    return len(paths) / (time.perf_counter() - start)


def arrays_beside_feed(paths: list[str], batch: int, size: int, here: torch.device,
                       share: float) -> float:  # fmt: skip
    """`pairzoo_arrays` while a thread runs the JPEG input pipeline at `share`, pass after pass."""
    stop = threading.Event()

    def churn() -> None:
        feed = device_input.JpegFeed(ImageFiles(paths, train=True, size=size),
                                     np.zeros(len(paths), dtype=np.int64), batch, here,
                                     share)  # fmt: skip
        while not stop.is_set():
            for _ in feed(torch.arange(len(paths))):
                if stop.is_set():
                    break

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        return pairzoo_arrays(network(), min(len(paths), 4096), batch, size)
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes (runs on the CPU)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--images", type=int, default=20480, help="JPEG files per epoch")
    parser.add_argument("--side", type=int, default=500, help="JPEG width in pixels")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0],
                        help="shares of each batch decoded by CPU workers")  # fmt: skip
    parser.add_argument("--alongside", action="store_true",
                        help="also: arrays in memory beside a thread running it")  # fmt: skip
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    args = parser.parse_args()
    global COMPILED
    COMPILED = args.compile
    size, batch, count, side, steps = 224, args.batch, args.images, args.side, 50
    if args.small:
        size, batch, count, side, steps = 32, 8, 32, 48, 2
    here = distributed.setup()
    name = torch.cuda.get_device_name(here) if here.type == "cuda" else "CPU"
    with tempfile.TemporaryDirectory() as folder:
        paths = jpegs(Path(folder), count, side)
        kilobytes = np.mean([Path(p).stat().st_size for p in paths]) / 1000
        print(f"ResNet-50, {size} px, batch {batch}, on {name} with {os.cpu_count()} CPUs; "
              f"{count} JPEGs of {kilobytes:.0f} KB", flush=True)  # fmt: skip
        plain = reference(network(), batch, size, steps, here)
        print(f"{'plain PyTorch step, data on the device':<68} {plain:>9.1f} img/s", flush=True)

        def row(what: str, rate: float) -> None:
            print(f"{what:<68} {rate:>9.1f} img/s  ({rate / plain:.2f} of the plain step)",
                  flush=True)  # fmt: skip

        row("pairzoo.train.loop on arrays in memory",
            pairzoo_arrays(network(), min(count, 4096), batch, size))  # fmt: skip
        for share in args.shares:
            os.environ["PAIRZOO_DECODE"] = str(share)  # as pairzoo.train.loop reads it
            said = f"{share:.0%} decoded by CPU workers"
            row(f"input pipeline alone, {said}", feed_alone(paths, batch, size, here, share))
            row(f"pairzoo.train.loop on JPEG files, {said}",
                pairzoo_files(network(), paths, batch, size))  # fmt: skip
            if args.alongside:
                row(f"arrays in memory, the pipeline beside, {said}",
                    arrays_beside_feed(paths, batch, size, here, share))  # fmt: skip
    print("goal: pairzoo.train.loop on JPEG files at ≥ 0.80 of the plain step")


if __name__ == "__main__":
    main()
