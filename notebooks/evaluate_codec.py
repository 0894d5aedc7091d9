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
# # Evaluate your codec
#
# The pairs of this book are a benchmark for update codecs. MPEG's evaluation framework for
# neural-network coding {cite}`iso15938-17` prescribes one loop, and `pairzoo.evaluate` runs it on every pair: measure
# the uncoded updated model (metric and size), encode the update, decode it with nothing but the
# payload and the base, and measure the reconstruction. A codec is any object with two methods:
#
# ```python
# def encode(self, base, updated, **params) -> bytes: ...
# def decode(self, payload, base, **params) -> dict[str, numpy.ndarray]: ...
# ```
#
# `base` and `updated` map tensor names (the framework's) to float32 arrays; the base is given
# under the updated model's names where a pair renames tensors (a detector that reuses a
# classifier's backbone). The byte count is the payload's length. The harness gives `decode` a
# fresh copy of the codec, so what `encode` kept cannot reach it, and checks every reconstruction:
# the same names, shapes and dtypes as the updated model, finite values, and the same tensors from
# a second decode. A row that fails keeps its error and the run goes on.
#
# Each reconstruction is scored without the training framework (onnxruntime on the model's ONNX,
# with the decoded tensors in place of its own) on the model's test split, with the metric the
# manifest defines. Small test splits cannot rank codecs by top-1 alone (one digits test image is
# 0.28 points), so every classifier also gets two continuous measures: the test cross-entropy
# (`nll`) and the share of test images whose top-1 class agrees with the uncoded model
# (`agreement`); autoencoders get the MSE of their outputs against the uncoded model's.
#
# Loading a pair takes three lines:
#
# ```python
# import pairzoo
# pair = pairzoo.open("artifacts/ci").pair("retraining/base..epochs-1")  # or the .zip archive
# base, updated = pair.base_tensors(), pair.updated_tensors()  # and pair.score(reconstruction)
# ```
#
# The same codec also runs *inside* a federation, coding every client's update before it is sent:
# {doc}`federated_rounds` (its parameter `uplinks` takes the codecs by the names used here).

# %% tags=["parameters"]
profile = "ci"  # which test set: artifacts/<profile>
artifacts = ""  # test set folder or archive; empty: artifacts/<profile> of the project
keep = [0.02, 0.1, 0.5]  # the example codec's share of changes sent, one point each
step = 1e-3  # its quantisation step
workers = 2  # processes evaluating pairs side by side

# %%
import inspect
import subprocess
import sys

import matplotlib.pyplot as plt
from IPython.display import Code, Markdown

import pairzoo
from pairzoo.bench import example_codec, summary
from pairzoo.profiles import artifacts_dir

folder = artifacts_dir(profile, artifacts)
results_dir = folder.parent / f"evaluations-{profile}"
test_set = pairzoo.open(folder)
pairs = test_set.pairs()
print(f"{folder}: {len(pairs)} pairs; results go to {results_dir}")

# %% [markdown]
# ## A codec in 30 lines
#
# The example sends, for each tensor, only the `keep` share of its largest changes (positions as
# gaps, values rounded to multiples of `step`) and compresses all of it with zstd; tensors the base
# lacks (a new head) are sent the same way, as changes from zero. It lives in the package as
# `pairzoo.bench.example_codec`, so the command line can name it; copy it and change what you like.

# %% tags=["remove-input"]
Code(inspect.getsource(example_codec), language="python")

# %% [markdown]
# ## Every pair, three operating points
#
# `pairzoo.evaluate` runs the codec on every pair at every combination of the parameters given,
# in `workers` processes, and writes `results.json` (its JSON Schema ships in the package as
# `pairzoo/bench/results.schema.json`) and `results.csv`; a rerun into the same folder would skip
# the rows it has (here `resume=False` starts afresh).

# %%
codec = example_codec.TopKDelta()
parameters = {"keep": keep, "step": [step]}
evaluation = pairzoo.evaluate(
    codec, test_set, parameters, output=results_dir / codec.name, workers=workers, resume=False
)
relations = summary.write(evaluation, test_set, results_dir / codec.name)
print(evaluation.line())

