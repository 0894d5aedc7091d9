import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from pairzoo.archive.validate import validate
from pairzoo.data.image_files import (
    ImageFiles,
    SplitBatches,
    crop_boxes,
    decode_images,
    split_files,
)
from pairzoo.data.imagenet import load_imagenet
from pairzoo.errors import PairzooError
from pairzoo.train import device_input
from pairzoo.train.config import TrainConfig, batch_for_memory

from . import fabricate
from .conftest import ROOT

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# nvJPEG (the H100's hardware decoder) and libjpeg-turbo round the IDCT and chroma upsampling
# differently: mean absolute difference in uint8 levels, measured at most 2.19 (decoded) and 1.15
# (resized and cropped) on these photo-like files on an H100
GPU_DECODE_MEAN_LEVELS = 3.0
LEVELS_PER_UNIT = 255 * np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    return load_imagenet(fabricate.imagenet(tmp_path_factory.mktemp("data"), "folders"))


def test_the_jpeg_feed_on_the_cpu_equals_the_pil_path(imagenet):
    # libjpeg through torchvision and through PIL decode alike; the feed resizes in float32 without
    # rounding to uint8 in between, so it stays within one level of the PIL path
    x, y = imagenet.x_test, imagenet.y_test
    batches = list(device_input.JpegFeed(x, y, 4, torch.device("cpu"))(torch.arange(len(y))))
    images = torch.cat([images for images, _ in batches]).numpy()
    levels = np.abs(images - np.asarray(x)) * LEVELS_PER_UNIT
    assert 0 < levels.max() <= 1.0 + 1e-4
    assert torch.cat([labels for _, labels in batches]).tolist() == y.tolist()


def test_decoding_in_workers_gives_the_pil_path_exactly(imagenet, monkeypatch):
    x, y = imagenet.x_test, imagenet.y_test
    monkeypatch.setenv("PAIRZOO_DECODE", "workers")
    feed = device_input.JpegFeed(x, y, 4, torch.device("cpu"), device_input.decoder())
    batches = list(feed(torch.arange(len(y))))
    assert np.array_equal(torch.cat([images for images, _ in batches]).numpy(), np.asarray(x))
    assert torch.cat([labels for _, labels in batches]).tolist() == y.tolist()


def test_a_mixed_batch_is_decoded_both_ways_in_its_order(imagenet, monkeypatch):
    x, y = imagenet.x_test, imagenet.y_test
    monkeypatch.setenv("PAIRZOO_DECODE", "0.5")
    feed = device_input.JpegFeed(x, y, 2, torch.device("cpu"), device_input.decoder())
    images = torch.cat([images for images, _ in feed(torch.arange(len(y)))]).numpy()
    assert np.array_equal(images[0::2], np.asarray(x)[0::2])  # libjpeg in the workers
    levels = np.abs(images[1::2] - np.asarray(x)[1::2]) * LEVELS_PER_UNIT  # decode_images
    assert 0 < levels.max() <= 1.0 + 1e-4


@pytest.mark.parametrize("value", ["cpu", "1.5", "-0.1"])
def test_an_unknown_place_of_decoding_is_refused(value, monkeypatch):
    monkeypatch.setenv("PAIRZOO_DECODE", value)
    with pytest.raises(PairzooError, match=f"PAIRZOO_DECODE='{value}': choose one of"):
        device_input.decoder()


@pytest.mark.parametrize("cpu_share", [0.0, 0.4, 1.0])
def test_training_batches_are_augmented_crops_in_the_order_asked(imagenet, cpu_share):
    x, y = imagenet.x_train, imagenet.y_train
    shuffled = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    feed = device_input.JpegFeed(x, y, 5, "cpu", cpu_share)
    for order in (shuffled, shuffled.flip(0)):  # workers kept: each pass in its own order
        batches = list(feed(order))
        assert [len(labels) for _, labels in batches] == [5, 5, 2]
        assert torch.cat([labels for _, labels in batches]).tolist() == y[order.numpy()].tolist()
        assert all(images.shape[1:] == (3, 224, 224) for images, _ in batches)


def test_the_files_bytes_reach_the_feed_joined_in_one_tensor(imagenet):
    # one uint8 tensor crosses from the workers in shared memory; bytes objects were pickled
    x, y = imagenet.x_train, imagenet.y_train
    pixels, joined, lengths, labels = SplitBatches(x, y, 0.25)[[3, 0, 2, 1]]
    files = [Path(x.paths[i]).read_bytes() for i in (0, 2, 1)]  # the first quarter is decoded
    assert pixels.shape == (1, 3, 224, 224) and joined.dtype == torch.uint8
    assert [bytes(part.numpy()) for part in split_files(joined, lengths)] == files
    assert labels.tolist() == [int(y[i]) for i in (3, 0, 2, 1)]
    pixels, joined, lengths, _ = SplitBatches(x, y, 1.0)[[3, 0]]
    assert len(pixels) == 2 and split_files(joined, lengths) == []


