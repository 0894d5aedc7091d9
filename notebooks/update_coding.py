# ---
# jupyter:
#   jupytext:
#     formats: notebooks///py:percent,ipynb///ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reference coding of every pair: full model versus incremental update
#
# The call asks for *samples of compressed models*, with the compression method applied, and for
# metrics that compare the original network with the reconstructed one. This recipe gives every
# pair in the output folder those reference numbers, with the codec of the standard: Fraunhofer's
# **NNCodec** {cite}`becking2023nncodec` (MPEG NNR / NNC {cite}`iso15938-17`, second edition, which adds
# incremental coding).
#
# For each pair, the updated model is coded in three ways along a ladder of quantisation
# parameters (QP; the step of weight tensors is $2^{\lfloor QP/4 \rfloor}(1 + (QP \bmod 4)/4)$,
# about $2^{QP/4}$, finer for smaller QP):
#
# | method | what is coded | what the receiver needs |
# |---|---|---|
# | `nnc-full` | the updated model whole (`nnc.compress` on its float32 tensors) | nothing |
# | `nnc-incremental` | updated − base, as NNC differences (`compress_differences`) after the base was coded into the shared context (`approx_param_base`) | the base |
# | `nnc-incremental-tca` | the same, with temporal context adaptation (`tca`): the base's quantised levels steer the entropy coder's contexts | the base |
#
# and against general-purpose baselines: the raw float32 model, gzip and zstd of the float32 delta
# (lossless), and gzip and zstd of the delta rounded to NNC's step at the same QP. Tensors that have
# no counterpart in the base (a new or reshaped head) are coded whole, in a part of their own, and
# their bytes count towards the update. One-dimensional tensors (biases, BatchNorm parameters and
# statistics) keep NNCodec's default fine step (`nonweight_qp` −75) in every NNC method and in the
# quantised baselines.
#
# Each reconstruction is scored without the training framework: the decoded tensors are written
# into the updated model's ONNX graph (its initializers carry the framework's tensor names, or the
# manifest's `initializer_map` says which initializer holds which tensor, transposed how) and
# onnxruntime runs it on the test split of the model's dataset (restricted to the model's own
# classes, in its slot order, where the manifest says it was measured on a subset); a detector's
# graph runs image by image, and its box mAP is computed from onnxruntime's boxes, scores and labels
# as its recipe computes it. The metric change is measured against the uncoded updated model scored
# the same way. Pairs whose metric has no framework-free scorer, and those the `exclude` parameter
# names (the detectors, by default, to keep the ci build short), are listed and left uncoded.
#
# Per pair, one **operating point** is kept as a compressed sample: for the full and for the
# incremental (tca) coding, the coarsest QP of the ladder whose metric loss stays within the
# tolerance. Their bitstreams go to `update_coding/<pair>/` in the output folder, and their method
# record (codec, version, QP and flags, sha256 of every bitstream, of the reconstruction, and of
# the base and updated safetensors they were made from) to the manifest's `codings`;
# `pairzoo validate` decodes them again and checks the metric.

# %% tags=["parameters"]
profile = "ci"  # which output folder: artifacts/<profile>
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
qps = [-20, -30, -40, -50, -60]  # QP ladder, coarse to fine
tolerance = 0.5  # largest metric loss (points) of an operating point
workers = 2  # processes coding pairs side by side
# pairs not coded here (fnmatch patterns): the detectors score image by image, which would add
# about a minute to the ci build; `pairzoo evaluate` scores them with any codec
exclude = ["detection_backbone/*"]

# %%
from fnmatch import fnmatch

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from pairzoo.atomic import write_text
from pairzoo.bench import reference_ladder, testset
from pairzoo.bench.results import csv_text
from pairzoo.coding import codec, coded_samples
from pairzoo.profiles import artifacts_dir
from pairzoo.record import manifest
from pairzoo.record.staged_output import StagedOutput
from pairzoo.timing import SECONDS, timed

