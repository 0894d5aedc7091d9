"""Pairs coded along a QP ladder with every method: table rows and the operating points kept."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from pairzoo.coding import codec
from pairzoo.coding.coded_samples import LoadedPair, ScoredCoding, load_pair
from pairzoo.coding.detection_scoring import DetectionEvaluator
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.record.view import Pair

# The codings kept as compressed samples, by method: the full model and the incremental update.
SAMPLES = {"nnc-full": "full", "nnc-incremental-tca": "incremental"}
COLUMNS = ["pair", "method", "qp", "bytes", "bits/param", "× float32", "metric", "Δ metric"]
COLUMNS += ["encode s", "decode s"]


@dataclass
class Ladder:
    """One pair's codings: the pair, a row per method and QP, and the chosen samples by name.

    `base_change` is the metric change of keeping the base (NaN when the structures differ).
    """

    pair: LoadedPair
    rows: list[dict]
    chosen: dict[str, ScoredCoding]
    base_change: float


class _Scorer:
    """Scores reconstructions, once per distinct set of tensors (TCA only changes the bits)."""

    def __init__(self, pair: LoadedPair, evaluate: OnnxEvaluator | DetectionEvaluator) -> None:
        self.pair, self.evaluate = pair, evaluate
        self.seen: dict[str, float] = {}

    def row(self, coding: codec.Coding, qp: int | None = None) -> dict:
        """The table row of a coding of the pair, its reconstruction scored."""
        key = codec.tensors_sha256(coding.reconstruction)
        if key not in self.seen:
            self.seen[key] = self.evaluate(coding.reconstruction)
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


def code_pair(source: Pair, qps: Sequence[int], tolerance: float) -> Ladder:
    """Code a pair losslessly and, from coarse to fine QP, with NNC and the quantised baselines.

    A sample's operating point is the first QP whose metric loss is at most `tolerance` points
    (the finest QP of the ladder if none is).
    """
    pair, evaluate = load_pair(source)
    base, updated = pair.base, pair.updated
    scorer = _Scorer(pair, evaluate)
    lossless = [codec.float32(updated)]
    lossless += [codec.delta_lossless(base, updated, name) for name in codec.COMPRESSORS]
    rows = [scorer.row(coding) for coding in lossless]
    chosen: dict[str, ScoredCoding] = {}
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
                chosen[name] = ScoredCoding(coding, rows[-1]["metric"])
                if -rows[-1]["Δ metric"] <= tolerance:
                    settled.add(name)
    same = {k: v.shape for k, v in base.items()} == {k: v.shape for k, v in updated.items()}
    base_change = evaluate(base) - pair.reference if same else np.nan
    return Ladder(pair, rows, chosen, base_change)


def _one_thread() -> None:
    torch.set_num_threads(1)


def code_pairs(
    pairs: Sequence[Pair], qps: Sequence[int], tolerance: float, workers: int = 1
) -> dict[str, Ladder]:
    """`code_pair` for every pair, in `workers` processes of one thread each; in pair order.

    The workers are forked before this process scores anything, so they share the loaded codec
    and no onnxruntime or OpenMP threads exist yet to be copied half-way.
    """
    if workers <= 1 or len(pairs) <= 1:
        return {pair.id: code_pair(pair, qps, tolerance) for pair in pairs}
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
        ladders = pool.map(code_pair, pairs, [qps] * len(pairs), [tolerance] * len(pairs))
        return {pair.id: result for pair, result in zip(pairs, ladders, strict=True)}