def test_the_array_feed_follows_the_order():
    x = np.arange(10 * 2, dtype=np.float32).reshape(10, 2)
    order = torch.tensor([3, 1, 4, 0, 5, 9, 2, 6, 8, 7])
    batches = list(device_input.ArrayFeed(x, np.arange(10), 4, torch.device("cpu"))(order))
    assert [b[1].tolist() for b in batches] == [[3, 1, 4, 0], [5, 9, 2, 6], [8, 7]]
    assert np.array_equal(torch.cat([b[0] for b in batches]).numpy(), x[order.numpy()])


def test_prefetching_hands_on_errors_and_stops_when_left():
    def failing():
        yield torch.zeros(1), torch.zeros(1)
        raise ValueError("unreadable file")

    with pytest.raises(ValueError, match="unreadable"):
        list(device_input.prefetched(failing(), torch.device("cpu")))
    endless = ((torch.zeros(1), torch.zeros(1)) for _ in iter(int, 1))
    batches = device_input.prefetched(endless, torch.device("cpu"))
    next(batches)
    batches.close()  # joins the producing thread: it must notice


@needs_cuda
def test_gpu_decoding_gives_the_cpu_tensors_within_the_stated_tolerance(tmp_path):
    x = ImageFiles(fabricate.photos(tmp_path, 16), train=False)
    encoded = [read_file(path) for path in x.paths]
    gpu = decode_jpeg(encoded, mode=ImageReadMode.RGB, device="cuda")
    cpu = decode_jpeg(encoded, mode=ImageReadMode.RGB)
    for on_gpu, on_cpu in zip(gpu, cpu, strict=True):
        levels = (on_gpu.cpu().float() - on_cpu.float()).abs().mean()
        assert levels <= GPU_DECODE_MEAN_LEVELS, f"decoded {levels:.2f} levels apart"
    transformed = decode_images(encoded, False, x.size, "cuda").cpu()
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    reference = torch.from_numpy(np.asarray(x))
    levels = ((transformed - reference) * std * 255).abs().mean()
    assert levels <= GPU_DECODE_MEAN_LEVELS, f"transformed {levels:.2f} levels apart"


@needs_cuda
def test_retraining_runs_in_the_full_profile_with_resnet50_on_the_gpu(tmp_path):
    fabricate.imagenet(tmp_path / "data", "devkit")
    fabricate.torch_weights(tmp_path / "torch", "resnet50")
    env = {**os.environ, "PAIRZOO_DATA": str(tmp_path / "data"),
           "TORCH_HOME": str(tmp_path / "torch"), "MPLBACKEND": "Agg"}  # fmt: skip
    parameters = {"profile": "full", "artifacts": tmp_path / "out", "architecture": "resnet50",
                  "base_epochs": 1, "retrain_epochs": 1, "ladder": [1],
                  "chain_fractions": [1.0]}  # fmt: skip
    command = [sys.executable, "-m", "pairzoo.cli", "run", "notebooks/retraining.py"]
    for name, value in parameters.items():
        command += ["-p", name, str(value)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=1800)
    assert validate(tmp_path / "out") == []


def test_crop_boxes_fit_their_images_in_random_resized_crops_ranges():
    torch.manual_seed(0)
    heights, widths = torch.tensor([375, 500, 30, 1000] * 64), torch.tensor([500, 375, 40, 10] * 64)
    top, left, h, w = crop_boxes(heights, widths).T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= heights).all() and (left + w <= widths).all()
    drawn = widths > 10  # a 1000 × 10 image fits no crop of aspect ratio 3/4 to 4/3
    area, aspect = (h * w / (heights * widths))[drawn], (w / h)[drawn]
    assert 0.07 <= area.min() and area.max() <= 1.0 and area.std() > 0.1
    assert 0.70 <= aspect.min() and aspect.max() <= 1.40
    assert (w[~drawn] == 10).all() and (h[~drawn] == 13).all() and (top[~drawn] == 493).all()


def test_the_feeds_workers_give_way_to_the_process_that_trains(imagenet, monkeypatch):
    x, y = imagenet.x_train, imagenet.y_train
    monkeypatch.setenv("PAIRZOO_WORKERS", "2")
    before = {p.pid for p in multiprocessing.active_children()}
    feed = device_input.JpegFeed(x, y, 4, "cpu", 1.0)
    assert len(list(feed(torch.arange(len(y))))) == 3
    workers = [p.pid for p in multiprocessing.active_children() if p.pid not in before]
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    niceness = [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers]
    assert niceness == [ours + device_input.WORKER_NICENESS] * 2


def test_a_gpu_takes_a_larger_default_batch_where_its_memory_allows():
    sizes = [batch_for_memory(int(gib * 2**30)) for gib in (8, 24, 39.4, 79.1, 139.8)]
    assert sizes == [64, 64, 128, 256, 256]  # an H100's 79.1 GiB: 256
    if not torch.cuda.is_available():
        assert TrainConfig(epochs=1).batch_size == 64  # the CPU's, as before
