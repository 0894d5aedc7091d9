"""Coding model tensors: NNC (Fraunhofer's nncodec, MPEG NNR) whole or as an update; baselines.

Every coder returns a `Coding`: the bitstreams it made, the bytes a receiver needs, the tensors it
reconstructs and how long encoding and decoding took.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import metadata
from types import ModuleType

import numpy as np
import zstandard

from pairzoo.errors import PairzooError

CODEC = "nncodec"
QP_DENSITY = 2
GZIP_LEVEL = 6
ZSTD_LEVEL = 9
Tensors = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class NncSettings:
    """NNC's quantisation and coding options (nncodec's defaults except `qp`)."""

    qp: int
    tca: bool = False
    nonweight_qp: int = -75
    use_dq: bool = True

    def step(self, shape: tuple[int, ...]) -> float:
        """NNC's quantisation step for a tensor: weights (≥ 2 dimensions) at `qp`, others finer."""
        qp = self.qp if len(shape) > 1 else self.nonweight_qp
        return float(2.0 ** (qp >> QP_DENSITY) * (1 + (qp & 3) / 4))

    def record(self, differences: bool) -> dict:
        """The settings as stored in the manifest."""
        return {**asdict(self), "qp_density": QP_DENSITY, "compress_differences": differences}


@dataclass
class Coding:
    """One coded version of an updated model."""

    method: str
    settings: dict
    parts: dict[str, bytes]
    size: int
    reconstruction: dict[str, np.ndarray]
    encode_seconds: float = 0.0
    decode_seconds: float = 0.0


def codec_version() -> str:
    """The installed nncodec's version."""
    return metadata.version(CODEC)


def new_context() -> dict:
    """Empty state shared by an NNC encoder or decoder across bitstreams (nncodec's base params)."""
    return {"parameters": {}, "put_node_depth": {}, "device_id": 0, "parameter_id": {}}


@cache
def load_nncodec() -> ModuleType:
    """The `nnc` module of nncodec, imported on first use (the import takes seconds)."""
    from nncodec import nnc

    return nnc


def run_nnc(action: str, call: Callable[[ModuleType], object]) -> object:
    """Run `call(nnc)`; nncodec's SystemExit and errors become one PairzooError naming `action`."""
    try:
        return call(load_nncodec())
    except (SystemExit, Exception) as exc:  # nncodec exits or asserts on input it cannot handle
        raise PairzooError(f"nncodec failed while {action}: {type(exc).__name__}: {exc}") from exc


def _prepare(tensors: Tensors) -> dict[str, np.ndarray]:
    if not tensors:
        raise PairzooError("nothing to code: the tensor dict is empty")
    prepared = {}
    for name, array in tensors.items():
        if isinstance(array, np.generic):  # a 0-d tensor after arithmetic (a delta)
            array = np.asarray(array)
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            kind = getattr(array, "dtype", type(array).__name__)
            raise PairzooError(f"NNC codes float32 arrays only; tensor {name!r} is {kind}")
        if not np.isfinite(array).all():
            raise PairzooError(f"tensor {name!r} holds NaN or infinite values: NNC cannot code it")
        prepared[name] = np.ascontiguousarray(array.reshape(array.shape or (1,)))
    return prepared


def encode(
    tensors: Tensors, settings: NncSettings, context: dict | None = None, differences: bool = False
) -> bytes:
    """One NNC bitstream of `tensors`; with a `context`, it refers to what that context holds.

    `differences` marks the tensors as an update to the context's parent (incremental coding).
    """
    prepared = _prepare(tensors)
    return bytes(
        run_nnc(
            f"encoding {len(prepared)} tensors at QP {settings.qp}",
            lambda nnc: nnc.compress(
                prepared,
                bitstream_path=None,
                return_bitstream=True,
                qp=settings.qp,
                qp_density=QP_DENSITY,
                nonweight_qp=settings.nonweight_qp,
                use_dq=settings.use_dq,
                tca=settings.tca,
                approx_param_base=context,
                update_base_param=context is not None,
                compress_differences=differences,
                verbose=False,
            ),
        )
    )


