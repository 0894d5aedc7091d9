"""Compressed samples of pairs: a pair's tensors and scorer, stored bitstreams, and their checks.

The manifest's top-level `codings` object, keyed by pair id, belongs to the update_coding recipe:
model recipes never touch it, and `pairzoo validate` decodes every stored sample again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from pairzoo import codec, manifest
from pairzoo.atomic import atomic_path
from pairzoo.data import ImageData, load_by_id, select_classes
from pairzoo.errors import PairzooError
from pairzoo.evaluate import SCORES, OnnxEvaluator
from pairzoo.export import load_tensors, stored_dtypes
from pairzoo.staged_output import StagedOutput

RECIPE = "update_coding"


@dataclass
class LoadedPair:
    """A pair's tensors, the scorer of its updated model, and the updated model's own score."""

    pair_id: str
    base_id: str
    updated_id: str
    base: dict[str, np.ndarray]
    updated: dict[str, np.ndarray]
    metric: str
    dataset: str
    evaluate: OnnxEvaluator
    reference: float
    widened: tuple[str, ...] = ()  # models stored in bfloat16, read as float32 for the codec

    @property
    def parameters(self) -> int:
        """Number of values in the updated model's tensors."""
        return sum(v.size for v in self.updated.values())


@cache
def _dataset(dataset_id: str) -> ImageData:
    return load_by_id(dataset_id)


def unscoreable(entries: dict, pair_id: str) -> str | None:
    """Why the updated model of a pair cannot be scored here; None when it can."""
    record = entries["models"][entries["pairs"][pair_id]["updated"]]
    if record["onnx"].get("initializer_names", "framework") != "framework":
        return "its ONNX initializers are named by the exporter, not by the framework"
    if any(metric in SCORES for metric in record["metrics"]):
        return None
    return f"no framework-free scorer for {', '.join(sorted(record['metrics']))}"


def _test_data(measurement: dict) -> ImageData:
    """The test split a measurement was taken on: its dataset, restricted to its classes if any."""
    data = _dataset(measurement["dataset"])
    if "classes" not in measurement:
        return data
    return select_classes(data, [data.classes.index(name) for name in measurement["classes"]])


def _metric(record: dict) -> str:
    known = [m for m in record["metrics"] if m in SCORES]
    if not known:
        raise PairzooError(f"none of the metrics {sorted(record['metrics'])} can be scored here")
    return known[0]


def load_pair(folder: Path, entries: dict, pair_id: str) -> LoadedPair:
    """Read a pair's tensors; set up scoring of its updated model's ONNX on the test split."""
    pair = entries["pairs"][pair_id]
    models = entries["models"]
    record = models[pair["updated"]]
    metric = _metric(record)
    measurement = record["metrics"][metric]
    dataset = measurement["dataset"]
    onnx_path = folder / record["files"]["onnx"]["path"]
    evaluate = OnnxEvaluator(onnx_path, _test_data(measurement), metric)
    sides = (pair["base"], pair["updated"])
    files = {m: folder / models[m]["files"]["safetensors"]["path"] for m in sides}
    return LoadedPair(
        pair_id,
        pair["base"],
        pair["updated"],
        load_tensors(files[pair["base"]]),
        load_tensors(files[pair["updated"]]),
        metric,
        dataset,
        evaluate,
        evaluate(),
        tuple(m for m in sides if "BF16" in stored_dtypes(files[m])),
    )


def _store(output: StagedOutput, pair: LoadedPair, name: str, coding: codec.Coding) -> dict:
    files = {}
    for role, bitstream in sorted(coding.parts.items()):
        path = output.path(f"{pair.pair_id}/{name}/{role}.nnc")
        with atomic_path(path) as tmp:
            tmp.write_bytes(bitstream)
        files[role] = output.record(path)
    value = pair.evaluate(coding.reconstruction)
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
    entries: dict,
    pair: LoadedPair,
    chosen: dict[str, codec.Coding],
    rule: str,
) -> dict:
    """Stage the chosen codings' bitstreams in `output` and return the pair's `codings` entry."""
    models = entries["models"]
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
            "sha256": models[pair.base_id]["files"]["safetensors"]["sha256"],
        },
        "updated": {
            "model": pair.updated_id,
            "sha256": models[pair.updated_id]["files"]["safetensors"]["sha256"],
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


def enter(entries: dict, codings: dict[str, dict]) -> None:
    """Replace the manifest's codings with this run's, and mark the recipe finished."""
    entries["codings"] = codings
    entries.setdefault("finished", {})[RECIPE] = {
        "models": [],
        "pairs": [],
        "codings": sorted(codings),
    }


def _check_sample(folder: Path, label: str, sample: dict, pair: LoadedPair) -> list[str]:
    problems = []
    for role, file in sample["files"].items():
        path = folder / file["path"]
        if not path.is_file():
            problems.append(f"{label}: {role} bitstream {path} is missing")
        elif manifest.sha256_file(path) != file["sha256"]:
            problems.append(f"{label}: {role} bitstream {path} does not match its sha256")
    if problems:
        return problems
    parts = {role: (folder / file["path"]).read_bytes() for role, file in sample["files"].items()}
    shapes = {k: tuple(v.shape) for k, v in pair.updated.items()}
    try:
        tensors = codec.decode_sample(parts, pair.base, shapes)
    except PairzooError as exc:
        return [f"{label}: the bitstream does not decode: {exc}"]
    if codec.tensors_sha256(tensors) != sample["reconstruction_sha256"]:
        problems.append(f"{label}: decodes to other tensors than recorded")
    value = pair.evaluate(tensors)
    if abs(value - sample["value"]) > 1e-6:
        problems.append(f"{label}: decoded model scores {value:.4f}, not {sample['value']:.4f}")
    return problems


def _check_coding(folder: Path, entries: dict, pair_id: str, coding: dict) -> list[str]:
    pair = entries["pairs"].get(pair_id)
    if pair is None:
        return [f"coding {pair_id}: no such pair in the manifest"]
    for side in ("base", "updated"):
        model = entries["models"].get(coding[side]["model"])
        if pair[side] != coding[side]["model"] or model is None:
            return [f"coding {pair_id}: its {side} model is not the pair's {side} any more"]
        if model["files"]["safetensors"]["sha256"] != coding[side]["sha256"]:
            return [
                f"coding {pair_id}: the {side} model's tensors changed since it was coded "
                f"(re-run the {RECIPE} recipe)"
            ]
    try:
        loaded = load_pair(folder, entries, pair_id)
    except PairzooError as exc:
        return [f"coding {pair_id}: cannot score the updated model: {exc}"]
    problems = []
    for name, sample in coding["samples"].items():
        problems += _check_sample(folder, f"coding {pair_id} ({name})", sample, loaded)
    return problems


def check_codings(folder: Path, entries: dict, skip: set[str]) -> list[str]:
    """Problems with the stored samples: each must decode to the recorded tensors and score.

    Pairs in `skip` (whose model files already failed their checks) are reported, not decoded.
    """
    problems = []
    for pair_id, coding in sorted(entries.get("codings", {}).items()):
        if pair_id in skip:
            problems.append(f"coding {pair_id}: not decoded, its models' files have problems")
            continue
        problems += _check_coding(Path(folder), entries, pair_id, coding)
    return problems
