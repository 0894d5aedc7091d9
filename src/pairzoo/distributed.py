"""Where training runs: the device, mixed precision, and the process group under `torchrun`.

`torchrun` starts one process per GPU and sets RANK, WORLD_SIZE and LOCAL_RANK; without it there
is one process. Every process runs the whole recipe; only rank 0 writes the output folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist


def rank() -> int:
    """The rank of this process under torchrun (0 without it)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Number of processes under torchrun (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def device() -> torch.device:
    """The GPU of this process (its LOCAL_RANK) when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def setup() -> torch.device:
    """Start the process group once (nccl on GPUs, gloo on CPUs) when under torchrun; the device."""
    here = device()
    if here.type == "cuda":
        torch.cuda.set_device(here)
        torch.backends.cudnn.benchmark = True
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if here.type == "cuda" else "gloo")
    return here


def all_sum(values: list[float]) -> list[float]:
    """`values` summed over all processes (as they are with one)."""
    if world_size() == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=setup())
    dist.all_reduce(total)
    return total.tolist()


def share_buffers(model: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BatchNorm statistics), so all hold one model."""
    if world_size() > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)


def autocast(here: torch.device) -> AbstractContextManager:
    """Mixed precision on CUDA (bfloat16 where supported, else float16); none on the CPU."""
    if here.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if half_is_bf16(here) else torch.float16)


# CUDA's float32 operations that may round their inputs to TensorFloat-32 (cuDNN's do by default)
_FLOAT32_BACKENDS = (
    torch.backends.cuda.matmul,
    torch.backends.cudnn.conv,
    torch.backends.cudnn.rnn,
)


@contextmanager
def full_float32() -> Iterator[None]:
    """float32 arithmetic throughout, as the ONNX files compute in onnxruntime: no TensorFloat-32.

    Metrics are measured so: validate re-scores them from the ONNX, and predictions near a tie
    would change in bfloat16 or TensorFloat-32.
    """
    saved = [backend.fp32_precision for backend in _FLOAT32_BACKENDS]
    for backend in _FLOAT32_BACKENDS:
        backend.fp32_precision = "ieee"
    try:
        yield
    finally:
        for backend, precision in zip(_FLOAT32_BACKENDS, saved, strict=True):
            backend.fp32_precision = precision


def half_is_bf16(here: torch.device) -> bool:
    """Whether mixed precision on `here` uses bfloat16 (needs no loss scaling)."""
    return here.type == "cuda" and torch.cuda.is_bf16_supported()


def grad_scaler(here: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 training on CUDA; a pass-through otherwise."""
    return torch.amp.GradScaler(here.type, enabled=here.type == "cuda" and not half_is_bf16(here))


def output_folder(folder: Path) -> Path:
    """`folder` on rank 0; on other ranks a private scratch folder, removed when they exit."""
    if rank() == 0:
        return folder
    scratch = Path(tempfile.mkdtemp(prefix=f"pairzoo-rank{rank()}-")) / folder.name
    atexit.register(shutil.rmtree, scratch.parent, ignore_errors=True)
    return scratch


def workers(most: int = 8) -> int:
    """DataLoader worker processes: $PAIRZOO_WORKERS, else the CPUs per process (at most `most`)."""
    if os.environ.get("PAIRZOO_WORKERS"):
        return int(os.environ["PAIRZOO_WORKERS"])
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(most, (os.cpu_count() or 1) // local))
