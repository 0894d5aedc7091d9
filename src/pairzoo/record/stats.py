"""What changed between a base and an updated model: structure and per-tensor statistics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class TensorChange:
    """Change of one tensor, or of several tensors taken as one vector."""

    numel: int
    changed: int
    changed_fraction: float
    l2_base: float
    l2_delta: float
    rel_l2: float | None
    max_abs_delta: float

    @classmethod
    def between(cls, base: np.ndarray, updated: np.ndarray) -> TensorChange:
        """Statistics of `updated - base` (equal shapes); a changed value is any bitwise change."""
        b = base.astype(np.float64).ravel()
        delta = updated.astype(np.float64).ravel() - b
        changed = int(np.count_nonzero(base.ravel() != updated.ravel()))
        max_abs = float(np.max(np.abs(delta))) if delta.size else 0.0
        return cls._make(b.size, changed, float(b @ b), float(delta @ delta), max_abs)

    @classmethod
    def combine(cls, parts: list[TensorChange]) -> TensorChange:
        """The statistics of `parts` concatenated into one vector."""
        return cls._make(
            sum(p.numel for p in parts),
            sum(p.changed for p in parts),
            sum(p.l2_base**2 for p in parts),
            sum(p.l2_delta**2 for p in parts),
            max((p.max_abs_delta for p in parts), default=0.0),
        )

    @classmethod
    def _make(
        cls, numel: int, changed: int, base_sq: float, delta_sq: float, max_abs: float
    ) -> TensorChange:
        l2_base, l2_delta = float(np.sqrt(base_sq)), float(np.sqrt(delta_sq))
        if l2_base > 0:
            rel: float | None = l2_delta / l2_base
        else:
            rel = 0.0 if l2_delta == 0 else None
        fraction = changed / numel if numel else 0.0
        return cls(numel, changed, fraction, l2_base, l2_delta, rel, max_abs)


@dataclass(frozen=True)
class StructureChange:
    """Tensors present only on one side, and tensors whose shape differs."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reshaped: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """Whether the two models differ in structure at all."""
        return bool(self.added or self.removed or self.reshaped)

    def record(self) -> dict:
        """The manifest's view."""
        return {"changed": self.changed, **asdict(self)}


def structure_change(
    base: Mapping[str, tuple[int, ...]], updated: Mapping[str, tuple[int, ...]]
) -> StructureChange:
    """Compare two {tensor name: shape} maps."""
    reshaped = {
        name: {"old": list(base[name]), "new": list(updated[name])}
        for name in sorted(set(base) & set(updated))
        if tuple(base[name]) != tuple(updated[name])
    }
    return StructureChange(
        added=sorted(set(updated) - set(base)),
        removed=sorted(set(base) - set(updated)),
        reshaped=reshaped,
    )


@dataclass(frozen=True)
class PairStats:
    """Per-tensor change statistics over the tensors both models share with equal shape."""

    tensors: dict[str, TensorChange]
    total: TensorChange
    structure: StructureChange

    def record(self) -> dict:
        """The manifest's view."""
        return {
            "total": asdict(self.total),
            "tensors": {name: asdict(change) for name, change in self.tensors.items()},
        }


def pair_stats(base: Mapping[str, np.ndarray], updated: Mapping[str, np.ndarray]) -> PairStats:
    """Statistics of the update from `base` to `updated` (tensor name → array)."""
    structure = structure_change(
        {k: v.shape for k, v in base.items()}, {k: v.shape for k, v in updated.items()}
    )
    matched = [k for k in updated if k in base and k not in structure.reshaped]
    tensors = {name: TensorChange.between(base[name], updated[name]) for name in matched}
    total = TensorChange.combine(list(tensors.values()))
    return PairStats(tensors, total, structure)


def renamed(base: Mapping[str, object], tensor_map: Mapping[str, str]) -> dict[str, object]:
    """`base` under the updated model's names: `tensor_map` maps updated name → base name.

    Base tensors the map does not name keep their own names.
    """
    mapped = set(tensor_map.values())
    return {
        **{name: value for name, value in base.items() if name not in mapped},
        **{updated: base[name] for updated, name in tensor_map.items()},
    }


def _group(names: list[str], tensors: Mapping[str, np.ndarray]) -> dict:
    return {"tensors": sorted(names), "numel": sum(int(tensors[name].size) for name in names)}


def reuse_record(
    base: Mapping[str, np.ndarray],
    updated: Mapping[str, np.ndarray],
    tensor_map: Mapping[str, str],
) -> dict:
    """Group tensors as copied unchanged, changed or new (updated side) and dropped (base side).

    `tensor_map` maps updated name → base name; each group lists its tensors and their values.
    """
    copied = [u for u, b in tensor_map.items() if np.array_equal(updated[u], base[b])]
    changed = [u for u in tensor_map if u not in set(copied)]
    mapped = set(tensor_map.values())
    return {
        "copied": _group(copied, updated),
        "changed": _group(changed, updated),
        "new": _group([u for u in updated if u not in tensor_map], updated),
        "dropped": _group([b for b in base if b not in mapped], base),
    }


def slice_problem(
    old_shape: Sequence[int], new_shape: Sequence[int], slices: Sequence[Sequence[int]]
) -> str | None:
    """Why the block `slices` ([start, stop) per axis) of a new tensor cannot be the old one."""
    if not len(slices) == len(old_shape) == len(new_shape):
        return f"{len(slices)} slices for shapes {list(old_shape)} → {list(new_shape)}"
    for axis, ((start, stop), old, new) in enumerate(
        zip(slices, old_shape, new_shape, strict=True)
    ):
        if not 0 <= start <= stop <= new or stop - start != old:
            return f"axis {axis}: [{start}, {stop}) does not hold {old} of {new} values"
    return None


def slice_change(
    base: np.ndarray, updated: np.ndarray, slices: Sequence[Sequence[int]]
) -> TensorChange:
    """Statistics of the block `slices` of `updated` against the whole (smaller) `base`."""
    return TensorChange.between(base, updated[tuple(slice(a, b) for a, b in slices)])