def decode(
    bitstream: bytes,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    context: dict | None = None,
) -> dict[str, np.ndarray]:
    """The tensors of an NNC bitstream, shaped as `shapes` says (as the bitstream says without it).

    Coding differences, NNC leaves out tensors that quantise to all zeros; with `shapes`, they
    come back as zeros here.
    """
    decoded = run_nnc(
        "decoding a bitstream",
        lambda nnc: nnc.decompress(
            bytearray(bitstream), approx_param_base=context, update_base_param=context is not None
        ),
    )
    if shapes is None:
        return {name: np.asarray(array, dtype=np.float32) for name, array in decoded.items()}
    unknown = sorted(set(decoded) - set(shapes))
    if unknown:
        raise PairzooError(f"the bitstream holds tensors that were not expected: {unknown[:5]}")
    return {
        name: np.asarray(decoded[name], dtype=np.float32).reshape(shape)
        if name in decoded
        else np.zeros(shape, dtype=np.float32)
        for name, shape in shapes.items()
    }


def split(base: Tensors, updated: Tensors) -> tuple[list[str], list[str]]:
    """Names of the updated tensors that match a base tensor (name and shape), and of the others."""
    matched = [k for k, v in updated.items() if k in base and base[k].shape == v.shape]
    return matched, [k for k in updated if k not in matched]


def _shapes(tensors: Tensors) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in tensors.items()}


def _timed(func: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def nnc_full(updated: Tensors, settings: NncSettings) -> Coding:
    """The updated model coded whole, as one NNC bitstream."""
    settings = replace(settings, tca=False)
    bitstream, enc = _timed(lambda: encode(updated, settings))
    reconstruction, dec = _timed(lambda: decode_sample({"full": bitstream}, {}, _shapes(updated)))
    return Coding(
        "nnc-full",
        settings.record(differences=False),
        {"full": bitstream},
        len(bitstream),
        reconstruction,
        enc,
        dec,
    )


@dataclass(frozen=True)
class BaseStream:
    """The base's bitstream at one QP and the encoder context it leaves, shared by the updates."""

    qp: int
    bitstream: bytes
    context: dict


def encode_base(base: Tensors, updated: Tensors, settings: NncSettings) -> BaseStream | None:
    """The bitstream of the base tensors that the update refers to; None when none match."""
    matched, _ = split(base, updated)
    if not matched:
        return None
    context = new_context()
    bitstream = encode({k: base[k] for k in matched}, replace(settings, tca=False), context)
    return BaseStream(settings.qp, bitstream, context)


def nnc_update(
    base: Tensors, updated: Tensors, settings: NncSettings, base_stream: BaseStream | None = None
) -> Coding:
    """The update coded incrementally: the base first, then updated − base as NNC differences.

    The base's bitstream sets up the context both sides share (the parent of the update and, with
    `tca`, the temporal context); the receiver already holds the base, so only the update counts
    in bytes and encoding time (decoding time includes setting up the context from the base's
    bitstream). `base_stream`, from `encode_base` at `settings.qp`, saves coding the base again.
    Tensors without a base counterpart (new or reshaped) are coded whole, apart.
    """
    matched, new = split(base, updated)
    parts: dict[str, bytes] = {}
    if matched:
        base_stream = base_stream or encode_base(base, updated, settings)
        if base_stream.qp != settings.qp:
            raise PairzooError(f"the base was coded at QP {base_stream.qp}, not {settings.qp}")
        parts["base"] = base_stream.bitstream
        context = copy.deepcopy(base_stream.context)  # encoding the update changes it
    start = time.perf_counter()
    if matched:
        delta = {k: updated[k] - base[k] for k in matched}
        parts["update"] = encode(delta, settings, context, differences=True)
    if new:
        parts["new"] = encode({k: updated[k] for k in new}, replace(settings, tca=False))
    enc = time.perf_counter() - start
    reconstruction, dec = _timed(lambda: decode_sample(parts, base, _shapes(updated)))
    name = "nnc-incremental-tca" if settings.tca else "nnc-incremental"
    size = len(parts.get("update", b"")) + len(parts.get("new", b""))
    return Coding(name, settings.record(differences=True), parts, size, reconstruction, enc, dec)


def decode_sample(
    parts: Mapping[str, bytes], base: Tensors, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, np.ndarray]:
    """Reconstruct an updated model from NNC parts: `full` alone, or `base`, `update` and `new`."""
    if "full" in parts:
        return decode(parts["full"], shapes)
    matched = [k for k in shapes if k in base and tuple(base[k].shape) == tuple(shapes[k])]
    new = [k for k in shapes if k not in matched]
    tensors: dict[str, np.ndarray] = {}
    if matched:
        if "base" not in parts or "update" not in parts:
            raise PairzooError("an incremental sample needs its base and update bitstreams")
        context = new_context()
        decode(parts["base"], {k: shapes[k] for k in matched}, context)
        delta = decode(parts["update"], {k: shapes[k] for k in matched}, context)
        tensors.update({k: base[k] + delta[k] for k in matched})
    if new:
        if "new" not in parts:
            raise PairzooError(f"tensors {new[:3]} have no base and no bitstream of their own")
        tensors.update(decode(parts["new"], {k: shapes[k] for k in new}))
    return {k: tensors[k] for k in shapes}


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, GZIP_LEVEL, mtime=0),
    "zstd": lambda data: zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data),
}
DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompress(data),
}


