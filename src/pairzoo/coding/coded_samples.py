"""Compressed samples of pairs: a pair's tensors and scorer, stored bitstreams, and their checks.

The manifest's top-level `codings` object, keyed by pair id, belongs to the update_coding recipe:
model recipes never touch it, and `pairzoo validate` decodes every stored sample again.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

import numpy as np

from pairzoo.atomic import atomic_path
from pairzoo.coding import codec
from pairzoo.coding.detection_scoring import DetectionEvaluator
from pairzoo.coding.scoring import OnnxEvaluator, evaluator
from pairzoo.data.detection import DetectionData
from pairzoo.data.loading import load_by_id
from pairzoo.data.sets import ImageData, select_classes
from pairzoo.errors import PairzooError
from pairzoo.record.metrics import scoreable
from pairzoo.record.staged_output import StagedOutput
from pairzoo.record.tree import Tree
from pairzoo.record.view import Folder, Model, Pair

RECIPE = "update_coding"


@dataclass
class LoadedPair:
    """A pair's tensors and its updated model's own score (no scorer: it pickles)."""

    pair_id: str
    base_id: str
    updated_id: str
    base: dict[str, np.ndarray]
    updated: dict[str, np.ndarray]
    metric: str
    dataset: str
    reference: float
    widened: tuple[str, ...] = ()  # models stored in bfloat16, read as float32 for the codec

    @property
    def parameters(self) -> int:
        """Number of values in the updated model's tensors."""
        return sum(v.size for v in self.updated.values())


@dataclass(frozen=True)
class ScoredCoding:
    """A coding of a pair's updated model and the score of its reconstruction."""

    coding: codec.Coding
    value: float


@cache
def _dataset(dataset_id: str) -> ImageData | DetectionData:
    return load_by_id(dataset_id)


def _check_rebuilt(folder: Folder, dataset_id: str) -> None:
    """PairzooError unless the loader of `dataset_id` makes the splits the manifest describes."""
    data = _dataset(dataset_id)
    described = folder.entries["datasets"].get(dataset_id, {}).get("splits")
    if described != data.info.record(data.sizes, data.classes)["splits"]:
        raise PairzooError(
            f"the manifest's {dataset_id} splits ({described}) are not those its loader makes "
            f"({data.info.source})"
        )


def unscoreable(pair: Pair) -> str | None:
    """Why the updated model of a pair cannot be scored here; None when it can."""
    record = pair.updated.record
    if record["onnx"].get("initializer_names", "framework") not in ("framework", "mapped"):
        return "its ONNX initializers are named by the exporter, and no map says which is which"
    if any(scoreable(metric) for metric in record["metrics"]):
        return None
    return f"no framework-free scorer for {', '.join(sorted(record['metrics']))}"


def measured_split(measurement: dict) -> ImageData | DetectionData:
    """The test split a measurement was taken on: its dataset, restricted to its classes if any."""
    data = _dataset(measurement["dataset"])
    if "classes" not in measurement:
        return data
    return select_classes(data, [data.classes.index(name) for name in measurement["classes"]])


def metric_of(record: dict) -> str:
    """The first metric of a model record that has a framework-free scorer."""
    known = [m for m in record["metrics"] if scoreable(m)]
    if not known:
        raise PairzooError(f"none of the metrics {sorted(record['metrics'])} can be scored here")
    return known[0]


def model_evaluator(model: Model) -> tuple[str, OnnxEvaluator | DetectionEvaluator]:
    """A model's scored metric and the evaluator of its ONNX on the split the metric was taken on.

    The split must be the one the manifest describes.
    """
    metric = metric_of(model.record)
    measurement = model.metrics[metric]
    _check_rebuilt(model.folder, measurement["dataset"])
    names = model.record["onnx"].get("initializer_map")
    split = measured_split(measurement)
    return metric, evaluator(model.read("onnx"), split, metric, names, model.read_external)


def load_pair(pair: Pair) -> tuple[LoadedPair, OnnxEvaluator | DetectionEvaluator]:
    """Read a pair's tensors once; score its updated model's ONNX on the measured test split.

    Returns the pair and the scorer of its reconstructions. The split must be the one the
    manifest describes.
    """
    base, updated = pair.base, pair.updated
    metric, evaluate = model_evaluator(updated)
    measurement = updated.metrics[metric]
    loaded = LoadedPair(
        pair.id,
        base.id,
        updated.id,
        base.tensors(),
        updated.tensors(),
        metric,
        measurement["dataset"],
        evaluate(),
        tuple(m.id for m in (base, updated) if "BF16" in m.stored_dtypes()),
    )
    return loaded, evaluate


