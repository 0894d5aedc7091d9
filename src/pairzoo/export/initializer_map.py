"""Initializer maps: which ONNX initializer holds each framework tensor, and in which axis order.

An entry `{"initializer": name, "perm": [...]}` says that the initializer equals
`np.transpose(tensor, perm)` exactly; `perm` is left out when it is the identity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import numpy_helper


def _perm(entry: Mapping, ndim: int) -> list[int]:
    return list(entry.get("perm", range(ndim)))


def placed(tensor: np.ndarray, entry: Mapping) -> np.ndarray:
    """The framework tensor as its initializer holds it."""
    return np.ascontiguousarray(np.transpose(tensor, _perm(entry, tensor.ndim)))


def taken_back(initializer: np.ndarray, entry: Mapping) -> np.ndarray:
    """The initializer in the framework tensor's axis order."""
    return np.transpose(initializer, np.argsort(_perm(entry, initializer.ndim)))


def mismatches(
    proto: onnx.ModelProto,
    tensors: Mapping[str, np.ndarray],
    initializer_map: Mapping[str, Mapping],
) -> tuple[list[str], list[str]]:
    """Tensors the map places on no initializer of their own, and those placed on unequal ones.

    Entries for tensors that `tensors` lacks count as not placed.
    """
    initializers = {init.name: init for init in proto.graph.initializer}
    held = Counter(entry["initializer"] for entry in initializer_map.values())
    absent = sorted(
        set(tensors) ^ set(initializer_map)
        | {
            name
            for name, entry in initializer_map.items()
            if entry["initializer"] not in initializers or held[entry["initializer"]] > 1
        }
    )
    differ = []
    for name in sorted(set(tensors) - set(absent)):
        entry = initializer_map[name]
        stored = numpy_helper.to_array(initializers[entry["initializer"]])
        try:
            value = placed(tensors[name], entry)
        except ValueError:  # a perm that is no permutation of the tensor's axes
            differ.append(name)
            continue
        if not np.array_equal(stored, value):
            differ.append(name)
    return absent, differ
