"""Check an output folder, or a packaged archive read in place: every byte and every claim.

Bytes: each file's size and sha256, and `SHA256SUMS` (required in an archive, where it must list
exactly the members). Claims: ONNX loading and initializers, metrics re-scored, structure, pair
statistics and reuse recomputed, compressed samples decoded and re-scored.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairzoo.archive import claims
from pairzoo.bench.uplink_payloads import payload_problems
from pairzoo.coding.coded_samples import check_codings
from pairzoo.errors import PairzooError
from pairzoo.record import declarations, manifest
from pairzoo.record.stats import renamed, slice_problem, structure_change
from pairzoo.record.tree import Tree, ZipTree, open_tree
from pairzoo.record.view import Folder, Model, read

SUMS = "SHA256SUMS"
# What a folder may hold besides the files its manifest names (a folder name ends in /).
HOUSEKEEPING = (
    manifest.MANIFEST,
    SUMS,
    "DESCRIPTION.md",
    "LICENCE-NOTICE.md",
    "cards/",
    "figures/",  # a recipe run as a script saves its figures there (script_figures)
    "timings/",
)


@dataclass
class Report:
    """What a check found: problems, warnings (files nobody names), and what was checked."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    not_rescored: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One line: models, pairs, files, samples, metrics re-scored and those not re-scored."""
        c = self.counts
        text = f"{c['models']} models, {c['pairs']} pairs, {c['files']} files verified"
        text += f", {c['rescored']} metrics re-scored"
        for metric, count in sorted(self.not_rescored.items()):
            text += f", {count} not re-scored (no framework-free scorer for {metric})"
        if c["samples"]:
            text += f", {c['samples']} compressed samples decoded"
        if c["payloads"]:
            text += f", {c['payloads']} uplink payloads decoded"
        return text


def _housekeeping(name: str) -> bool:
    if "/" not in name and name.startswith(".") and name.endswith(".lock"):
        return True  # the manifest's lock and each recipe's
    return any(name == h or h.endswith("/") and name.startswith(h) for h in HOUSEKEEPING)


def _check_finished(entries: dict) -> list[str]:
    """Every entry belongs to a finished run of its recipe, and every finished run is whole."""
    finished = entries.get("finished", {})
    problems = []
    for kind in ("models", "pairs", "codings"):
        present = {key: entry["recipe"] for key, entry in entries.get(kind, {}).items()}
        for key, recipe in sorted(present.items()):
            if key not in finished.get(recipe, {}).get(kind, []):
                problems.append(f"{kind[:-1]} {key}: not from a finished run of {recipe}")
        for recipe, run in sorted(finished.items()):
            missing = sorted(set(run[kind]) - set(present))
            if missing:
                problems.append(f"recipe {recipe}: its finished run's {kind} {missing[:3]} absent")
    return problems


def _check_sums(tree: Tree, required: bool) -> list[str]:
    """Each line of SHA256SUMS; where `required` (an archive), it must list every other member."""
    if not tree.exists(SUMS):
        return [f"{tree.where(SUMS)}: missing (an archive lists its members)"] if required else []
    problems, listed = [], set()
    text = tree.read(SUMS).decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        digest, _, name = line.partition("  ")
        if not re.fullmatch("[0-9a-f]{64}", digest):
            problems.append(f"{tree.where(SUMS)}: line {number} is not 'sha256  name'")
            continue
        try:
            present = tree.exists(name)
        except PairzooError as exc:
            problems.append(f"{tree.where(SUMS)}: line {number}: {exc}")
            continue
        listed.add(name)
        if not present:
            problems.append(f"{tree.where(name)}: listed in {SUMS} but missing")
        elif tree.sha256(name) != digest:
            problems.append(f"{tree.where(name)}: sha256 does not match {SUMS}")
    if required:
        unlisted = sorted(set(tree.names()) - listed - {SUMS})
        problems += [f"{tree.where(name)}: a member {SUMS} does not list" for name in unlisted]
    return problems


class _Tensors:
    """Models' tensors read on demand, the last few kept (pairs share bases)."""

    def __init__(self, folder: Folder, keep: int = 3):
        self.folder, self.keep = folder, keep
        self.cache: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()

    def __call__(self, model_id: str) -> dict[str, np.ndarray]:
        if model_id not in self.cache:
            self.cache[model_id] = self.folder.model(model_id).tensors()
            if len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        self.cache.move_to_end(model_id)
        return self.cache[model_id]


