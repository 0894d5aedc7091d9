"""Pairs coded along a QP ladder with every method: table rows and the operating points kept."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from pairzoo import codec
from pairzoo.coded_samples import LoadedPair, load_pair

# The codings kept as compressed samples, by method: the full model and the incremental update.
SAMPLES = {"nnc-full": "full", "nnc-incremental-tca": "incremental"}
COLUMNS = ["pair", "method", "qp", "bytes", "bits/param", "× float32", "metric", "Δ metric"]
COLUMNS += ["encode s", "decode s"]


@dataclass
class Ladder:
    """One pair's codings: a row per method and QP, and the chosen samples by name."""

    rows: list[dict]
    chosen: dict[str, codec.Coding]


class _Scorer:
    """Scores reconstructions, once per distinct set of tensors (TCA only changes the bits)."""

    def __init__(self, pair: LoadedPair) -> None:
        self.pair = pair
        self.seen: dict[str, float] = {}

    def row(self, coding: codec.Coding, qp: int | None = None) -> dict:
        """The table row of a coding of the pair, its reconstruction scored."""
        key = codec.tensors_sha256(coding.reconstruction)
        if key not in self.seen:
            self.seen[key] = self.pair.evaluate(coding.reconstruction)
        value, pair = self.seen[key], self.pair
        return {
            "pair": pair.pair_id,
            "method": coding.method,
            "qp": qp,
            "bytes": coding.size,
            "bits/param": 8 * coding.size / pair.parameters,
            "× float32": coding.size / (4 * pair.parameters),
            "metric": value,
            "Δ metric": value - pair.reference,
            "encode s": coding.encode_seconds,
            "decode s": coding.decode_seconds,
        }


def code_pair(
    folder: Path, entries: dict, pair_id: str, qps: Sequence[int], tolerance: float
) -> Ladder:
    """Code a pair losslessly and, from coarse to fine QP, with NNC and the quantised baselines.

    A sample's operating point is the first QP whose metric loss is at most `tolerance` points
    (the finest QP of the ladder if none is).
    """
    pair = load_pair(folder, entries, pair_id)
    base, updated = pair.base, pair.updated
    scorer = _Scorer(pair)
    lossless = [codec.float32(updated)]
    lossless += [codec.delta_lossless(base, updated, name) for name in codec.COMPRESSORS]
    rows = [scorer.row(coding) for coding in lossless]
    chosen: dict[str, codec.Coding] = {}
    settled: set[str] = set()
    for qp in sorted(qps, reverse=True):
        settings = codec.NncSettings(qp)
        base_stream = codec.encode_base(base, updated, settings)  # once for both updates
        codings = [
            codec.nnc_full(updated, settings),
            codec.nnc_update(base, updated, settings, base_stream),
            codec.nnc_update(base, updated, replace(settings, tca=True), base_stream),
        ]
        codings += codec.delta_quantised(base, updated, settings)
        for coding in codings:
            rows.append(scorer.row(coding, qp))
            name = SAMPLES.get(coding.method)
            if name and name not in settled:
                chosen[name] = coding
                if -rows[-1]["Δ metric"] <= tolerance:
                    settled.add(name)
    return Ladder(rows, chosen)


def _one_thread() -> None:
    torch.set_num_threads(1)


def code_pairs(
    folder: Path,
    entries: dict,
    pair_ids: Sequence[str],
    qps: Sequence[int],
    tolerance: float,
    workers: int = 1,
) -> dict[str, Ladder]:
    """`code_pair` for every pair, in `workers` processes of one thread each; in pair order.

    The workers are forked before this process scores anything, so they share the loaded codec
    and no onnxruntime or OpenMP threads exist yet to be copied half-way.
    """
    arguments = [(folder, entries, pair_id, qps, tolerance) for pair_id in pair_ids]
    if workers <= 1 or len(pair_ids) <= 1:
        return {args[2]: code_pair(*args) for args in arguments}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
        ladders = list(pool.map(code_pair, *zip(*arguments, strict=True)))
    return dict(zip(pair_ids, ladders, strict=True))
