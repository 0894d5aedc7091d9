"""Check an output folder: schema, file hashes, ONNX loading, pair claims, compressed samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from safetensors import safe_open

from pairzoo import manifest
from pairzoo.coded_samples import check_codings
from pairzoo.errors import PairzooError
from pairzoo.evaluate import INPUT_TYPES
from pairzoo.stats import renamed, slice_problem, structure_change

SUMS = "SHA256SUMS"


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with safe_open(str(path), framework="numpy") as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


def _check_onnx(path: Path, tensor_names: set[str]) -> list[str]:
    """Load and run the graph; every name of `tensor_names` must be one of its initializers."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        return [f"{path}: onnxruntime cannot load it: {str(exc).splitlines()[0]}"]
    problems = []
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in first.shape]
    zeros = np.zeros(shape, dtype=INPUT_TYPES.get(first.type, np.float32))  # token ids: int64
    outputs = session.run(None, {first.name: zeros})
    if not all(np.all(np.isfinite(out)) for out in outputs):
        problems.append(f"{path}: non-finite output on a zero input")
    initializers = {
        init.name for init in onnx.load(str(path), load_external_data=False).graph.initializer
    }
    absent = sorted(tensor_names - initializers)
    if absent:
        problems.append(f"{path}: framework tensors not initializers of the graph: {absent[:5]}")
    return problems


def _check_model(folder: Path, model_id: str, record: dict) -> tuple[list[str], dict]:
    problems: list[str] = []
    for kind, file in record["files"].items():
        path = folder / file["path"]
        if not path.is_file():
            problems.append(f"{path}: missing ({kind} file of model {model_id})")
            continue
        digest = manifest.sha256_file(path)
        if digest != file["sha256"]:
            problems.append(
                f"{path}: sha256 {digest[:12]}… does not match the manifest's "
                f"{file['sha256'][:12]}… (model {model_id})"
            )
    if problems:
        return problems, {}
    shapes = _shapes(folder / record["files"]["safetensors"]["path"])
    named = record["onnx"].get("initializer_names", "framework") == "framework"
    problems += _check_onnx(
        folder / record["files"]["onnx"]["path"], set(shapes) if named else set()
    )
    return problems, shapes


def _check_pair(pair_id: str, pair: dict, shapes: dict[str, dict]) -> list[str]:
    base, updated = pair["base"], pair["updated"]
    missing = [m for m in (base, updated) if m not in shapes]
    if missing:
        return [f"pair {pair_id}: model(s) {missing} unknown or unreadable"]
    base_shapes = shapes[base]
    if "tensor_map" in pair:
        problems = _check_reuse(pair_id, pair, base_shapes, shapes[updated])
        if problems:
            return problems
        base_shapes = renamed(base_shapes, pair["tensor_map"])
    actual = structure_change(base_shapes, shapes[updated]).record()
    claimed = pair["structure_change"]
    if actual != claimed:
        fields = [k for k in actual if actual[k] != claimed.get(k)]
        return [
            f"pair {pair_id}: structure change claim is false ({', '.join(fields)} differ: "
            f"claimed changed={claimed['changed']}, files say changed={actual['changed']})"
        ]
    problems = []
    for name, block in pair.get("correspondence", {}).items():
        if name not in actual["reshaped"]:
            problems.append(f"pair {pair_id}: correspondence for {name}, which is not reshaped")
            continue
        problem = slice_problem(shapes[base][name], shapes[updated][name], block["slices"])
        if problem:
            problems.append(f"pair {pair_id}: correspondence of {name}: {problem}")
    return problems


def _check_sums(folder: Path) -> list[str]:
    sums = folder / SUMS
    if not sums.is_file():
        return []
    problems = []
    for line in sums.read_text("utf-8").splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: listed in {SUMS} but missing")
        elif manifest.sha256_file(path) != digest:
            problems.append(f"{path}: sha256 does not match {SUMS}")
    return problems


def _check_reuse(pair_id: str, pair: dict, base: dict, updated: dict) -> list[str]:
    """The tensor map names tensors the files hold, and the reuse groups partition both sides."""
    tensor_map = pair["tensor_map"]
    unknown = sorted({u for u in tensor_map if u not in updated})
    unknown += sorted({b for b in tensor_map.values() if b not in base})
    if unknown:
        return [f"pair {pair_id}: tensor map names tensors the files lack: {unknown[:5]}"]
    reuse = pair.get("reuse")
    if reuse is None:
        return [f"pair {pair_id}: a tensor map without its reuse record"]
    mapped = set(tensor_map.values())
    expected = {
        "mapped": set(tensor_map),
        "new": {u for u in updated if u not in tensor_map},
        "dropped": {b for b in base if b not in mapped},
    }
    claimed = {
        "mapped": set(reuse["copied"]["tensors"]) | set(reuse["changed"]["tensors"]),
        "new": set(reuse["new"]["tensors"]),
        "dropped": set(reuse["dropped"]["tensors"]),
    }
    wrong = [group for group in expected if expected[group] != claimed[group]]
    if set(reuse["copied"]["tensors"]) & set(reuse["changed"]["tensors"]):
        wrong.append("copied and changed overlap")
    if wrong:
        return [f"pair {pair_id}: reuse groups do not match the files ({', '.join(wrong)})"]
    return []


def validate(folder: Path) -> list[str]:
    """All problems found in `folder`, one line each; empty when everything checks out.

    Besides the manifest's claims, a `SHA256SUMS` file (as in a packaged archive) is verified.
    """
    folder = Path(folder)
    try:
        entries = manifest.load(folder)
    except PairzooError as exc:
        return [str(exc)]
    problems: list[str] = _check_sums(folder)
    shapes: dict[str, dict] = {}
    for model_id, record in entries["models"].items():
        found, model_shapes = _check_model(folder, model_id, record)
        problems += found
        if model_shapes:
            shapes[model_id] = model_shapes
        if record["training"]["dataset"] not in entries["datasets"]:
            problems.append(
                f"model {model_id}: dataset {record['training']['dataset']!r} undefined"
            )
        for metric in record["metrics"]:
            if metric not in entries["metrics"]:
                problems.append(f"model {model_id}: metric {metric!r} undefined")
    for pair_id, pair in entries["pairs"].items():
        problems += _check_pair(pair_id, pair, shapes)
        for metric in pair.get("metrics", {}):
            if metric not in entries["metrics"]:
                problems.append(f"pair {pair_id}: metric {metric!r} undefined")
    if entries.get("codings"):
        unreadable = {
            pair_id
            for pair_id, pair in entries["pairs"].items()
            if pair["base"] not in shapes or pair["updated"] not in shapes
        }
        problems += check_codings(folder, entries, unreadable)
    return problems