folder = artifacts_dir(profile, artifacts)
entries = (
    manifest.load(folder) if (folder / manifest.MANIFEST).exists() else manifest.empty(profile)
)
zoo = testset.of(folder, entries)
skipped = {pair.id: coded_samples.unscoreable(pair) for pair in zoo.pairs()}
skipped |= {p: "excluded" for p in skipped if any(fnmatch(p, glob) for glob in exclude)}
pair_ids = [pair_id for pair_id, reason in skipped.items() if reason is None]
for pair_id, reason in skipped.items():
    if reason is not None:
        print(f"not coded: {pair_id} ({reason})")
codec.load_nncodec()  # import it now, so that the first coding's time does not include it
if pair_ids:
    output = StagedOutput(folder, coded_samples.RECIPE, profile)
    print(f"{len(pair_ids)} pairs in {folder}; nncodec {codec.codec_version()}; QPs {qps}")
else:
    print(
        f"No pairs in {folder}: run a model recipe (for example retraining) first. Nothing to code."
    )

# %% [markdown]
# ## Coding every pair along the QP ladder, keeping the operating points
#
# The coding runs through the same harness as any user's codec (`pairzoo.evaluate`, see "Evaluate
# your codec"), with pairzoo's built-in codecs: `reference_ladder.code` codes each pair losslessly
# (float32, gzip, zstd and ZipNN of the delta) and, at every QP, with full NNC, incremental NNC with
# and without TCA, and gzip and zstd of the delta rounded to NNC's step; every payload is decoded
# (twice, to check it decodes alike) and scored. Bytes are the payload's length, a few bytes of
# container included. The operating point of the full and of the incremental (tca) coding is the
# coarsest QP whose metric loss is at most `tolerance` points (the finest QP of the ladder if none
# is); those are coded once more as the stand-alone bitstreams that are kept. Pairs are
# independent, so `workers` processes code them side by side; each reads its pair's tensors and
# scores the uncoded model once, and scores a reconstruction that two codecs share once.

# %%
with timed("code"):
    ladders = reference_ladder.code(zoo, pair_ids, qps, tolerance, workers)
rows = [row for result in ladders.values() for row in result.rows]
chosen = {pair_id: result.chosen for pair_id, result in ladders.items()}
pairs = {pair_id: result.pair for pair_id, result in ladders.items()}
for pair_id, pair in pairs.items():
    print(f"{pair_id}: {pair.parameters:,} values, {pair.metric} {pair.reference:.2f} uncoded")

results = reference_ladder.table(rows)
full = results[results["method"] == "nnc-full"].set_index(["pair", "qp"])["bytes"]
results["× nnc-full"] = [
    b / full.get((p, q), np.nan) for p, q, b in results[["pair", "qp", "bytes"]].values
]

# %% [markdown]
# The chosen samples are written now, with their method records, beside what an earlier run of this
# recipe stored, and replace it only once all are written; all rows go to
# `update_coding/results.csv`, in the format of `pairzoo evaluate`'s results (without the
# timings, which vary from run to run), which the manifest names as the set's `coding_ladder`:
# the anchor curves a codec's BD-rate is measured against.

# %%
rule = (
    f"coarsest QP of {sorted(qps, reverse=True)} with a metric loss of at most {tolerance} points"
)
if pair_ids:
    codings = {
        pair_id: coded_samples.record(output, zoo, pairs[pair_id], chosen[pair_id], rule)
        for pair_id in pair_ids
    }
    write_text(output.path("results.csv"), csv_text(reference_ladder.stored(rows)))
    ladder = output.record(output.path("results.csv"))
    output.commit(lambda current: coded_samples.enter(current, codings, ladder))
    print(f"stored {sum(len(c) for c in chosen.values())} samples under {output.final}")

# %% [markdown]
# ## Every pair at its operating point
#
# Bytes a receiver needs, the metric change (`metric` names the metric, `uncoded` is the uncoded
# updated model's value), and the share of the full coding that the incremental one needs. `zstd-delta-q` is zstd of the delta rounded to NNC's step at the
# incremental operating point's QP; `base Δ` is the metric change of sending nothing (the receiver
# keeps the base), for scale; `weights moved` is the share of weight values that the update changes
# by at least half of NNC's step at that QP.