def float32(updated: Tensors) -> Coding:
    """The uncoded model: every value as a 4-byte float."""
    size = sum(4 * v.size for v in updated.values())
    return Coding("float32", {}, {}, size, dict(updated))


def _pack(arrays: list[np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)


def _unpack(data: bytes, shapes: list[tuple[int, ...]], dtype: type) -> list[np.ndarray]:
    flat = np.frombuffer(data, dtype=dtype)
    sizes = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
    return [flat[a:b].reshape(s) for a, b, s in zip(sizes[:-1], sizes[1:], shapes, strict=True)]


def delta_lossless(base: Tensors, updated: Tensors, compressor: str) -> Coding:
    """The float32 delta (new tensors as they are) through a general-purpose compressor."""
    matched, _ = split(base, updated)
    names = list(updated)
    delta = [updated[k] - base[k] if k in matched else updated[k] for k in names]
    payload, enc = _timed(lambda: COMPRESSORS[compressor](_pack(delta)))
    raw, dec = _timed(lambda: DECOMPRESSORS[compressor](payload))
    restored = _unpack(raw, [updated[k].shape for k in names], np.float32)
    reconstruction = {
        k: base[k] + d if k in matched else d.copy() for k, d in zip(names, restored, strict=True)
    }
    record = {"level": _level(compressor)}
    return Coding(f"{compressor}-delta", record, {}, len(payload), reconstruction, enc, dec)


def delta_quantised(base: Tensors, updated: Tensors, settings: NncSettings) -> list[Coding]:
    """The delta rounded to NNC's step for `settings` (int32 levels), through each compressor.

    The codings share one rounding, so their reconstructions are one and the same.
    """
    matched, _ = split(base, updated)
    names = list(updated)
    shapes = [updated[k].shape for k in names]
    steps = [settings.step(shape) for shape in shapes]
    start = time.perf_counter()
    delta = [updated[k] - base[k] if k in matched else updated[k] for k in names]
    levels = _pack(
        [np.rint(d / step).astype(np.int32) for d, step in zip(delta, steps, strict=True)]
    )
    rounding = time.perf_counter() - start
    restored = _unpack(levels, shapes, np.int32)
    reconstruction = {}
    for k, q, step in zip(names, restored, steps, strict=True):
        values = (q * step).astype(np.float32)
        reconstruction[k] = base[k] + values if k in matched else values
    codings = []
    for compressor, compress in COMPRESSORS.items():
        start = time.perf_counter()
        payload = compress(levels)
        middle = time.perf_counter()
        DECOMPRESSORS[compressor](payload)
        seconds = (rounding + middle - start, time.perf_counter() - middle)
        record = {"qp": settings.qp, "nonweight_qp": settings.nonweight_qp}
        record["level"] = _level(compressor)
        method = f"{compressor}-delta-q"
        codings.append(Coding(method, record, {}, len(payload), reconstruction, *seconds))
    return codings


def _level(compressor: str) -> int:
    return GZIP_LEVEL if compressor == "gzip" else ZSTD_LEVEL


def tensors_sha256(tensors: Tensors) -> str:
    """Hex sha256 over the tensors' names, shapes and float32 bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name], dtype=np.float32)
        digest.update(f"{name}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
