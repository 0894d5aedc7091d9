"""The built-in update codecs, as plug-ins: float32, compressors on the delta, and NNC.

Each codes what its counterpart in `pairzoo.coding.codec` codes, into the same bytes, and decodes
with only the payload, the base and its parameters. A payload adds to those bytes the layout of
the updated tensors (`payload.write_layout`: 2 or 3 bytes where the update keeps the base's names
and shapes) and the length of each part but the last (1 to 3 bytes each).
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from pairzoo.bench import payload
from pairzoo.bench.payload import Slot
from pairzoo.coding import codec
from pairzoo.errors import PairzooError

Tensors = Mapping[str, np.ndarray]
LEVELS = 2.0**31  # int32 levels hold magnitudes below this


@cache
def _zipnn() -> ModuleType:
    """The zipnn package, imported without the torch.jit deprecation warning its import raises."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", FutureWarning)
        import zipnn

    return zipnn


def _zipnn_coder() -> Any:
    return _zipnn().ZipNN(input_format="byte", bytearray_dtype="float32")


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    **codec.COMPRESSORS,
    "zipnn": lambda data: bytes(_zipnn_coder().compress(data)),
}
DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    **codec.DECOMPRESSORS,
    "zipnn": lambda data: bytes(_zipnn_coder().decompress(data)),
}


def _flat(arrays: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])


def _under(base: Tensors, slots: Sequence[Slot]) -> np.ndarray:
    """The base's values under each updated tensor, flat (zeros where the base has no match)."""
    return _flat(base[s.name] if s.in_base else np.zeros(s.shape, np.float32) for s in slots)


def _tensors(flat: np.ndarray, slots: Sequence[Slot]) -> dict[str, np.ndarray]:
    """`flat` cut into the slots' tensors."""
    if flat.size != sum(s.size for s in slots):
        raise PairzooError("the payload does not hold as many values as its layout says")
    ends = np.cumsum([s.size for s in slots])
    return {
        s.name: part.reshape(s.shape)
        for s, part in zip(slots, np.split(flat, ends[:-1]), strict=True)
    }


class Builtin:
    """What every built-in declares: it codes any structure change (new tensors coded whole)."""

    supports = ("matched", "reshaped", "added", "removed")


class Float32(Builtin):
    """The updated model uncoded, every value as 4 bytes: the reference rate."""

    name = "float32"

    def encode(self, base: Tensors, updated: Tensors) -> bytes:
        """The layout and the raw float32 values."""
        return payload.pack(
            [payload.write_layout(base, updated), _flat(updated.values()).tobytes()]
        )

    def decode(self, data: bytes, base: Tensors) -> dict[str, np.ndarray]:
        """The values, cut into the layout's tensors."""
        layout, raw = payload.unpack(data, 2)
        flat = np.frombuffer(raw, dtype=np.float32).copy()
        return _tensors(flat, payload.read_layout(layout, base))


def _index_type(count: int) -> type:
    return np.uint32 if count <= np.iinfo(np.uint32).max else np.uint64


@dataclass(frozen=True)
class DeltaLossless(Builtin):
    """The float32 delta (new tensors whole) through `compressor`, bit-exact.

    base + (updated − base) misses the updated bits where float32 rounds (a base far larger than
    its update, −0.0, overflow): those values travel apart, as positions and exact values.
    With zipnn, ZipNN's byte grouping and entropy coding code the same delta (its own delta mode, an
    XOR of the two models' bytes, came out 0.6% larger on the retraining pair).
    """

    compressor: str

    @property
    def name(self) -> str:
        """`gzip-delta`, `zstd-delta` or `zipnn-delta`."""
        return f"{self.compressor}-delta"

    def encode(self, base: Tensors, updated: Tensors) -> bytes:
        """The layout, the values float32 misses, and the compressed delta."""
        layout = payload.write_layout(base, updated)
        values = _flat(updated.values())
        under = _under(base, payload.read_layout(layout, base))
        delta = values - under
        wrong = np.flatnonzero((under + delta).view(np.uint32) != values.view(np.uint32))
        fixes = wrong.astype(_index_type(values.size)).tobytes() + values[wrong].tobytes()
        return payload.pack([layout, fixes, COMPRESSORS[self.compressor](delta.tobytes())])

    def decode(self, data: bytes, base: Tensors) -> dict[str, np.ndarray]:
        """The base plus the delta, with the missed values put back."""
        layout, fixes, packed = payload.unpack(data, 3)
        slots = payload.read_layout(layout, base)
        under = _under(base, slots)
        values = under + np.frombuffer(DECOMPRESSORS[self.compressor](packed), np.float32)
        index = _index_type(under.size)
        count = len(fixes) // (np.dtype(index).itemsize + 4)
        wrong = np.frombuffer(fixes, index, count)
        values[wrong] = np.frombuffer(fixes, np.float32, offset=wrong.nbytes)
        return _tensors(values, slots)