def _check_model(
    model: Model, tensors: _Tensors, report: Report
) -> dict[str, tuple[int, ...]] | None:
    """Check one model's files and claims; its tensor shapes when its files are sound."""
    tree, model_id, record = model.folder.tree, model.id, model.record
    problems = []
    for kind, file in record["files"].items():
        problems += tree.file_problems(file, f"{kind} file of model {model_id}")
    report.counts["files"] += len(record["files"]) - len(problems)
    if problems:
        report.problems += problems
        return None
    try:
        values = tensors(model_id)
    except PairzooError as exc:
        report.problems.append(f"{exc} (model {model_id})")
        return None
    placement = claims.claimed_map(record["onnx"], values)
    found, scorable = claims.onnx_problems(
        tree.where(model.file("onnx")["path"]),
        model.read("onnx"),
        values,
        placement,
        model.read_external,
    )
    report.problems += found
    if scorable is not None:
        found, warnings, skipped = claims.metric_problems(model_id, record, scorable)
        report.problems += found
        report.warnings += warnings
        report.counts["rescored"] += len(record["metrics"]) - len(skipped) - len(warnings)
        report.not_rescored.update(skipped)
    return {name: tuple(value.shape) for name, value in values.items()}


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
        problem = slice_problem(base_shapes[name], shapes[updated][name], block["slices"])
        if problem:
            problems.append(f"pair {pair_id}: correspondence of {name}: {problem}")
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


def _check_entries(folder: Folder, report: Report) -> None:
    entries = folder.entries
    report.problems += _check_finished(entries)
    report.problems += declarations.problems(entries)
    tensors = _Tensors(folder)
    shapes: dict[str, dict] = {}
    sound = set()
    for model in folder.models():
        model_id, record = model.id, model.record
        before = len(report.problems)
        found = _check_model(model, tensors, report)
        if found is not None:
            shapes[model_id] = found
        if len(report.problems) == before:
            sound.add(model_id)
        if record["training"]["dataset"] not in entries["datasets"]:
            report.problems.append(
                f"model {model_id}: dataset {record['training']['dataset']!r} undefined"
            )
        for metric in record["metrics"]:
            if metric not in entries["metrics"]:
                report.problems.append(f"model {model_id}: metric {metric!r} undefined")
    for pair_id, pair in sorted(entries["pairs"].items()):
        found = _check_pair(pair_id, pair, shapes)
        if not found:
            found = claims.pair_problems(
                pair_id, pair, tensors(pair["base"]), tensors(pair["updated"])
            )
        report.problems += found
        for metric in pair.get("metrics", {}):
            if metric not in entries["metrics"]:
                report.problems.append(f"pair {pair_id}: metric {metric!r} undefined")
    unsound = {
        pair_id
        for pair_id, pair in entries["pairs"].items()
        if pair["base"] not in sound or pair["updated"] not in sound
    }
    report.problems += check_codings(folder, unsound)
    problems, warnings, payloads = payload_problems(folder, sound)
    report.problems += problems
    report.warnings += warnings
    if "coding_ladder" in entries:
        report.problems += folder.tree.file_problems(entries["coding_ladder"]["file"], "ladder")
    report.counts.update(models=len(entries["models"]), pairs=len(entries["pairs"]))
    report.counts["samples"] = sum(len(c["samples"]) for c in entries.get("codings", {}).values())
    report.counts["payloads"] = payloads


def check_tree(tree: Tree) -> Report:
    """Everything `validate` checks, on a folder's or an archive's tree."""
    report = Report(problems=tree.problems())
    try:
        folder = read(tree)
    except PairzooError as exc:
        report.problems.append(str(exc))
        return report
    entries = folder.entries
    archive = isinstance(tree, ZipTree)
    report.problems += _check_sums(tree, required=archive)
    try:
        _check_entries(folder, report)
    except PairzooError as exc:  # a path refused while reading
        report.problems.append(str(exc))
    if not archive:
        named = {f["path"] for f in manifest.file_records(entries)}
        report.warnings += [
            f"{tree.where(name)}: a file the manifest does not name"
            for name in tree.names()
            if name not in named and not _housekeeping(name)
        ]
    return report


def check(target: Path, label: str | None = None) -> Report:
    """Check a folder or a .zip archive (read in place, never unpacked)."""
    tree = open_tree(target, label)
    try:
        return check_tree(tree)
    finally:
        tree.close()


def validate(target: Path) -> list[str]:
    """All problems found in a folder or archive, one line each; empty when everything checks out.

    Warnings (files the manifest does not name) are not problems; `check` returns them too.
    """
    try:
        return check(Path(target)).problems
    except PairzooError as exc:
        return [str(exc)]
