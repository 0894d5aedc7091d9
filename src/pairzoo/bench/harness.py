"""`pairzoo.evaluate`: a codec on every pair and parameter point, encoded, decoded and scored.

MPEG's evaluation loop: the uncoded model's metric and size, then encode → decode → the metric
of the reconstruction. Each row is checked (names, shapes, dtypes, finite values, the same
reconstruction from a second decode); a row that fails keeps its error and the run goes on.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pairzoo import distributed, progress
from pairzoo.bench import plugin, results
from pairzoo.bench.testset import BenchPair, TestSet, reconstruction_problem
from pairzoo.bench.testset import open as open_set
from pairzoo.errors import PairzooError
from pairzoo.record import manifest


@dataclass
class Evaluation:
    """What `evaluate` did: every row, the pairs skipped and why, and where it wrote them."""

    codec: str
    rows: list[dict]
    skipped: dict[str, str]
    output: Path | None
    seconds: float = 0.0
    resumed: int = 0

    @property
    def errors(self) -> list[dict]:
        """The rows that have no score, with their error."""
        return [row for row in self.rows if row["error"]]

    def line(self) -> str:
        """One closing line: rows, pairs, errors, skipped pairs, time, folder."""
        pairs = len({row["pair"] for row in self.rows})
        text = f"{self.codec}: {len(self.rows)} rows on {pairs} pairs, {len(self.errors)} errors"
        text += f", {len(self.skipped)} pairs skipped" if self.skipped else ""
        text += f", {self.resumed} rows kept from an earlier run" if self.resumed else ""
        text += f", {self.seconds:.1f} s"
        return text + (f" → {self.output}" if self.output else "")


def grid(parameters: Mapping[str, Sequence[object]] | None) -> list[dict]:
    """Every combination of the parameter values, in the order given ([{}] without parameters)."""
    parameters = parameters or {}
    names = list(parameters)
    return [
        dict(zip(names, values, strict=True)) for values in itertools.product(*parameters.values())
    ]


def _fresh(codec: plugin.Codec) -> plugin.Codec:
    """A copy of the codec as it was before any call, so decode cannot reach encode's state."""
    try:
        return copy.deepcopy(codec)
    except Exception:  # a codec that cannot be copied (holds a lock, a handle) runs as itself
        return codec


def _same(first: Mapping[str, np.ndarray], second: Mapping[str, object]) -> bool:
    return set(first) == set(second) and all(
        isinstance(second[k], np.ndarray) and np.array_equal(first[k], second[k]) for k in first
    )


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _row(
    pair: BenchPair,
    codec: plugin.Codec,
    name: str,
    point: dict,
    recheck: bool,
    payloads: dict[tuple[str, str], bytes] | None = None,
) -> dict:
    """One row: encode, decode, check, (`recheck`: decode again,) score; a failure is its error.

    With `payloads`, the payload is kept there under the row's codec and parameters.
    """
    row = dict.fromkeys(results.COLUMNS)
    row.update(pair=pair.id, relation=pair.relation, recipe=pair.recipe, task=pair.task)
    row.update(codec=name, params=point, metric=pair.metric, reference=pair.reference)
    try:
        base, updated = (
            plugin.read_only(pair.base_tensors()),
            plugin.read_only(pair.updated_tensors()),
        )
        row["parameters"] = pair.parameters
        encoder = _fresh(codec)
        start = time.perf_counter()
        payload = encoder.encode(base, updated, **plugin.call_parameters(encoder.encode, point))
        row["encode_s"] = time.perf_counter() - start
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise PairzooError(f"encode returned a {type(payload).__name__}, not bytes")
        payload = bytes(payload)
        if payloads is not None:
            payloads[name, json.dumps(point, sort_keys=True)] = payload
        row["bytes"] = len(payload)
        row["bits_per_parameter"] = 8.0 * len(payload) / row["parameters"]
        decoder = _fresh(codec)
        start = time.perf_counter()
        reconstruction = decoder.decode(
            payload, base, **plugin.call_parameters(decoder.decode, point)
        )
        row["decode_s"] = time.perf_counter() - start
        problem = reconstruction_problem(pair.updated_tensors(), reconstruction)
        if problem:
            raise PairzooError(f"decode: {problem}")
        if recheck:
            again = _fresh(codec).decode(
                payload, base, **plugin.call_parameters(decoder.decode, point)
            )
        if recheck and not _same(reconstruction, again):
            raise PairzooError("decode gave another reconstruction from the same payload")
        score = pair.score(reconstruction)
    except Exception as exc:  # the codec's fault or the input's: the row keeps it, the run goes on
        row["error"] = plugin.error_line(exc)
        return row
    value = _number(score.value)
    delta = None if value is None else value - pair.reference
    row.update(value=value, delta=delta, nll=_number(score.nll))
    row.update(agreement=_number(score.agreement), output_mse=_number(score.output_mse))
    return row