@dataclass(frozen=True)
class DeltaQuantised(Builtin):
    """The delta rounded to NNC's step at `qp` (1-D tensors finer), int32 levels compressed."""

    compressor: str

    @property
    def name(self) -> str:
        """`gzip-delta-q` or `zstd-delta-q`."""
        return f"{self.compressor}-delta-q"

    def encode(self, base: Tensors, updated: Tensors, qp: int) -> bytes:
        """The layout and the compressed levels, as `codec.delta_quantised` rounds them."""
        settings = codec.NncSettings(qp)
        matched, _ = codec.split(base, updated)
        levels = []
        for name, array in updated.items():
            delta = array - base[name] if name in matched else array
            level = np.rint(delta / settings.step(array.shape))
            if not np.all(np.abs(level) < LEVELS):
                raise PairzooError(f"tensor {name!r}: its delta overflows int32 levels at QP {qp}")
            levels.append(level.astype(np.int32).ravel())
        packed = COMPRESSORS[self.compressor](np.concatenate(levels).tobytes())
        return payload.pack([payload.write_layout(base, updated), packed])

    def decode(self, data: bytes, base: Tensors, qp: int) -> dict[str, np.ndarray]:
        """Levels times step, plus the base where it matches."""
        settings = codec.NncSettings(qp)
        layout, packed = payload.unpack(data, 2)
        slots = payload.read_layout(layout, base)
        flat = np.frombuffer(DECOMPRESSORS[self.compressor](packed), np.int32)
        out = {}
        for slot, level in zip(slots, _tensors(flat, slots).values(), strict=True):
            values = (level * settings.step(slot.shape)).astype(np.float32)
            out[slot.name] = base[slot.name] + values if slot.in_base else values
        return out


class BaseContexts:
    """NNC encoder contexts that coding a base leaves, by QP, tensor names and content; a few kept.

    The encoder and the decoder of an incremental update both start from the context of the base
    coded at the update's QP; the base bitstream is deterministic, so the receiver rebuilds it.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.held: OrderedDict[tuple, codec.BaseStream] = OrderedDict()

    def stream(self, base: Tensors, names: Sequence[str], qp: int) -> codec.BaseStream:
        """The base stream of `base`'s tensors `names` at `qp` (its bitstream and context)."""
        subset = {name: base[name] for name in names}
        key = (qp, tuple(names), codec.tensors_sha256(subset))
        if key not in self.held:
            # every tensor of `subset` is its own match, so all of it is coded
            self.held[key] = codec.encode_base(subset, subset, codec.NncSettings(qp))
            while len(self.held) > self.size:
                self.held.popitem(last=False)
        self.held.move_to_end(key)
        return self.held[key]

    def get(self, base: Tensors, names: Sequence[str], qp: int) -> dict:
        """A private copy of the context left by coding `base`'s tensors `names` at `qp`."""
        return copy.deepcopy(self.stream(base, names, qp).context)


BASE_CONTEXTS = BaseContexts(size=8)


def _nnc_layout(base: Tensors, updated: Tensors) -> bytes:
    """The layout, leaving the new tensors' names and shapes to NNC's bitstream.

    Coded whole (not as differences), NNC keeps every tensor, all-zero ones too, in order; a 0-d
    tensor comes back 1-D, so it is spelt out.
    """
    _, new = codec.split(base, updated)
    return payload.write_layout(base, updated, {k for k in new if updated[k].ndim})