# %%
def at(pair_id, method, qp):
    hit = results[(results["pair"] == pair_id) & (results["method"] == method)]
    return hit[hit["qp"] == qp].iloc[0]


def weights_moved(pair, qp):
    """Share of weight values (tensors of ≥ 2 dimensions) that change by at least half a step."""
    step = codec.NncSettings(qp).step((1, 1))
    matched, _ = codec.split(pair.base, pair.updated)
    weights = [k for k in matched if pair.updated[k].ndim > 1]
    moved = sum(int((np.abs(pair.updated[k] - pair.base[k]) >= step / 2).sum()) for k in weights)
    return moved / max(1, sum(pair.updated[k].size for k in weights))


table = []
for pair_id in pair_ids:
    pair, relation = pairs[pair_id], zoo.pair(pair_id).relation
    full, incremental = (chosen[pair_id][k].coding for k in ("full", "incremental"))
    full_qp, inc_qp = full.settings["qp"], incremental.settings["qp"]
    full_row, inc_row = at(pair_id, full.method, full_qp), at(pair_id, incremental.method, inc_qp)
    table.append(
        {
            "pair": pair_id,
            "relation": relation,
            "parameters": pair.parameters,
            "metric": pair.metric,
            "uncoded": pair.reference,
            "base Δ": ladders[pair_id].base_change,
            "full QP": full_qp,
            "full bytes": full.size,
            "full Δ": full_row["Δ metric"],
            "incr. QP": inc_qp,
            "incr. bytes": incremental.size,
            "incr. bits/param": inc_row["bits/param"],
            "incr. Δ": inc_row["Δ metric"],
            "incr. / full": incremental.size / full.size,
            "weights moved": weights_moved(pair, inc_qp),
            "zstd-delta-q bytes": at(pair_id, "zstd-delta-q", inc_qp)["bytes"],
        }
    )
table = pd.DataFrame(table).set_index("pair") if table else pd.DataFrame()
shown = ["relation", "metric", "uncoded", "full bytes", "incr. QP", "incr. bytes", "incr. Δ",
         "incr. / full", "zstd-delta-q bytes"]  # fmt: skip
table[shown].round(3) if not table.empty else print("(no pairs)")

# %% [markdown]
# Every column, for every pair (the QPs, `base Δ`, bits per parameter, weights moved):

# %% tags=["hide-output"]
table.round(3)

# %% [markdown]
# ## Rate and metric along the ladder
#
# One panel per recipe and relation (the first of its pairs; every pair's rows are in the table
# file below), grouped by relation: the metric change against bits per parameter for every method
# (log scale; lossless baselines as single points, the raw float32 model at 32 bits).

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-coding-ladder", "caption": "Metric change (points) against bits per parameter (log scale) along the QP ladder, for every coding method, one panel per recipe and relation; the dashed line is the loss `tolerance` that picks the operating points."}}
from matplotlib.ticker import LogLocator, NullFormatter

styles = {
    "nnc-full": ("C0", "o-"),
    "nnc-incremental": ("C1", "s-"),
    "nnc-incremental-tca": ("C2", "^--"),
    "gzip-delta-q": ("C3", "x:"),
    "zstd-delta-q": ("C4", "+:"),
    "gzip-delta": ("C3", "X"),
    "zstd-delta": ("C4", "P"),
    "zipnn-delta": ("C5", "D"),
    "float32": ("k", "*"),
}
first = {}
for pair_id in pair_ids:
    first.setdefault((zoo.pair(pair_id).recipe, zoo.pair(pair_id).relation), pair_id)