Job = tuple[str, dict]  # a codec's name and a parameter point
# What a ladder makes of a pair's rows, given their payloads by (codec, parameters as JSON).
Finish = Callable[[BenchPair, list[dict], dict[tuple[str, str], bytes]], object]


def _pair_rows(
    pair: BenchPair,
    codecs: Mapping[str, plugin.Codec],
    jobs: list[Job],
    recheck: bool,
    payloads: dict | None = None,
) -> list[dict]:
    try:
        pair.score()  # the uncoded outputs, once (they serve every point's fidelity)
    except Exception as exc:
        return [
            {**_row_stub(pair, name, point), "error": plugin.error_line(exc)}
            for name, point in jobs
        ]
    return [_row(pair, codecs[name], name, point, recheck, payloads) for name, point in jobs]


def _pair_work(
    pair: BenchPair,
    codecs: Mapping[str, plugin.Codec],
    jobs: list[Job],
    finish: Finish | None,
    recheck: bool,
) -> tuple[list[dict], object]:
    if finish is None:
        return _pair_rows(pair, codecs, jobs, recheck), None
    payloads: dict[tuple[str, str], bytes] = {}
    rows = _pair_rows(pair, codecs, jobs, recheck, payloads)
    return rows, finish(pair, rows, payloads)


def _row_stub(pair: BenchPair, name: str, point: dict) -> dict:
    row = dict.fromkeys(results.COLUMNS)
    row.update(pair=pair.id, relation=pair.relation, recipe=pair.recipe, task="other")
    row.update(codec=name, params=point, metric="", reference=0.0)
    return row


# The work a forked worker does: set before the pool starts, inherited by every worker.
_WORK: dict = {}


def _worker_rows(pair_id: str, jobs: list[Job]) -> tuple[list[dict], object]:
    import torch

    torch.set_num_threads(1)
    test_set = _WORK.get("set")
    if test_set is None:
        test_set = _WORK["set"] = open_set(_WORK["target"])
    work = _WORK["codecs"], jobs, _WORK["finish"], _WORK["recheck"]
    return _pair_work(test_set.pair(pair_id), *work)


def _run(
    test_set: TestSet,
    todo: dict[str, list[Job]],
    codecs: Mapping[str, plugin.Codec],
    workers: int,
    finish: Finish | None = None,
    recheck: bool = True,
) -> Iterator[tuple[str, list[dict], object]]:
    """(pair id, its rows, what `finish` made of them) as pairs finish, in `workers` processes.

    Workers are forked (more than one, and more than one pair): they inherit the codecs.
    """
    if workers <= 1 or len(todo) <= 1:
        for pair_id, jobs in todo.items():
            yield pair_id, *_pair_work(test_set.pair(pair_id), codecs, jobs, finish, recheck)
        return
    _WORK.update(target=test_set.target, codecs=codecs, finish=finish, recheck=recheck, set=None)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {
            pair_id: pool.submit(_worker_rows, pair_id, jobs) for pair_id, jobs in todo.items()
        }
        for pair_id, future in futures.items():
            yield pair_id, *future.result()


class _Progress:
    """A bar on a terminal, a plain line per pair elsewhere (the book, a log)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done = total, 0
        self.bar = None
        if enabled and progress.interactive():
            self.bar = progress.bar(total, "code", "pair")
        self.plain = enabled and self.bar is None and distributed.rank() == 0

    def update(self, pair_id: str, rows: list[dict]) -> None:
        self.done += 1
        errors = sum(1 for row in rows if row["error"])
        if self.bar is not None:
            self.bar.set_postfix_str(pair_id[-40:])
            self.bar.update()
        elif self.plain:
            note = f", {errors} errors" if errors else ""
            print(f"[{self.done}/{self.total}] {pair_id}: {len(rows)} rows{note}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def set_identity(test_set: TestSet) -> dict:
    """Where the set was read, its profile, and the sha256 of its manifest's bytes."""
    data = test_set.tree.read(manifest.MANIFEST)
    return {
        "label": str(test_set.tree.label),
        "profile": test_set.profile,
        "manifest_sha256": hashlib.sha256(data).hexdigest(),
    }