def _restore(
    slots: Sequence[Slot], matched: Mapping[str, np.ndarray], decoded: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The updated tensors: the base's matches from `matched`, the rest from NNC's `decoded`.

    Unnamed slots take, in order, the tensors of `decoded` that no slot names.
    """
    named = {s.name for s in slots}
    pending = [name for name in decoded if name not in named]
    if len(pending) != sum(s.name is None for s in slots):
        raise PairzooError("the bitstream does not hold the tensors that the payload's layout says")
    unnamed = iter(pending)
    out = {}
    for slot in slots:
        if slot.in_base:
            out[slot.name] = matched[slot.name]
        elif slot.name is None:
            name = next(unnamed)
            out[name] = decoded[name]
        else:
            out[slot.name] = decoded[slot.name].reshape(slot.shape)
    return out


class NncFull(Builtin):
    """The updated model coded whole as one NNC bitstream (`codec.nnc_full`)."""

    name = "nnc-full"

    def encode(self, base: Tensors, updated: Tensors, qp: int) -> bytes:
        """The layout and the bitstream."""
        bitstream = codec.encode(updated, codec.NncSettings(qp))
        return payload.pack([_nnc_layout(base, updated), bitstream])

    def decode(self, data: bytes, base: Tensors) -> dict[str, np.ndarray]:
        """The bitstream's tensors, placed by the layout."""
        layout, bitstream = payload.unpack(data, 2)
        slots = payload.read_layout(layout, base)
        decoded = codec.decode(bitstream)
        zeros = {s.name: np.zeros(s.shape, np.float32) for s in slots if s.in_base}
        matched = {k: decoded[k].reshape(z.shape) if k in decoded else z for k, z in zeros.items()}
        return _restore(slots, matched, decoded)


@dataclass(frozen=True)
class NncIncremental(Builtin):
    """The update minus the base as NNC differences over the base's context (`codec.nnc_update`).

    The base's bitstream is not sent (the receiver holds the base and rebuilds its context);
    tensors without a base match are coded whole, apart, without TCA.
    """

    tca: bool = False

    @property
    def name(self) -> str:
        """`nnc-incremental` or `nnc-incremental-tca`."""
        return "nnc-incremental-tca" if self.tca else "nnc-incremental"

    def encode(self, base: Tensors, updated: Tensors, qp: int) -> bytes:
        """The layout, the new tensors' bitstream (mostly empty) and the update's."""
        settings = codec.NncSettings(qp, tca=self.tca)
        matched, new = codec.split(base, updated)
        update = fresh = b""
        if matched:
            delta = {k: updated[k] - base[k] for k in matched}
            context = BASE_CONTEXTS.get(base, matched, qp)
            update = codec.encode(delta, settings, context, differences=True)
        if new:
            fresh = codec.encode({k: updated[k] for k in new}, replace(settings, tca=False))
        return payload.pack([_nnc_layout(base, updated), fresh, update])

    def decode(self, data: bytes, base: Tensors, qp: int) -> dict[str, np.ndarray]:
        """The base plus the decoded differences, and the new tensors."""
        layout, fresh, update = payload.unpack(data, 3)
        slots = payload.read_layout(layout, base)
        shapes = {s.name: s.shape for s in slots if s.in_base}
        matched = {}
        if shapes:
            delta = codec.decode(update, shapes, BASE_CONTEXTS.get(base, list(shapes), qp))
            matched = {k: base[k] + delta[k] for k in shapes}
        return _restore(slots, matched, codec.decode(fresh) if fresh else {})


BUILTIN: dict[str, Builtin] = {
    builtin.name: builtin
    for builtin in (
        Float32(),
        DeltaLossless("gzip"),
        DeltaLossless("zstd"),
        DeltaLossless("zipnn"),
        DeltaQuantised("gzip"),
        DeltaQuantised("zstd"),
        NncFull(),
        NncIncremental(),
        NncIncremental(tca=True),
    )
}
