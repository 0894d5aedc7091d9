"""The reference coding of every pair: the built-in codecs along a QP ladder, through the harness.

The update_coding recipe runs it, keeps its rows as the set's anchor curves (the manifest's
`coding_ladder`) and, per pair, the operating points of full and incremental NNC as samples.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pairzoo.bench import payload, results
from pairzoo.bench.builtin_codecs import BASE_CONTEXTS, BUILTIN
from pairzoo.bench.harness import ladder
from pairzoo.bench.plugin import Codec
from pairzoo.bench.testset import BenchPair, TestSet
from pairzoo.coding import codec
from pairzoo.coding.coded_samples import LoadedPair, ScoredCoding

LOSSLESS = ("float32", "gzip-delta", "zstd-delta", "zipnn-delta")
QUANTISED = ("nnc-full", "nnc-incremental", "nnc-incremental-tca", "gzip-delta-q", "zstd-delta-q")
# The codings kept as compressed samples, by codec: the full model and the incremental update.
SAMPLES = {"nnc-full": "full", "nnc-incremental-tca": "incremental"}


def runs(qps: Sequence[int]) -> list[tuple[Codec, dict]]:
    """The lossless codecs once, the quantising ones at every QP."""
    return [(BUILTIN[name], {}) for name in LOSSLESS] + [
        (BUILTIN[name], {"qp": list(qps)}) for name in QUANTISED
    ]


@dataclass
class Ladder:
    """One pair's rows, the samples chosen (by name) and the metric change of keeping the base."""

    pair: LoadedPair
    rows: list[dict]
    chosen: dict[str, ScoredCoding]
    base_change: float


def code(
    test_set: TestSet, pairs: Sequence[str], qps: Sequence[int], tolerance: float, workers: int
) -> dict[str, Ladder]:
    """Every pair's ladder: the codecs' rows, and the operating points within `tolerance`."""

    def finish(pair: BenchPair, rows: list[dict], payloads: dict) -> Ladder:
        chosen = operating_points(rows, tolerance).get(pair.id, {})
        samples = {
            name: sample(
                pair, row, payloads[row["codec"], json.dumps(row["params"], sort_keys=True)]
            )
            for name, row in chosen.items()
        }
        return Ladder(loaded(pair), rows, samples, base_change(pair))

    made = ladder(runs(qps), test_set, pairs, workers, finish, recheck=False)
    return {pair_id: result for pair_id, (_, result) in made.items()}


# The page's table: its column for each of the harness's, and the ratios it adds.
COLUMNS = {
    "pair": "pair", "codec": "method", "qp": "qp", "bytes": "bytes",
    "bits_per_parameter": "bits/param", "× float32": "× float32", "value": "metric",
    "delta": "Δ metric", "encode_s": "encode s", "decode_s": "decode s",
}  # fmt: skip


def stored(rows: list[dict]) -> list[dict]:
    """The rows as the set keeps them: without timings, which vary from run to run."""
    return [{**row, "encode_s": None, "decode_s": None} for row in rows]


def table(rows: list[dict]) -> pd.DataFrame:
    """The rows as the page shows them: a QP column, and bytes as a share of raw float32."""
    frame = pd.DataFrame(rows, columns=list(results.COLUMNS))
    frame["qp"] = [row["params"].get("qp") for row in rows]
    frame["× float32"] = frame["bytes"] / (4 * frame["parameters"])
    return frame[list(COLUMNS)].rename(columns=COLUMNS)


def operating_points(rows: list[dict], tolerance: float) -> dict[str, dict[str, dict]]:
    """Per pair and sample, the row of the coarsest QP whose metric loss is at most `tolerance`.

    The finest QP of the ladder where none is.
    """
    chosen: dict[str, dict[str, dict]] = {}
    for method, name in SAMPLES.items():
        ladders: dict[str, list[dict]] = {}
        for row in rows:
            if row["codec"] == method and not row["error"]:
                ladders.setdefault(row["pair"], []).append(row)
        for pair_id, found in ladders.items():
            found.sort(key=lambda row: -row["params"]["qp"])  # coarse to fine
            fits = [row for row in found if -row["delta"] <= tolerance]
            chosen.setdefault(pair_id, {})[name] = (fits or found[-1:])[0]
    return chosen


def loaded(pair: BenchPair) -> LoadedPair:
    """The pair as the compressed samples' records take it (the reference from the manifest)."""
    base, updated = pair.base, pair.updated
    return LoadedPair(
        pair.id,
        base.id,
        updated.id,
        pair.base_tensors(),
        pair.updated_tensors(),
        pair.metric,
        updated.metrics[pair.metric]["dataset"],
        pair.reference,
        tuple(m.id for m in (base, updated) if "BF16" in m.stored_dtypes()),
    )


def sample(pair: BenchPair, row: dict, data: bytes) -> ScoredCoding:
    """The coding of a chosen row as the stand-alone bitstreams `pairzoo validate` decodes.

    They are the built-in codec's payload `data` taken apart (the receiver's base stream added
    for an incremental one), not coded again.
    """
    base, updated = pair.base_tensors(), pair.updated_tensors()
    qp = row["params"]["qp"]
    if row["codec"] == "nnc-full":
        parts = {"full": payload.unpack(data, 2)[1]}
        settings = codec.NncSettings(qp).record(differences=False)
        size = len(parts["full"])
    else:
        _, fresh, update = payload.unpack(data, 3)
        matched, _ = codec.split(base, updated)
        parts = {"new": fresh} if fresh else {}
        if matched:
            parts |= {"base": BASE_CONTEXTS.stream(base, matched, qp).bitstream, "update": update}
        settings = codec.NncSettings(qp, tca=True).record(differences=True)
        size = len(fresh) + len(update)
    shapes = {name: tuple(value.shape) for name, value in updated.items()}
    reconstruction = codec.decode_sample(parts, base, shapes)
    coding = codec.Coding(
        row["codec"], settings, parts, size, reconstruction, row["encode_s"], row["decode_s"]
    )
    return ScoredCoding(coding, pair.score(reconstruction).value)


def base_change(pair: BenchPair) -> float:
    """The metric change of keeping the base (NaN where the structures differ)."""
    if pair.structure != {"matched"}:
        return float(np.nan)
    return pair.score(pair.base_tensors()).value - pair.reference