def _store(output: StagedOutput, pair: LoadedPair, name: str, sample: ScoredCoding) -> dict:
    coding, value, files = sample.coding, sample.value, {}
    for role, bitstream in sorted(coding.parts.items()):
        path = output.path(f"{pair.pair_id}/{name}/{role}.nnc")
        with atomic_path(path) as tmp:
            tmp.write_bytes(bitstream)
        files[role] = output.record(path)
    return {
        "method": coding.method,
        "settings": coding.settings,
        "files": files,
        "bytes": coding.size,
        "bits_per_parameter": 8.0 * coding.size / pair.parameters,
        "value": value,
        "change": value - pair.reference,
        "reconstruction_sha256": codec.tensors_sha256(coding.reconstruction),
    }


def record(
    output: StagedOutput,
    folder: Folder,
    pair: LoadedPair,
    chosen: dict[str, ScoredCoding],
    rule: str,
) -> dict:
    """Stage the chosen codings' bitstreams in `output` and return the pair's `codings` entry."""
    return {
        "recipe": RECIPE,
        "codec": codec.CODEC,
        "codec_version": codec.codec_version(),
        "metric": pair.metric,
        "dataset": pair.dataset,
        "split": "test",
        "reference_value": pair.reference,
        "operating_point": rule,
        "base": {
            "model": pair.base_id,
            "sha256": folder.model(pair.base_id).file("safetensors")["sha256"],
        },
        "updated": {
            "model": pair.updated_id,
            "sha256": folder.model(pair.updated_id).file("safetensors")["sha256"],
        },
        "samples": {name: _store(output, pair, name, c) for name, c in chosen.items()},
        **(
            {
                "codec_input": f"float32: {', '.join(pair.widened)} stored in bfloat16, "
                "widened exactly to float32 before coding (the codec codes float32)"
            }
            if pair.widened
            else {}
        ),
    }


def enter(entries: dict, codings: dict[str, dict], ladder: dict | None = None) -> None:
    """Replace the manifest's codings and ladder file with this run's; mark the recipe finished."""
    entries["codings"] = codings
    entries.pop("coding_ladder", None)
    if ladder is not None:
        entries["coding_ladder"] = {"recipe": RECIPE, "file": ladder}
    entries.setdefault("finished", {})[RECIPE] = {
        "models": [],
        "pairs": [],
        "codings": sorted(codings),
    }


# Per NNC method, the bitstreams a receiver holding the base needs: what `bytes` counts.
COUNTED = {
    "nnc-full": {"full"},
    "nnc-incremental": {"update", "new"},
    "nnc-incremental-tca": {"update", "new"},
}


def _claim_problems(tree: Tree, label: str, sample: dict, pair: LoadedPair) -> list[str]:
    """The method, bytes and bits per parameter a sample claims, against its bitstreams."""
    method, settings, files = sample["method"], sample["settings"], sample["files"]
    if method not in COUNTED:
        return [f"{label}: unknown method {method!r}"]
    counted, incremental = COUNTED[method], method != "nnc-full"
    if incremental:
        fits = set(files) <= {"base", *counted} and ("base" in files) == ("update" in files)
    else:
        fits = set(files) == counted
    if not fits:
        return [f"{label}: bitstreams {sorted(files)} do not fit method {method}"]
    if settings["compress_differences"] != incremental:
        return [f"{label}: compress_differences={settings['compress_differences']} for {method}"]
    if settings["tca"] != method.endswith("-tca"):
        return [f"{label}: tca={settings['tca']} for method {method}"]
    size = sum(tree.size(f["path"]) for role, f in files.items() if role in counted)
    if sample["bytes"] != size:
        return [f"{label}: bytes {sample['bytes']}, its bitstreams {sorted(counted)} hold {size}"]
    bits = 8.0 * size / pair.parameters
    if not math.isclose(sample["bits_per_parameter"], bits, rel_tol=1e-12):
        return [f"{label}: bits per parameter {sample['bits_per_parameter']}, the files {bits}"]
    return []