ordered = sorted(first.values(), key=lambda p: (zoo.pair(p).relation, p))
columns = 3
nrows = max(1, -(-len(ordered) // columns))
fig, axes = plt.subplots(nrows, columns, figsize=(12, 3.2 * nrows), sharey=True, squeeze=False)
for ax, pair_id in zip(axes.flat, ordered, strict=False):
    for method, (colour, style) in styles.items():
        curve = results[(results["pair"] == pair_id) & (results["method"] == method)]
        ax.plot(curve["bits/param"], curve["Δ metric"], style, color=colour, label=method, ms=5)
    ax.axhline(-tolerance, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    if sum(low <= tick <= high for tick in ax.get_xticks()) < 2:  # one power of ten in view
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 × 10^k
    ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
    ax.xaxis.set_major_formatter("{x:g}")
    ax.set_title(f"{pair_id}\n({zoo.pair(pair_id).relation})", fontsize=9)
    ax.set_xlabel("bits per parameter")
for ax in axes.flat[len(ordered) :]:
    ax.axis("off")
axes[0, 0].set_ylabel("Δ metric (points)")
if ordered:
    axes[0, 0].set_ylim(bottom=max(-10.0, results["Δ metric"].min() - 0.5), top=1.0)
    axes.flat[0].legend(fontsize=7, loc="lower right")
else:
    axes[0, 0].text(0.5, 0.5, "no pairs to code", ha="center", transform=axes[0, 0].transAxes)
fig.tight_layout()

# %% [markdown]
# ## What the numbers say
#
# Computed from this run's table, so the statements hold for whatever pairs the folder holds.


# %%
def reading():
    if table.empty:
        return "No pairs were coded."
    share = table["incr. / full"]
    lines = [
        f"- At the operating points, the incremental update needs between {share.min():.1%} "
        f"(`{share.idxmin()}`) and {share.max():.1%} (`{share.idxmax()}`) of the bytes of the "
        f"full coding (median {share.median():.1%}) over {len(share)} pairs.",
    ]
    by_relation = table.groupby("relation")["incr. bits/param"].median().sort_values()
    lines.append(
        "- Median bits per parameter of the incremental update, by relation: "
        + ", ".join(f"{rel} {bpp:.3f}" for rel, bpp in by_relation.items())
        + "."
    )
    nnc = results[results["method"] == "nnc-incremental"].set_index(["pair", "qp"])["bytes"]
    tca = results[results["method"] == "nnc-incremental-tca"].set_index(["pair", "qp"])["bytes"]
    gain = (tca / nnc - 1).dropna()
    lines.append(
        f"- Temporal context adaptation changes the incremental bytes by {gain.min():+.1%} to "
        f"{gain.max():+.1%} over all pairs and QPs (median {gain.median():+.1%})."
    )
    zstd = results[results["method"] == "zstd-delta-q"].set_index(["pair", "qp"])["bytes"]
    versus = (nnc / zstd).dropna()
    lines.append(
        f"- At the same quantisation step, NNC's incremental bitstream is {versus.min():.0%} to "
        f"{versus.max():.0%} of zstd on the rounded delta (median {versus.median():.0%})."
    )
    lossless = results[results["method"] == "zstd-delta"].set_index("pair")["× float32"]
    lines.append(
        f"- Lossless zstd of the float32 delta keeps {lossless.min():.0%} to {lossless.max():.0%} "
        "of the raw float32 size."
    )
    one_epoch = "retraining/base..epochs-1"
    if one_epoch in share.index:
        hit = table.loc[one_epoch]
        verdict = (
            "meets" if hit["incr. / full"] <= 0.3 and -hit["incr. Δ"] <= tolerance else "misses"
        )
        lines.append(
            f"- `{one_epoch}`: incremental NNC needs {hit['incr. bytes']:,} bytes, "
            f"{hit['incr. / full']:.1%} of full NNC's {hit['full bytes']:,} bytes, at a metric "
            f"change of {hit['incr. Δ']:+.2f} points; this {verdict} the target of at most 30% "
            f"at a loss of at most {tolerance} points. For scale: sending nothing (keeping the "
            f"base) changes the metric by {hit['base Δ']:+.2f} points, and at QP "
            f"{hit['incr. QP']} the update moves {hit['weights moved']:.2%} of the weight values "
            "by half a step or more."
        )
    return "\n".join(lines)


Markdown(reading())

# %% [markdown]
# All rows, for every pair, method and QP, are in `update_coding/results.csv` of the output folder.

# %% tags=["remove-cell"]
# The time spent here (seconds; `code` is the wall time of coding every pair in `workers`
# processes): for the benchmark, not the book.
timings = {k: round(v, 2) for k, v in sorted(SECONDS.items())}
pd.Series(timings, name="seconds")
