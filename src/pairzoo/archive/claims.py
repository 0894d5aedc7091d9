"""The manifest's claims checked against the files: ONNX graphs, tensors, metrics, pair statistics.

Statistics are recomputed from the safetensors files and must agree to `STATS_RTOL`; a metric is
re-scored framework-free (the ONNX as stored, in onnxruntime) and must agree to `metric_tolerance`.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import onnx

from pairzoo.coding.coded_samples import measured_split
from pairzoo.coding.scoring import INPUT_TYPES, OnnxEvaluator
from pairzoo.errors import PairzooError
from pairzoo.export.external_data import ReadExternal, external_tensors, inline_external
from pairzoo.export.initializer_map import mismatches
from pairzoo.ort_threads import cpu_session, session_options
from pairzoo.record.metrics import scorer
from pairzoo.record.stats import pair_stats, renamed, reuse_record, slice_change

# Relative tolerance of recomputed float statistics (the same float64 sums, so equal in practice).
STATS_RTOL = 1e-9
# Absolute tolerance of a re-scored metric, in its unit: top-1 in percent, PSNR in dB.
METRIC_ATOL = {"top1": 1e-6, "psnr": 1e-4}
# Relative tolerance of metrics without a scale of their own: float32 rounding of long sums on
# another device (a GPU's) moves their last digits, a wrong tensor far more.
METRIC_RTOL = {"perplexity": 1e-5, "reconstruction-mse": 1e-5}


def metric_tolerance(metric: str, value: float) -> float:
    """How far a re-scored `metric` may lie from the claimed `value`."""
    return max(METRIC_ATOL.get(metric, 1e-6), METRIC_RTOL.get(metric, 0.0) * abs(value))


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def claimed_map(onnx_record: dict, tensors: dict[str, np.ndarray]) -> dict | None:
    """Where the ONNX record says each tensor lies: under its own name, or where its map says.

    None where the exporter named the initializers and nothing says which is which.
    """
    names = onnx_record.get("initializer_names", "framework")
    if names == "framework":
        return {name: {"initializer": name} for name in tensors}
    return onnx_record.get("initializer_map", {}) if names == "mapped" else None


def onnx_problems(
    where: str,
    data: bytes,
    tensors: dict[str, np.ndarray],
    placement: dict | None,
    read_external: ReadExternal | None = None,
) -> tuple[list[str], bytes | None]:
    """Problems of an ONNX file: it parses, loads, takes one input, runs.

    External data is refused unless `read_external(location)` gives the bytes of a file it names
    (a file of the model). With a `placement` (an initializer map), every tensor of `tensors` must
    equal its initializer. Returns the problems and the bytes, tensors inlined, when the graph is
    fit to be scored (and, with external data, under protobuf's 2 GiB).
    """
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and others
        return [f"{where}: not an ONNX model: {_first_line(exc)}"], None
    external = external_tensors(proto)
    options = session_options()
    if external and read_external is None:
        names = [t.name for t in external]
        return [f"{where}: tensors stored as external data (refused): {names[:5]}"], None
    if external:
        try:
            files = inline_external(proto, read_external)
        except PairzooError as exc:
            return [f"{where}: {exc}"], None
        names = list(files)
        buffers = [np.frombuffer(files[name], dtype=np.uint8) for name in names]
        options.add_external_initializers_from_files_in_memory(
            names, buffers, [len(files[name]) for name in names]
        )
    try:
        session = cpu_session(data, options)
    except Exception as exc:  # onnxruntime raises several unrelated types for bad files
        return [f"{where}: onnxruntime cannot load it: {_first_line(exc)}"], None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return [f"{where}: {len(inputs)} graph inputs; a pairzoo model takes one"], None
    shape = [d if isinstance(d, int) else 1 for d in inputs[0].shape]
    try:
        zeros = np.zeros(shape, dtype=INPUT_TYPES.get(inputs[0].type, np.float32))  # token ids
        outputs = session.run(None, {inputs[0].name: zeros})
    except Exception as exc:  # onnxruntime's runtime errors
        return [f"{where}: does not run on a zero input: {_first_line(exc)}"], None
    problems = []
    if not all(np.all(np.isfinite(out)) for out in outputs):
        problems.append(f"{where}: non-finite output on a zero input")
    if placement is not None:
        problems += _initializer_problems(where, proto, tensors, placement)
    if external:
        data = proto.SerializeToString() if proto.ByteSize() < 2**31 else None
    return problems, None if problems else data


def _initializer_problems(
    where: str, proto: onnx.ModelProto, tensors: dict[str, np.ndarray], placement: dict
) -> list[str]:
    absent, differ = mismatches(proto, tensors, placement)
    if absent:
        return [f"{where}: framework tensors not initializers of the graph: {absent[:5]}"]
    if differ:
        return [f"{where}: initializers differ from the safetensors tensors: {differ[:5]}"]
    return []


def metric_problems(
    model_id: str, record: dict, onnx_model: bytes
) -> tuple[list[str], list[str], list[str]]:
    """Re-score every metric with a framework-free scorer: problems, warnings, metrics left out."""
    problems, warnings, skipped = [], [], []
    for metric, measurement in sorted(record["metrics"].items()):
        if scorer(metric) is None:
            skipped.append(metric)
            continue
        try:
            split = measured_split(measurement)
        except PairzooError as exc:
            warnings.append(f"model {model_id}: {metric} not re-scored: {exc}")
            continue
        value = OnnxEvaluator(onnx_model, split, metric)()
        if abs(value - measurement["value"]) > metric_tolerance(metric, measurement["value"]):
            problems.append(
                f"model {model_id}: {metric} re-scored from its ONNX is {value:.6g}, "
                f"the manifest says {measurement['value']:.6g}"
            )
    return problems, warnings, skipped


def _differences(claimed: object, actual: object, at: str = "") -> list[str]:
    """Where two manifest records differ (numbers to STATS_RTOL), as dotted paths."""
    if isinstance(actual, dict) and isinstance(claimed, dict):
        found = [f"{at}{k}" for k in sorted(set(actual) ^ set(claimed))]
        for key in sorted(set(actual) & set(claimed)):
            found += _differences(claimed[key], actual[key], f"{at}{key}.")
        return found
    numbers = (int, float)
    if isinstance(actual, numbers) and isinstance(claimed, numbers):
        same = type(actual) is type(claimed) or isinstance(actual, float)
        if same and math.isclose(actual, claimed, rel_tol=STATS_RTOL, abs_tol=0.0):
            return []
        return [f"{at.rstrip('.')} (claimed {claimed!r}, files give {actual!r})"]
    return [] if actual == claimed else [f"{at.rstrip('.')} (claimed {claimed!r})"]


def pair_problems(pair_id: str, pair: dict, base: dict, updated: dict) -> list[str]:
    """The pair's statistics, correspondence changes and reuse record, against the tensors."""
    problems = []
    if "tensor_map" in pair:
        wrong = _differences(pair["reuse"], reuse_record(base, updated, pair["tensor_map"]))
        if wrong:
            problems.append(f"pair {pair_id}: reuse record differs from the files: {wrong[:3]}")
        base = renamed(base, pair["tensor_map"])
    wrong = _differences(pair["stats"], pair_stats(base, updated).record())
    if wrong:
        problems.append(f"pair {pair_id}: stats differ from the files at {', '.join(wrong[:3])}")
    for name, block in sorted(pair.get("correspondence", {}).items()):
        change = asdict(slice_change(base[name], updated[name], block["slices"]))
        wrong = _differences(block["change"], change)
        if wrong:
            problems.append(f"pair {pair_id}: correspondence change of {name} differs: {wrong}")
    return problems
