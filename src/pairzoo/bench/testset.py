"""The test set as a codec benchmark reads it: pairs with tensors, structure, metric and a scorer.

`pairzoo.open` gives a `TestSet`: an output folder, an unpacked archive or the archive's .zip.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairzoo.bench.plugin import STRUCTURES
from pairzoo.coding.codec import tensors_sha256
from pairzoo.coding.coded_samples import metric_of, model_evaluator
from pairzoo.errors import PairzooError
from pairzoo.record.metrics import fidelity
from pairzoo.record.stats import renamed
from pairzoo.record.tree import FolderTree, open_tree
from pairzoo.record.view import Folder, Model, Pair, read_manifest

# What a model does, by the metric it is scored with.
TASKS = {
    "top1": "classifier",
    "psnr": "autoencoder",
    "reconstruction-mse": "autoencoder",
    "perplexity": "language-model",
    "next-token-top1": "language-model",
    "map": "detector",
    "map50": "detector",
}


@dataclass(frozen=True)
class Score:
    """A reconstruction's metric and its fidelity to the uncoded model (None where not defined).

    `nll`: test cross-entropy (nats); `agreement`: % of top-1 outputs equal to the uncoded
    model's; `output_mse`: an autoencoder's outputs against the uncoded model's.
    """

    value: float
    nll: float | None = None
    agreement: float | None = None
    output_mse: float | None = None


class _Scorer:
    """A model's evaluator with its uncoded outputs, computed once."""

    def __init__(self, model: Model):
        self.metric, self.evaluate = model_evaluator(model)
        # a detector's evaluator gives its metric alone: no outputs to compare
        self.reference = self.evaluate.outputs() if hasattr(self.evaluate, "outputs") else None
        self.seen: dict[str | None, Score] = {}  # by the sha256 of the tensors scored
        self.uncoded = tensors_sha256(model.tensors())  # the same tensors as no reconstruction

    def __call__(self, tensors: Mapping[str, np.ndarray] | None) -> Score:
        key = None if tensors is None else tensors_sha256(tensors)
        key = None if key == self.uncoded else key
        if key not in self.seen:
            self.seen[key] = self._score(tensors)
            while len(self.seen) > 64:
                self.seen.pop(next(iter(self.seen)))
        return self.seen[key]

    def _score(self, tensors: Mapping[str, np.ndarray] | None) -> Score:
        evaluate = self.evaluate
        if self.reference is None:
            return Score(evaluate(tensors))
        outputs = self.reference if tensors is None else evaluate.outputs(tensors)
        value = evaluate.score(outputs, evaluate.x, evaluate.data)
        measures = fidelity(self.metric, outputs, self.reference, evaluate.x, evaluate.data)
        return Score(
            value, measures.get("nll"), measures.get("agreement"), measures.get("output-mse")
        )


def reconstruction_problem(
    updated: Mapping[str, np.ndarray], reconstruction: Mapping[str, object]
) -> str | None:
    """Why `reconstruction` cannot stand for `updated`: names, shapes, dtype, finiteness."""
    if not isinstance(reconstruction, Mapping):
        return f"a reconstruction is a dict of arrays, not {type(reconstruction).__name__}"
    missing = sorted(set(updated) - set(reconstruction))
    extra = sorted(set(reconstruction) - set(updated))
    if missing or extra:
        return f"tensor names differ: missing {missing[:3]}, extra {extra[:3]}"
    for name, expected in updated.items():
        array = reconstruction[name]
        if not isinstance(array, np.ndarray):
            return f"tensor {name!r} is a {type(array).__name__}, not a numpy array"
        if array.shape != expected.shape:
            return f"tensor {name!r} has shape {list(array.shape)}, not {list(expected.shape)}"
        if array.dtype != expected.dtype:
            return f"tensor {name!r} is {array.dtype}, not {expected.dtype}"
        if not np.isfinite(array).all():
            return f"tensor {name!r} holds NaN or infinite values"
    return None


