"""An evaluation summed up: BD-rate per pair and relation, a Markdown summary, figures."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from pathlib import Path

import pandas as pd

from pairzoo.atomic import atomic_path, write_text
from pairzoo.bench.bdrate import ANCHOR_CODEC, Point, anchors, bd_rate
from pairzoo.bench.harness import Evaluation
from pairzoo.bench.testset import TestSet

SUMMARY_MD, BDRATE_CSV, FIGURES = "summary.md", "bdrate.csv", "figures"


def pair_bd_rates(evaluation: Evaluation, test_set: TestSet) -> pd.DataFrame:
    """Per pair: relation, metric, points, and BD-rate (%) against the anchor.

    At equal metric, and at equal test cross-entropy (NLL: continuous, so defined where a
    saturated top-1 is not).
    """
    anchor = {m: anchors(test_set, measure=m) for m in ("value", "nll")}
    curves: dict[str, dict[str, list[Point]]] = {
        "value": defaultdict(list),
        "nll": defaultdict(list),
    }
    first: dict[str, dict] = {}
    for row in evaluation.rows:
        first.setdefault(row["pair"], row)
        for measure, curve in curves.items():
            if not row["error"] and row[measure] is not None:
                curve[row["pair"]].append((row["bits_per_parameter"], row[measure]))
    table = [
        {
            "pair": pair_id,
            "relation": row["relation"],
            "metric": row["metric"],
            "points": len(curves["value"][pair_id]),
            "anchor points": len(anchor["value"].get(pair_id, [])),
            "BD-rate %": bd_rate(
                anchor["value"].get(pair_id, []), curves["value"][pair_id], row["metric"]
            ),
            "BD-rate NLL %": bd_rate(anchor["nll"].get(pair_id, []), curves["nll"][pair_id], "nll"),
        }
        for pair_id, row in sorted(first.items())
    ]
    return pd.DataFrame(table, columns=["pair", "relation", "metric", "points", "anchor points",
                                        "BD-rate %", "BD-rate NLL %"])  # fmt: skip


def by_relation(evaluation: Evaluation, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per relation: pairs, rows, errors, median bits per parameter and Δ, median BD-rate."""
    rows = pd.DataFrame(evaluation.rows)
    table = []
    for relation, group in rows.groupby("relation"):
        scored = group[group["error"].isna()]
        mine = pairs[pairs["relation"] == relation]
        rates, nll = mine["BD-rate %"].dropna(), mine["BD-rate NLL %"].dropna()
        table.append(
            {
                "relation": relation,
                "pairs": group["pair"].nunique(),
                "rows": len(group),
                "errors": int(group["error"].notna().sum()),
                "median bits/param": scored["bits_per_parameter"].median(),
                "median Δ metric": scored["delta"].median(),
                "median BD-rate %": statistics.median(rates) if len(rates) else None,
                "pairs with BD-rate": len(rates),
                "median BD-rate NLL %": statistics.median(nll) if len(nll) else None,
                "pairs with BD-rate NLL": len(nll),
            }
        )
    return pd.DataFrame(table)


def _table(frame: pd.DataFrame) -> str:
    return (
        frame.astype(object)
        .where(frame.notna(), None)
        .to_markdown(index=False, floatfmt=".4g", missingval="–")
    )


def markdown(evaluation: Evaluation, relations: pd.DataFrame, pairs: pd.DataFrame) -> str:
    """The summary: the closing line, the table by relation, then BD-rate per pair."""
    return "\n\n".join(
        [
            f"# {evaluation.codec}",
            evaluation.line(),
            f"BD-rate against `{ANCHOR_CODEC}` (the set's NNC anchor ladder), at equal metric and "
            "at equal test cross-entropy (NLL); negative is fewer bits. Undefined (–) where a "
            "curve has fewer than two points on its rate–distortion front or the two curves' "
            "ranges do not overlap.",
            _table(relations),
            _table(pairs),
            *(
                [f"Errors: {len(evaluation.errors)} rows; each row's `error` says why."]
                if evaluation.errors
                else []
            ),
            *(
                ["Skipped pairs:", *(f"- `{p}`: {why}" for p, why in evaluation.skipped.items())]
                if evaluation.skipped
                else []
            ),
        ]
    )


def figure(evaluation: Evaluation, test_set: TestSet, relation: str, ax: object = None) -> object:
    """Metric change against bits per parameter for one relation: the codec and the anchor.

    Drawn into `ax` where given, else into a figure of its own; returns the figure.
    """
    import matplotlib.pyplot as plt

    anchor = anchors(test_set)
    fig, ax = plt.subplots(figsize=(6, 3.6)) if ax is None else (ax.figure, ax)
    rows = [r for r in evaluation.rows if r["relation"] == relation and not r["error"]]
    for index, pair_id in enumerate(sorted({r["pair"] for r in rows})):
        mine = sorted((r["bits_per_parameter"], r["delta"]) for r in rows if r["pair"] == pair_id)
        reference = next(r["reference"] for r in rows if r["pair"] == pair_id)
        theirs = sorted((b, v - reference) for b, v in anchor.get(pair_id, []))
        label = index == 0
        ax.plot(*zip(*mine, strict=True), "o-", color="C0", alpha=0.6,
                label=evaluation.codec if label else None)  # fmt: skip
        if theirs:
            ax.plot(*zip(*theirs, strict=True), "s--", color="C1", alpha=0.6,
                    label=ANCHOR_CODEC if label else None)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("bits per parameter")
    ax.set_ylabel("Δ metric (points)")
    ax.set_title(relation, fontsize=10)
    if rows:
        ax.legend(fontsize=8)
    return fig


def write(evaluation: Evaluation, test_set: TestSet, folder: Path) -> pd.DataFrame:
    """Write summary.md, bdrate.csv and a figure per relation into `folder`; the relation table."""
    import matplotlib.pyplot as plt

    pairs = pair_bd_rates(evaluation, test_set)
    relations = by_relation(evaluation, pairs)
    write_text(folder / BDRATE_CSV, pairs.to_csv(index=False))
    for relation in relations["relation"]:
        fig = figure(evaluation, test_set, relation)
        fig.tight_layout()
        path = folder / FIGURES / f"{re.sub(r'[^a-z0-9-]', '-', relation)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
    write_text(folder / SUMMARY_MD, markdown(evaluation, relations, pairs) + "\n")
    return relations