def select(
    test_set: TestSet, pairs: str | None, relation: str | None, codec: plugin.Codec
) -> tuple[list[BenchPair], dict[str, str]]:
    """The pairs to run (glob and relation), and those skipped for their structure change."""
    chosen = test_set.pairs(relation=relation, pattern=pairs)
    if not chosen:
        raise PairzooError(
            f"no pair of {test_set.tree.label} matches --pairs {pairs or '*'!r}"
            + (f" and relation {relation!r}" if relation else "")
        )
    supported = plugin.supported(codec)
    skipped = {
        pair.id: f"structure change {sorted(pair.structure - supported)} not supported"
        for pair in chosen
        if not pair.structure <= supported
    }
    return [pair for pair in chosen if pair.id not in skipped], skipped


def evaluate(
    codec: plugin.Codec | str,
    test_set: TestSet | Path | str,
    parameters: Mapping[str, Sequence[object]] | None = None,
    pairs: str | None = None,
    relation: str | None = None,
    output: Path | str | None = None,
    workers: int = 1,
    progress: bool = True,
    resume: bool = True,
) -> Evaluation:
    """Evaluate `codec` on the set's pairs (id glob, relation) at every parameter point.

    `codec`: an object with encode/decode, or a spec (`module:object`, a file, a built-in name).
    With `output`, results.json and results.csv are written there after every pair, and a rerun
    into the same folder skips the rows it finished (unless `resume` is False: then they are
    replaced). Bad input raises PairzooError before any work.
    """
    if isinstance(codec, str):
        codec = plugin.load_codec(codec)
    name = plugin.codec_name(codec)
    points = grid(parameters)
    plugin.check_parameters(codec, points[0])  # every point has the same names
    if not isinstance(test_set, TestSet):
        test_set = open_set(test_set)
    chosen, skipped = select(test_set, pairs, relation, codec)
    identity = set_identity(test_set)
    kept = results.load(Path(output), name, identity) if output and resume else []
    done = {results.row_key(row) for row in kept if not row["error"]}
    rows = [row for row in kept if not row["error"]]
    todo = {}
    for pair in chosen:
        missing = [p for p in points if (pair.id, json.dumps(p, sort_keys=True)) not in done]
        if missing:
            todo[pair.id] = [(name, point) for point in missing]
    evaluation = Evaluation(name, rows, skipped, Path(output) if output else None)
    evaluation.resumed = len(rows)
    document = {
        "format": results.FORMAT,
        "codec": name,
        "set": identity,
        "parameters": {k: list(v) for k, v in (parameters or {}).items()},
        "skipped": skipped,
        "rows": rows,
    }
    start = time.perf_counter()
    bar = _Progress(len(todo), progress)
    try:
        for pair_id, new, _ in _run(test_set, todo, {name: codec}, workers):
            rows.extend(new)
            bar.update(pair_id, new)
            if output is not None:
                rows.sort(key=results.row_key)
                results.save(Path(output), document)
    finally:
        bar.close()
    rows.sort(key=results.row_key)
    evaluation.seconds = time.perf_counter() - start
    return evaluation


def ladder(
    runs: Sequence[tuple[plugin.Codec, Mapping[str, Sequence[object]]]],
    test_set: TestSet,
    pairs: Sequence[str],
    workers: int = 1,
    finish: Finish | None = None,
    progress: bool = True,
    recheck: bool = True,
) -> dict[str, tuple[list[dict], object]]:
    """Per pair: the rows of several codecs at every point of their parameters, and `finish`'s.

    `finish(pair, rows, payloads)` runs in the same process, while the pair is loaded. Each
    pair's tensors and uncoded outputs are read once for all codecs, and a reconstruction two
    codecs share is scored once. No output folder, no resume: the caller keeps the rows.
    `recheck=False` decodes each payload once (for codecs whose determinism is tested, as the
    built-ins' is).
    """
    codecs = {plugin.codec_name(codec): codec for codec, _ in runs}
    if len(codecs) != len(runs):
        raise PairzooError("two codecs of the ladder have the same name")
    jobs = []
    for codec, parameters in runs:
        points = grid(parameters)
        plugin.check_parameters(codec, points[0])
        jobs += [(plugin.codec_name(codec), point) for point in points]
    todo = {}
    for pair in (test_set.pair(pair_id) for pair_id in pairs):
        fits = {n for n, c in codecs.items() if pair.structure <= plugin.supported(c)}
        todo[pair.id] = [(name, point) for name, point in jobs if name in fits]
    done = {}
    bar = _Progress(len(todo), progress)
    try:
        for pair_id, rows, made in _run(test_set, todo, codecs, workers, finish, recheck):
            done[pair_id] = rows, made
            bar.update(pair_id, rows)
    finally:
        bar.close()
    return done
