"""Write a recipe's models (safetensors + ONNX) and pairs (change statistics) into the manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pairzoo import distributed
from pairzoo.atomic import write_text
from pairzoo.data.detection import DetectionData
from pairzoo.data.sets import DatasetInfo, ImageData, Subset
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import (
    Exporter,
    ModelFiles,
    OnnxExporter,
    load_tensors,
    stored_values,
)
from pairzoo.models.pretrained import Pretrained
from pairzoo.profiles import artifacts_dir
from pairzoo.record import manifest
from pairzoo.record.declarations import Declarations, Relation, clashes
from pairzoo.record.metrics import Metric, definitions
from pairzoo.record.staged_output import StagedOutput
from pairzoo.record.stats import (
    PairStats,
    pair_stats,
    renamed,
    reuse_record,
    slice_change,
    slice_problem,
)
from pairzoo.timing import SECONDS, timed
from pairzoo.train.config import TrainConfig

if TYPE_CHECKING:
    from pairzoo.data.text import TextData

LICENCE = (
    "Apache-2.0 for the weights pairzoo produced; the training data keeps its own licence "
    "(see the dataset entry)"
)


Config = TrainConfig | Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class Training:
    """How a model was trained: hyper-parameters, the training subset, the model it started from."""

    config: Config
    subset: Subset
    start: str | None = None  # the model of this recipe it continued from; None: a root

    @classmethod
    def of(cls, data: ImageData, config: Config, *, start: str | None = None) -> Training:
        """Training on `data`, a set drawn by `data.sets.draw` (which remembers the subset)."""
        if data.subset is None or data.subset.seed is None:
            raise PairzooError(f"train on a drawn subset of {data.info.id} (data.sets.draw)")
        return cls(config=config, subset=data.subset, start=start)


@dataclass(frozen=True)
class PairMeasurement:
    """A metric measured on both models of a pair, on the test images of `classes` (None: all)."""

    base: float
    updated: float
    classes: Sequence[str] | None


class PairWriter:
    """Writes one recipe's models and pairs into an output folder and its manifest.

    Files are staged (`record.staged_output`) and records kept here until `finish`, which puts
    them in place of the recipe's previous run in one step: a failed or interrupted run loses
    nothing, and the manifest never holds half a run. Other recipes' entries stay.
    Under torchrun only rank 0 writes the folder; the others write a scratch copy they delete.
    `architecture` is the recipe's (a model's own where it names one); `pretrained` are the
    published weights every model of the writer's data without a parent in the set started from.
    `relations` are those its pairs have (default: any built-in one), a `Relation` for each of the
    recipe's own; `metrics` are its own, `datasets` too (given, it records built-in ones and these
    only). All are checked before anything is written.
    """

    def __init__(
        self,
        recipe: str,
        profile: str,
        data: ImageData,
        folder: str | Path | None = None,
        parity_batch: int = 64,
        *,
        architecture: str | None = None,
        pretrained: Pretrained | None = None,
        relations: Iterable[str | Relation] | None = None,
        metrics: Mapping[str, Metric] | None = None,
        datasets: Sequence[DatasetInfo] = (),
    ) -> None:
        self.declared = Declarations.of(relations, metrics, datasets)
        self.declared.check_dataset(data.info.id)
        self.recipe = recipe
        self.profile = profile
        self.data = data
        self.architecture = architecture
        self.pretrained = pretrained
        self.folder = distributed.output_folder(artifacts_dir(profile, folder))
        if self.declared.record() and (self.folder / manifest.MANIFEST).exists():
            self._check_clashes(manifest.load(self.folder))  # before anything is written
        self.output = StagedOutput(self.folder, recipe, profile)
        self.exporter = OnnxExporter(data.x_test[:parity_batch])
        own = {k: m.record() for k, m in self.declared.metrics.items()}
        self.entries: dict = {
            "datasets": {},
            "metrics": {**definitions(), **own},
            "models": {},
            "pairs": {},
        }
        self._enter_dataset(data)

    def model_id(self, name: str) -> str:
        """Full id of a model of this recipe."""
        if "/" in name:
            raise PairzooError(f"model name {name!r}: a recipe names its own models, no '/'")
        return f"{self.recipe}/{name}"

    def path_stem(self, name: str) -> Path:
        """Where a model's files are written, without suffix (in <folder>/<recipe>/ when done)."""
        return self.output.path(self.model_id(name).split("/", 1)[1])

    def add_model(
        self, name: str, model: Any, *, exporter: Exporter | None = None, **details: Any
    ) -> dict:
        """Write `model`'s files with its framework's `exporter` and enter it (`record_model`).

        `exporter` defaults to the writer's PyTorch exporter; `details` are `record_model`'s
        keywords (training, metrics, architecture, description, classes, extra, data, …).
        """
        self._check_metrics(details.get("metrics", {}))
        self.declared.check_dataset((details.get("data") or self.data).info.id)
        return self.record_model(
            name, (exporter or self.exporter).save(model, self.path_stem(name)), **details
        )

    def record_model(
        self,
        name: str,
        files: ModelFiles,
        *,
        training: Training,
        metrics: dict[str, float],
        architecture: str | None = None,
        description: str = "",
        classes: Sequence[str] | None = None,
        extra: dict | None = None,
        data: ImageData | DetectionData | TextData | None = None,
        test_classes: Sequence[str] | None = None,
    ) -> dict:
        """Enter a model whose files are already written (any framework); return its record.

        Prints one summary line (metrics, ONNX parity). `extra` adds fields to the record (for
        example a `compression` block); `data` is the model's training and test set when it is not
        the writer's; `test_classes` names the classes whose test images the metrics were measured
        on, where not all.
        """
        data = data or self.data
        architecture = architecture or self.architecture
        if architecture is None:
            raise PairzooError(f"model {name!r}: name its architecture (or the writer's)")
        self._check_metrics(metrics)
        classes = list(classes if classes is not None else data.classes)
        split: dict = {"dataset": data.info.id, "split": "test"}
        if test_classes is not None:
            if not set(test_classes) <= set(classes):
                raise PairzooError(f"model {name!r}: test classes {test_classes} not in {classes}")
            split["classes"] = list(test_classes)
        config, subset = training.config, training.subset
        pretrained = self.pretrained if training.start is None and data is self.data else None
        paths = {"onnx": files.onnx.path, "safetensors": files.safetensors, **files.others}
        record = {
            "recipe": self.recipe,
            "description": description,
            "framework": files.framework,
            "framework_version": files.framework_version,
            "architecture": architecture,
            "parameters": stored_values(files.safetensors),
            "input_shape": list(data.input_shape),
            "classes": classes,
            "files": {kind: self.output.record(path) for kind, path in paths.items()},
            "onnx": {
                "opset": files.onnx.opset,
                "exporter": files.onnx.exporter,
                "max_abs_diff": files.onnx.max_abs_diff,
                "initializer_names": files.onnx.initializer_names,
                **(
                    {"initializer_map": files.onnx.initializer_map}
                    if files.onnx.initializer_map is not None
                    else {}
                ),
                **(
                    {"output_scale": files.onnx.output_scale}
                    if files.onnx.output_scale is not None
                    else {}
                ),
                **({"parity": files.onnx.parity} if files.onnx.parity else {}),
            },
            "training": {
                "dataset": data.info.id,
                "split": "train",
                "subset": training.subset.record(),
                "initialised_from": training.start and self.model_id(training.start),
                "config": config.record() if isinstance(config, TrainConfig) else dict(config),
                **({"classes": list(subset.classes)} if subset.classes is not None else {}),
                **({"pretrained": pretrained.record()} if pretrained else {}),
            },
            "metrics": {k: {"value": v, **split} for k, v in metrics.items()},
            "licence": LICENCE,
            **(extra or {}),
        }
        self._enter_dataset(data)
        self.entries["models"][self.model_id(name)] = record
        units = {k: self.declared.known_metrics()[k].unit for k in metrics}
        print(_summary(name, metrics, units, split, files.onnx.max_abs_diff))
        return record

    def _enter_dataset(self, data: ImageData | DetectionData | TextData) -> None:
        """Enter the dataset's record: the whole set, its label names in label order."""
        self.declared.check_dataset(data.info.id)
        if isinstance(data, ImageData) and data.subset is not None:
            raise PairzooError(
                f"record the whole {data.info.id}, not a subset (a model's test_classes and "
                "training record say which part it used)"
            )
        self.entries["datasets"][data.info.id] = data.info.record(data.sizes, data.classes)

    def attach(self, name: str, kind: str, path: Path, description: dict) -> None:
        """Add a file derived from a recorded model (e.g. an int8 ONNX) to its record.

        The file is listed under `files[kind]` (so it is checked and cleaned up like the others)
        and `description` (how it was made, its metrics) under `derived[kind]`.
        """
        model_id = self.model_id(name)
        if model_id not in self.entries["models"]:
            raise PairzooError(f"cannot attach {kind!r}: no model {model_id!r} recorded")
        record = self.entries["models"][model_id]
        record["files"][kind] = self.output.record(path)
        record.setdefault("derived", {})[kind] = {**description, "file": kind}

    def add_pair(
        self,
        base: str,
        updated: str,
        relation: str,
        *,
        series: str | None = None,
        description: str = "",
        tensor_map: Mapping[str, str] | None = None,
        correspondence: Mapping[str, Sequence[Sequence[int]]] | None = None,
        metrics: Mapping[str, PairMeasurement] | None = None,
    ) -> PairStats:
        """Record the pair base → updated with its change statistics, read from the saved files.

        `tensor_map` (updated name → base name) pairs base tensors the updated model holds under
        other names; the pair then records it and which tensors are copied, changed or new.
        `correspondence` maps a reshaped tensor to the block of the updated tensor ([start, stop)
        per axis) that continues the base tensor; its change statistics are recorded with it.
        `metrics` are measured on both models, e.g. accuracy on the classes the base knew.
        """
        if relation not in self.declared.relations:
            raise PairzooError(
                f"unknown relation {relation!r}: this writer's are {list(self.declared.relations)} "
                "(a recipe declares its own: PairWriter(relations=[Relation(name, description)]))"
            )
        base_id, updated_id = self.model_id(base), self.model_id(updated)
        known = self.entries["models"]
        for model_id in (base_id, updated_id):
            if model_id not in known:
                raise PairzooError(f"pair names model {model_id!r}, not written by this run")
        with timed("stats"):
            tensors = {
                model_id: load_tensors(self.output.local(known[model_id]["files"]["safetensors"]))
                for model_id in (base_id, updated_id)
            }
            base_tensors, updated_tensors = tensors[base_id], tensors[updated_id]
            reuse = {}
            if tensor_map is not None:
                _check_map(tensor_map, base_tensors, updated_tensors)
                reuse = {
                    "tensor_map": dict(sorted(tensor_map.items())),
                    "reuse": reuse_record(base_tensors, updated_tensors, tensor_map),
                }
                base_tensors = renamed(base_tensors, tensor_map)
            stats = pair_stats(base_tensors, updated_tensors)
            blocks = self._correspondence(stats, base_tensors, updated_tensors, correspondence)
        self._check_metrics(metrics or {})
        measured = {
            name: {
                "base": m.base,
                "updated": m.updated,
                "dataset": self.data.info.id,
                "split": "test",
                **({"classes": list(m.classes)} if m.classes is not None else {}),
            }
            for name, m in (metrics or {}).items()
        }
        pair_id = f"{self.recipe}/{base_id.split('/')[-1]}..{updated_id.split('/')[-1]}"
        self.entries["pairs"][pair_id] = {
            "recipe": self.recipe,
            "base": base_id,
            "updated": updated_id,
            "relation": relation,
            "use_case": self.declared.relations[relation],
            "series": series,
            "description": description,
            "structure_change": stats.structure.record(),
            "stats": stats.record(),
            **reuse,
            **({"correspondence": blocks} if blocks else {}),
            **({"metrics": measured} if measured else {}),
        }
        return stats

    def _check_metrics(self, names: Iterable[str]) -> None:
        unknown = sorted(set(names) - set(self.declared.known_metrics()))
        if unknown:
            known = ", ".join(self.declared.known_metrics())
            raise PairzooError(
                f"unknown metrics {unknown}: neither built-in nor declared; known are {known}"
            )

    @staticmethod
    def _correspondence(
        stats: PairStats,
        base: Mapping[str, np.ndarray],
        updated: Mapping[str, np.ndarray],
        correspondence: Mapping[str, Sequence[Sequence[int]]] | None,
    ) -> dict:
        blocks = {}
        for name, slices in (correspondence or {}).items():
            if name not in stats.structure.reshaped:
                raise PairzooError(f"correspondence names {name!r}, which is not reshaped")
            problem = slice_problem(base[name].shape, updated[name].shape, slices)
            if problem:
                raise PairzooError(f"correspondence of {name}: {problem}")
            blocks[name] = {
                "slices": [[int(a), int(b)] for a, b in slices],
                "change": asdict(slice_change(base[name], updated[name], slices)),
            }
        return blocks

    def finish(self) -> dict[str, float]:
        """Put this run's files and records in place of the previous run's, in one step.

        Also writes this process's time per activity to timings/<recipe>.json and returns it.
        """
        with timed("manifest"):
            self.output.commit(self._enter)
        seconds = {k: round(v, 3) for k, v in sorted(SECONDS.items())}
        write_text(self.folder / "timings" / f"{self.recipe}.json", json.dumps(seconds, indent=2))
        return seconds

    def _check_clashes(self, entries: dict) -> None:
        found = clashes(entries, self.recipe, self.declared)
        if found:
            raise PairzooError(f"{self.recipe}: {found[0]}; declare yours under another name")

    def _enter(self, entries: dict) -> None:
        """Replace the recipe's previous entries in `entries` with this run's."""
        self._check_clashes(entries)
        for kind in ("models", "pairs"):
            for key in [k for k, v in entries[kind].items() if v["recipe"] == self.recipe]:
                del entries[kind][key]
            entries[kind].update(self.entries[kind])
        entries["datasets"].update(self.entries["datasets"])
        entries["metrics"].update(self.entries["metrics"])
        declared = {k: v for k, v in entries.pop("declared", {}).items() if k != self.recipe}
        if self.declared.record():
            declared[self.recipe] = self.declared.record()
        if declared:
            entries["declared"] = declared
        entries.setdefault("finished", {})[self.recipe] = {
            "models": sorted(self.entries["models"]),
            "pairs": sorted(self.entries["pairs"]),
            "codings": [],
        }


def _summary(
    name: str, metrics: Mapping[str, float], units: Mapping[str, str], split: Mapping, parity: float
) -> str:
    """One line per model: its metrics, on which test images, and its ONNX parity."""
    values = ", ".join(f"{k} {v:.4g}{_unit(units[k])}" for k, v in metrics.items())
    classes = f" ({', '.join(split['classes'])})" if "classes" in split else ""
    where = f"{split['dataset']} test{classes}"
    return f"{name:>20}: {values or 'no metrics'} on {where}; ONNX Δ {parity:.1e}"


def _unit(unit: str) -> str:
    return unit if unit in ("", "%") else f" {unit}"


def _check_map(
    tensor_map: Mapping[str, str], base: Mapping[str, object], updated: Mapping[str, object]
) -> None:
    unknown = sorted({u for u in tensor_map if u not in updated})
    unknown += sorted({b for b in tensor_map.values() if b not in base})
    if unknown:
        raise PairzooError(f"tensor map names tensors the models do not hold: {unknown[:5]}")