# %% [markdown]
# ## Against NNC
#
# The Bjøntegaard delta rate (BD-rate, computed with the `bjontegaard` package, PCHIP
# interpolation) is the average change of bits per parameter at equal quality, against the NNC
# incremental ladder that the reference-coding page stored for each pair (the `nnc-incremental`
# rows of the set's `coding_ladder`; negative means fewer bits than NNC). It is measured at equal
# metric and at equal test cross-entropy (NLL). It is undefined where a curve has fewer than two
# points on its rate–quality front or the two curves' ranges do not overlap: top-1 on a small
# split often saturates, which leaves no range to compare, while the NLL keeps falling with every
# bit and so still ranks the codecs.

# %%
relations.set_index("relation").round(3)

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-evaluate-rate", "caption": "Metric change against bits per parameter (log scale) for the example codec (circles, one line per pair) and the NNC incremental anchor (squares, dashed), one panel per relation."}}
shown = list(relations["relation"])
columns = 3
rows = -(-len(shown) // columns)
fig, axes = plt.subplots(rows, columns, figsize=(12, 3.2 * rows), squeeze=False)
for ax, relation in zip(axes.flat, shown, strict=False):
    summary.figure(evaluation, test_set, relation, ax=ax)
    ax.set_ylim(bottom=max(-20.0, ax.get_ylim()[0]))
for ax in axes.flat[len(shown) :]:
    ax.axis("off")
fig.tight_layout()

# %% [markdown]
# ## What the numbers say

# %%
scored = [r for r in evaluation.rows if not r["error"]]
lines = [
    f"- {len(scored)} of {len(evaluation.rows)} rows scored on "
    f"{len({r['pair'] for r in evaluation.rows})} pairs "
    f"({len(evaluation.skipped)} pairs skipped, {len(evaluation.errors)} errors).",
]
rates = summary.pair_bd_rates(evaluation, test_set)
for column, quality in (("BD-rate %", "metric"), ("BD-rate NLL %", "test cross-entropy")):
    defined = rates[column].dropna()
    if len(defined):
        lines.append(
            f"- BD-rate against NNC incremental at equal {quality} is defined on "
            f"{len(defined)} of {len(rates)} pairs: from {defined.min():+.0f}% to "
            f"{defined.max():+.0f}% (median {defined.median():+.0f}%)."
        )
Markdown("\n".join(lines))

# %% [markdown]
# ## The same from the command line
#
# `pairzoo evaluate CODEC` takes `module:object`, a file `path/to/codec.py:Object`, or the name of
# a built-in codec (`float32`, `gzip-delta`, `zstd-delta`, `zipnn-delta`, `gzip-delta-q`,
# `zstd-delta-q`, `nnc-full`, `nnc-incremental`, `nnc-incremental-tca`); `-p NAME=V1,V2` gives a
# parameter's values, `--pairs` a glob on pair ids, `--relation` one relation, `-o` the results
# folder. It prints a line per pair and a closing summary, writes `summary.md`, `bdrate.csv` and a
# figure per relation beside the results, and exits 1 if any row failed (2 for bad input, before
# any work). Here the example codec once more, on the retraining pairs, and the built-in zstd of
# the delta rounded to NNC's step, both as a user would type them:

# %%
for command in (
    ["pairzoo.bench.example_codec:TopKDelta", "-p", "keep=0.02,0.1,0.5"],
    ["zstd-delta-q", "-p", "qp=-24,-32,-40"],
):
    name = command[0].rsplit(":", 1)[-1]
    arguments = [command[0], str(folder), *command[1:], "--pairs", "retraining/*"]
    arguments += ["-o", str(results_dir / f"cli-{name}"), "--restart"]
    print("$ pairzoo evaluate", " ".join(arguments))
    done = subprocess.run(
        [sys.executable, "-m", "pairzoo.cli", "evaluate", *arguments],
        capture_output=True,
        text=True,
    )
    print(done.stdout.splitlines()[-1] if done.stdout else done.stderr, end="\n\n")