def stream_qps(bitstream: bytes) -> dict[str, int]:
    """The QP of each tensor of a stand-alone NNC bitstream, as its tensor headers carry it."""
    info = {
        "parameter_type": {},
        "parameter_dimensions": {},
        "parameter_index": {},
        "block_identifier": {},
        "topology_storage_format": None,
        "topology_compression_format": None,
        "performance_maps": {"mps": {}, "lps": {}},
        "performance_map_flags": defaultdict(dict),
    }

    def read(_: object) -> dict:
        from nncodec import nnc_core

        return nnc_core.coder.decode(bytearray(bitstream), info, hls_stats={}, oob_dict={})

    decoded = codec.run_nnc("reading the QPs of a bitstream", read)
    return {name: int(qp) for name, qp in decoded["qp"].items()}


def _qp_problems(label: str, sample: dict, parts: dict[str, bytes], shapes: dict) -> list[str]:
    """The QPs the stand-alone bitstreams (full, base, new) carry: weights at `qp`, others finer."""
    settings = sample["settings"]
    for role in sorted({"full", "base", "new"} & set(parts)):
        try:
            qps = stream_qps(parts[role])
        except PairzooError as exc:
            return [f"{label}: cannot read the QPs of the {role} bitstream: {exc}"]
        for name, qp in sorted(qps.items()):
            weight = len(shapes.get(name, ())) > 1
            expected = settings["qp"] if weight else settings["nonweight_qp"]
            if qp != expected:
                return [f"{label}: {role} bitstream has {name} at QP {qp}, not {expected}"]
    return []


def _check_sample(
    tree: Tree,
    label: str,
    sample: dict,
    pair: LoadedPair,
    evaluate: OnnxEvaluator | DetectionEvaluator,
) -> list[str]:
    problems = []
    for role, file in sample["files"].items():
        problems += tree.file_problems(file, f"{label}: {role} bitstream")
    if problems:
        return problems
    problems = _claim_problems(tree, label, sample, pair)
    parts = {role: tree.read(file["path"]) for role, file in sample["files"].items()}
    shapes = {k: tuple(v.shape) for k, v in pair.updated.items()}
    problems += _qp_problems(label, sample, parts, shapes)
    try:
        tensors = codec.decode_sample(parts, pair.base, shapes)
    except PairzooError as exc:
        return [*problems, f"{label}: the bitstream does not decode: {exc}"]
    if codec.tensors_sha256(tensors) != sample["reconstruction_sha256"]:
        problems.append(f"{label}: decodes to other tensors than recorded")
    value = evaluate(tensors)
    if abs(value - sample["value"]) > 1e-6:
        problems.append(f"{label}: decoded model scores {value:.4f}, not {sample['value']:.4f}")
    return problems


def _check_coding(folder: Folder, pair_id: str, coding: dict) -> list[str]:
    if pair_id not in folder.entries["pairs"]:
        return [f"coding {pair_id}: no such pair in the manifest"]
    pair = folder.pair(pair_id)
    for side in ("base", "updated"):
        model_id = coding[side]["model"]
        if pair.record[side] != model_id or model_id not in folder.entries["models"]:
            return [f"coding {pair_id}: its {side} model is not the pair's {side} any more"]
        if folder.model(model_id).file("safetensors")["sha256"] != coding[side]["sha256"]:
            return [
                f"coding {pair_id}: the {side} model's tensors changed since it was coded "
                f"(re-run the {RECIPE} recipe)"
            ]
    try:
        loaded, evaluate = load_pair(pair)
    except PairzooError as exc:
        return [f"coding {pair_id}: cannot score the updated model: {exc}"]
    problems = []
    for name, sample in coding["samples"].items():
        label = f"coding {pair_id} ({name})"
        problems += _check_sample(folder.tree, label, sample, loaded, evaluate)
    return problems


def check_codings(folder: Folder, skip: set[str]) -> list[str]:
    """Problems with the stored samples: each must decode to the recorded tensors and score.

    Pairs in `skip` (whose model files already failed their checks) are reported, not decoded.
    """
    problems = []
    for pair_id, coding in sorted(folder.entries.get("codings", {}).items()):
        if pair_id in skip:
            problems.append(f"coding {pair_id}: not decoded, its models' files have problems")
            continue
        problems += _check_coding(folder, pair_id, coding)
    return problems
