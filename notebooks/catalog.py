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
# # The catalog
#
# MPEG's call {cite}`mpeg-call-test-data` asks a proposer of test data for a description of the test materials — how each
# updated model relates to its base, the datasets used for (re)training and testing, the metrics —
# the pairs in a common format, and a copyright notice. This page is that description for
# everything the recipes before it wrote. It reads the manifest alone: nothing here is typed in.
#
# The same manifest becomes one archive with `pairzoo package` (`make book` writes
# `artifacts/pairzoo-ci.zip`): every ONNX and framework file, `manifest.json`, `SHA256SUMS`, the
# `DESCRIPTION.md` shown at the end of this page, a card per model and a licence notice.
# `pairzoo validate` accepts the unpacked archive.
#
# To put a codec on the pairs, three lines load one (from the folder or the archive), and
# {doc}`evaluate_codec` runs a codec on all of them:
#
# ```python
# import pairzoo
# pair = pairzoo.open("artifacts/ci").pair("retraining/base..epochs-1")  # or the .zip archive
# base, updated = pair.base_tensors(), pair.updated_tensors()  # and pair.score(reconstruction)
# ```

# %% tags=["parameters"]
profile = "ci"
artifacts = ""  # output folder; empty: artifacts/<profile> of the project

# %%
import re

from IPython.display import Markdown

from pairzoo.profiles import artifacts_dir
from pairzoo.record import manifest
from pairzoo.views.catalog import description_md, model_table, pair_table
from pairzoo.views.lineage import lineage_figure

folder = artifacts_dir(profile, artifacts)
entries = (
    manifest.load(folder) if (folder / manifest.MANIFEST).exists() else manifest.empty(profile)
)
print(f"{folder}: {len(entries['models'])} models, {len(entries['pairs'])} pairs")

# %% [markdown]
# ## Lineage
#
# Every model is a node, every pair an edge from base to updated model, coloured by the case of the
# call it stands for. A node with several outgoing edges is a shared base; a path of edges is a
# chain, where an updated model is the next pair's base.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-catalog-lineage", "caption": "The lineage of every model the recipes wrote, a panel per recipe with its roots on top: one node per model, one edge per pair from base to updated model, coloured by the case of the call the pair stands for."}}
fig = lineage_figure(entries)

# %% [markdown]
# ## Models
#
# Framework, architecture, parameter count, the first metric recorded (on the test split named in
# the manifest) and the size of the model's files.

# %%
model_table(entries).round(2)

# %% [markdown]
# ## Pairs
#
# The relation, whether the structure changed, the metric of base and updated model, and the change
# statistics over the tensors both share: share of values changed, ‖Δ‖/‖base‖, largest |Δ|.

# %%
pair_table(entries).round(4)

# %% [markdown]
# ## The description
#
# The description shipped in the archive, generated from the manifest (its headings shown in bold
# here, so that they stay out of the page's table of contents):

# %%
Markdown(re.sub(r"^#+ (.*)$", r"**\1**", description_md(entries), flags=re.MULTILINE))
