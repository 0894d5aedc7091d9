"""Compressed variants of a network: uniform weight quantisation, magnitude pruning, int8 ONNX.

Weights are the tensors of conv and linear layers (`weight`, two or more dimensions); biases and
BatchNorm tensors stay float32. Every variant is stored dequantised, as an ordinary float model,
with the size its compressed representation would take.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from torch import nn
from torch.nn.utils import prune

from pairzoo.atomic import atomic_path
from pairzoo.coding import codec
from pairzoo.data.image_files import ImageFiles
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import float_state
from pairzoo.timing import timed

FLOAT_BITS = 32
PRUNABLE = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Variant:
    """A compressed model: how it was made (method, parameters, tool) and its compressed size."""

    model: nn.Module
    method: str
    parameters: dict
    tool: str
    tool_version: str
    size_bytes: int
    size_measure: str

    def record(self) -> dict:
        """The manifest's `compression` block: method, parameters, tool, version and size."""
        return {
            "method": self.method,
            "parameters": self.parameters,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "size_bytes": self.size_bytes,
            "size_measure": self.size_measure,
        }


def _torch_variant(
    model: nn.Module, method: str, parameters: dict, bits: int, measure: str
) -> Variant:
    """A variant made by PyTorch code here, its size `bits` rounded up to bytes plus the rest."""
    size = math.ceil(bits / 8) + _other_bytes(model)
    return Variant(model, method, parameters, "pytorch", torch.__version__, size, measure)


def quantise_per_channel(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric uniform quantisation per output channel (axis 0); dequantised weight and steps.

    Each channel's step is max|w| / (2^(bits−1) − 1), so it uses at most 2^bits − 1 levels.
    """
    if not 2 <= bits <= 16:
        raise PairzooError(f"quantisation needs 2 to 16 bits, not {bits}")
    top = 2 ** (bits - 1) - 1
    flat = weight.detach().reshape(len(weight), -1)
    step = flat.abs().amax(dim=1) / top
    step = torch.where(step > 0, step, torch.ones_like(step))
    levels = torch.clamp(torch.round(flat / step[:, None]), -top, top)
    return (levels * step[:, None]).reshape(weight.shape), step


def _weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE)]


def _other_bytes(model: nn.Module) -> int:
    """Bytes of the float32 tensors that are not layer weights (biases, BatchNorm)."""
    weights = {f"{name}.weight" for name, _ in _weights(model)}
    state = float_state(model)
    return sum(4 * t.numel() for name, t in state.items() if name not in weights)


@torch.no_grad()
def quantised(model: nn.Module, bits: int) -> Variant:
    """A copy of `model` with every layer weight quantised per output channel at `bits`."""
    variant = copy.deepcopy(model)
    size_bits = 0
    for _, module in _weights(variant):
        dequantised, step = quantise_per_channel(module.weight, bits)
        module.weight.copy_(dequantised)
        size_bits += bits * module.weight.numel() + FLOAT_BITS * step.numel()
    measure = "bits × weights + 32 bits per channel step, other tensors float32; in bytes"
    parameters = {"bits": bits, "granularity": "per-output-channel", "symmetric": True}
    return _torch_variant(variant, "uniform-quantisation", parameters, size_bits, measure)


def prune_magnitude(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the `sparsity` fraction of smallest-magnitude layer weights of `model` (global L1).

    The masks stay attached (as `torch.nn.utils.prune` hooks) so fine-tuning keeps the zeros;
    `make_permanent` removes them.
    """
    if not 0 < sparsity < 1:
        raise PairzooError(f"sparsity must lie strictly between 0 and 1, not {sparsity}")
    targets = [(m, "weight") for _, m in _weights(model)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold the pruning masks into the weights and drop the hooks."""
    for _, module in _weights(model):
        if prune.is_pruned(module):
            prune.remove(module, "weight")
    return model


def weight_sparsity(model: nn.Module) -> tuple[int, int]:
    """Zeros and total count of the layer weights."""
    weights = [m.weight.detach() for _, m in _weights(model)]
    return sum(int((w == 0).sum()) for w in weights), sum(w.numel() for w in weights)


def sparse_size(model: nn.Module, sparsity: float) -> Variant:
    """A model pruned to `sparsity` (`prune_magnitude`), sized as nonzero weights and indices."""
    size_bits = 0
    for _, module in _weights(model):
        weight = module.weight.detach()
        index_bits = max(1, math.ceil(math.log2(weight.numel())))
        size_bits += int((weight != 0).sum()) * (FLOAT_BITS + index_bits)
    measure = (
        "nonzero weights × (32 + ceil(log2(tensor size)) index bits), other tensors float32; "
        "in bytes"
    )
    parameters = {"sparsity": sparsity, "granularity": "global-unstructured", "criterion": "L1"}
    return _torch_variant(model, "magnitude-pruning", parameters, size_bits, measure)


def load_state(model: nn.Module, tensors: dict[str, np.ndarray]) -> nn.Module:
    """A copy of `model` holding `tensors` (float state names, e.g. an NNC reconstruction)."""
    variant = copy.deepcopy(model)
    state = {name: torch.from_numpy(np.asarray(array)) for name, array in tensors.items()}
    result = variant.load_state_dict(state, strict=False)
    missing = [name for name in result.missing_keys if not name.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise PairzooError(f"tensors do not fit the model: missing {missing[:3]}, "
                           f"unexpected {result.unexpected_keys[:3]}")  # fmt: skip
    return variant


def nnc_reconstruction(model: nn.Module, coding: codec.Coding) -> Variant:
    """A copy of `model` holding an NNC coding's reconstruction, sized by its bitstream."""
    measure = "NNC bitstream bytes (whole model)"
    variant = load_state(model, coding.reconstruction)
    version = codec.codec_version()
    return Variant(variant, "nnc", coding.settings, codec.CODEC, version, coding.size, measure)


class _Batches(CalibrationDataReader):
    """Feeds calibration images to onnxruntime's quantiser, one batch at a time."""

    def __init__(self, input_name: str, x: np.ndarray | ImageFiles, batch_size: int) -> None:
        self.batches = (
            {input_name: np.asarray(x[i : i + batch_size], dtype=np.float32)}
            for i in range(0, len(x), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch, or None at the end."""
        return next(self.batches, None)


def int8_qdq(
    float_onnx: Path,
    out: Path,
    calibration: np.ndarray | ImageFiles,
    input_name: str,
    batch_size: int = 128,
) -> Path:
    """Static int8 quantisation of an ONNX model (QDQ format, per tensor, min-max calibration)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # onnxruntime advises pre-processing on the root logger
    try:
        with timed("quantise"), atomic_path(out) as tmp:
            quantize_static(
                str(float_onnx),
                str(tmp),
                _Batches(input_name, calibration, batch_size),
                quant_format=QuantFormat.QDQ,
                per_channel=False,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    finally:
        logging.disable(previous)
    return out