class BenchPair(Pair):
    """A pair with what a codec benchmark needs: tensors, structure, metric, reference, score."""

    folder: TestSet

    @property
    def metric(self) -> str:
        """The id of the metric the updated model is scored with (see the manifest's `metrics`)."""
        return metric_of(self.updated.record)

    @property
    def task(self) -> str:
        """What the updated model does: classifier, autoencoder, language-model or detector."""
        return TASKS.get(self.metric, "other")

    @property
    def reference(self) -> float:
        """The updated model's metric as the manifest records it."""
        return self.updated.metrics[self.metric]["value"]

    @property
    def parameters(self) -> int:
        """The number of values in the updated model's tensors (what bits per parameter divide)."""
        return sum(v.size for v in self.updated_tensors().values())

    @property
    def structure(self) -> frozenset[str]:
        """The pair's structure changes: `matched` (none), or `reshaped`, `added`, `removed`."""
        change = self.structure_change
        kinds = {k for k in ("reshaped", "added", "removed") if change[k]}
        return frozenset(kinds or {"matched"})

    @property
    def tensor_map(self) -> dict[str, str]:
        """Updated tensor name → base tensor name, where the update renames base tensors."""
        return self.record.get("tensor_map", {})

    def base_tensors(self) -> dict[str, np.ndarray]:
        """The base's tensors, under the updated model's names where the pair renames them."""
        return renamed(self.folder.tensors(self.base), self.tensor_map)

    def updated_tensors(self) -> dict[str, np.ndarray]:
        """The updated model's tensors under their framework names (bfloat16 read as float32)."""
        return self.folder.tensors(self.updated)

    def score(self, reconstruction: Mapping[str, np.ndarray] | None = None) -> Score:
        """The updated model's metric and fidelity with `reconstruction` in place of its tensors.

        Framework-free: onnxruntime on the model's ONNX, on its own test split. Without a
        reconstruction, the uncoded model's (which reproduces the manifest's value).
        """
        if reconstruction is not None:
            problem = reconstruction_problem(self.updated_tensors(), reconstruction)
            if problem:
                raise PairzooError(f"pair {self.id}: {problem}")
        return self.folder.scorer(self.updated)(reconstruction)


class TestSet(Folder):
    """A set of pairs to evaluate codecs on; tensors and scorers are read once and kept a while."""

    pair_type = BenchPair
    __test__ = False  # not a pytest class
    KEEP = 4  # models whose tensors are kept; scorers kept: 2

    def __init__(self, tree: object, entries: dict, target: Path | None = None):
        super().__init__(tree, entries)
        self.target = target  # where it was opened from (worker processes open it again)
        self._tensors: OrderedDict[str, dict] = OrderedDict()
        self._scorers: OrderedDict[str, _Scorer] = OrderedDict()

    def pairs(
        self,
        recipe: str | None = None,
        relation: str | None = None,
        pattern: str | None = None,
        structure: str | None = None,
        task: str | None = None,
    ) -> list[BenchPair]:
        """The pairs in id order, filtered by recipe, relation, id glob, structure change, task."""
        if structure is not None and structure not in STRUCTURES:
            raise PairzooError(f"unknown structure change {structure!r}: one of {STRUCTURES}")
        return [
            pair
            for pair in super().pairs(recipe, relation)
            if (pattern is None or fnmatch.fnmatchcase(pair.id, pattern))
            and (structure is None or structure in pair.structure)
            and (task is None or pair.task == task)
        ]

    def tensors(self, model: Model) -> dict[str, np.ndarray]:
        """A model's tensors, read once while they are among the last few used."""
        return _kept(self._tensors, model.id, model.tensors, self.KEEP)

    def scorer(self, model: Model) -> _Scorer:
        """A model's scorer, with its uncoded outputs computed once."""
        return _kept(self._scorers, model.id, lambda: _Scorer(model), 2)


def _kept(cache: OrderedDict, key: str, make: object, size: int) -> object:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = value = make()
    while len(cache) > size:
        cache.popitem(last=False)
    return value


def of(folder: Path, entries: dict) -> TestSet:
    """The test set of an output folder whose manifest a recipe has just read."""
    return TestSet(FolderTree(Path(folder)), entries, Path(folder))


def open(target: Path | str) -> TestSet:  # noqa: A001 (pairzoo.open)
    """The test set in an output folder, an unpacked archive, or a .zip archive read in place."""
    tree = open_tree(Path(target))
    try:
        return TestSet(tree, read_manifest(tree)[1], Path(target))
    except BaseException:
        tree.close()
        raise
