"""A built-in codec's payload: its parts behind their lengths, and the layout of the update.

The layout says, in the updated model's order, which tensors the receiver's base holds (runs of the
base's tensors in name order), which a codec's own bitstream names (runs without names) and the
name and shape of the rest; a pair that keeps every name and shape costs two or three bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from pairzoo.errors import PairzooError

Tensors = Mapping[str, np.ndarray]
# a layout entry's kind, in its tag's two low bits (the rest: a count, or a named tensor's rank)
BASE, CODED, NAMED = 0, 1, 2


def varint(value: int) -> bytes:
    """`value` (≥ 0) as LEB128: seven bits a byte, the low ones first."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


class Reader:
    """Reads varints and byte strings off a payload, front to back."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = memoryview(data), 0

    def take(self, size: int) -> bytes:
        """The next `size` bytes."""
        if self.at + size > len(self.data):
            raise PairzooError("the payload ends early: it is truncated or not this codec's")
        self.at += size
        return bytes(self.data[self.at - size : self.at])

    def varint(self) -> int:
        """The next varint."""
        value = shift = 0
        while (byte := self.take(1)[0]) & 0x80:
            value, shift = value | (byte & 0x7F) << shift, shift + 7
        return value | byte << shift

    def rest(self) -> bytes:
        """What is left."""
        return self.take(len(self.data) - self.at)


def pack(parts: Sequence[bytes]) -> bytes:
    """One payload of `parts`: each but the last behind its length, the last running to the end."""
    *head, last = parts
    return b"".join([*(varint(len(part)) + part for part in head), last])


def unpack(payload: bytes, count: int) -> list[bytes]:
    """The `count` parts that `pack` put in `payload`."""
    reader = Reader(payload)
    return [reader.take(reader.varint()) for _ in range(count - 1)] + [reader.rest()]


@dataclass(frozen=True)
class Slot:
    """One updated tensor: its name and shape (None where the codec's bitstream gives them)."""

    name: str | None
    shape: tuple[int, ...] | None
    in_base: bool = False

    @property
    def size(self) -> int:
        """How many values the tensor holds."""
        return math.prod(self.shape)


def write_layout(base: Tensors, updated: Tensors, coded: Collection[str] = ()) -> bytes:
    """The layout of `updated` over `base`; `coded` names the tensors a codec's bitstream names.

    A tensor the base holds (same name and shape) is never spelt out; one in `coded` is left to
    the bitstream, which must hold those in the updated model's order. A spelt-out name keeps the
    bytes it shares with the one before (front coding).
    """
    index = {name: i for i, name in enumerate(sorted(base))}
    keyed = []
    for position, (name, array) in enumerate(updated.items()):
        if name in base and base[name].shape == array.shape:
            keyed.append(((BASE, index[name] - position), index[name]))
        elif name in coded:
            keyed.append(((CODED, 0), None))
        else:
            keyed.append(((NAMED, position), (name, tuple(array.shape))))
    out, before = bytearray(), b""
    for (kind, _), group in groupby(keyed, key=lambda item: item[0]):
        found = [what for _, what in group]
        if kind == NAMED:
            name, shape = found[0]
            spelt = name.encode()
            shared = len(os.path.commonprefix([before, spelt]))
            out += varint(4 * len(shape) + NAMED) + b"".join(map(varint, shape))
            out += varint(shared) + varint(len(spelt) - shared) + spelt[shared:]
            before = spelt
        else:
            out += varint(4 * len(found) + kind) + (varint(found[0]) if kind == BASE else b"")
    return bytes(out)


def read_layout(data: bytes, base: Tensors) -> list[Slot]:
    """The updated tensors that `write_layout` described, in order."""
    names = sorted(base)
    reader, slots, before = Reader(data), [], b""
    while reader.at < len(data):
        tag = reader.varint()
        kind, count = tag & 3, tag >> 2
        if kind == BASE:
            start = reader.varint()
            if start + count > len(names):
                raise PairzooError("the payload refers to base tensors that this base lacks")
            run = names[start : start + count]
            slots += [Slot(name, tuple(base[name].shape), in_base=True) for name in run]
        elif kind == CODED:
            slots += [Slot(None, None)] * count
        else:
            shape = tuple(reader.varint() for _ in range(count))
            before = before[: reader.varint()] + reader.take(reader.varint())
            slots.append(Slot(before.decode(), shape))
    return slots
