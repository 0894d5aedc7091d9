"""Bjøntegaard delta rate of a codec against the set's NNC anchors (the `bjontegaard` package).

The anchors are the `nnc-incremental` rows of the QP ladder that the update_coding recipe stores
in the set (the manifest's `coding_ladder`): bits per parameter and the metric at every QP.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence

import bjontegaard

from pairzoo.bench.testset import TestSet
from pairzoo.record.metrics import METRICS

ANCHOR_CODEC = "nnc-incremental"
METHOD = "pchip"  # monotone piecewise-cubic interpolation: no overshoot between few points

Point = tuple[float, float]  # (bits per parameter, metric value)


def anchors(
    test_set: TestSet, codec: str = ANCHOR_CODEC, measure: str = "value"
) -> dict[str, list[Point]]:
    """Per pair, the anchor codec's (bits per parameter, `measure`) points; {} if the set has none.

    `measure`: a column of the ladder's rows (`value`, the metric; or `nll`).
    """
    record = test_set.entries.get("coding_ladder")
    if record is None:
        return {}
    text = test_set.tree.read(record["file"]["path"]).decode("utf-8")
    curves: dict[str, list[Point]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(text)):
        if row["codec"] == codec and not row["error"] and row[measure]:
            curves[row["pair"]].append((float(row["bits_per_parameter"]), float(row[measure])))
    return dict(curves)


def front(points: Iterable[Point], higher_is_better: bool) -> list[Point]:
    """The points no cheaper point beats: rising rate, strictly better metric (the RD front)."""
    sign = 1.0 if higher_is_better else -1.0
    kept: list[Point] = []
    for rate, value in sorted((r, v) for r, v in points if r > 0 and math.isfinite(v)):
        if not kept or sign * value > sign * kept[-1][1]:
            kept.append((rate, value))
    return kept


def bd_rate(anchor: Sequence[Point], test: Sequence[Point], metric: str) -> float | None:
    """The test curve's mean rate change (%) against the anchor at equal metric; None if undefined.

    Undefined where either front has fewer than two points or their metric ranges do not overlap.
    """
    higher = METRICS[metric].higher_is_better if metric in METRICS else True
    sign = 1.0 if higher else -1.0
    a, t = front(anchor, higher), front(test, higher)
    if len(a) < 2 or len(t) < 2:
        return None
    low = max(min(sign * v for _, v in a), min(sign * v for _, v in t))
    high = min(max(sign * v for _, v in a), max(sign * v for _, v in t))
    if low >= high:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns on small overlaps; we report them
        try:
            value = bjontegaard.bd_rate(
                [r for r, _ in a],
                [sign * v for _, v in a],
                [r for r, _ in t],
                [sign * v for _, v in t],
                method=METHOD,
                require_matching_points=False,
            )
        except (ValueError, ZeroDivisionError):
            return None
    return float(value) if math.isfinite(value) else None
