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
# # Retraining: more data, more epochs, other hyper-parameters
#
# The first case of the call {cite}`mpeg-call-test-data`: **the updated network is the base network retrained** — with more
# or other data, for more epochs, or with other hyper-parameters. This is the typical source of
# refinement updates (a deployed model improved once more data has been collected), and the
# smallest kind of update a codec sees: every tensor keeps its name and shape, only values move.
#
# The recipe trains one **base** on 10% of the training set, then derives four families of
# updated models from it, each recorded as a pair with its base:
#
# | family | updated model | what a codec sees |
# |---|---|---|
# | more data | the base retrained on the whole training set | a moderate update |
# | epochs ladder | the base trained further on its own data for *k* = 1, 2, 4, 8 epochs | growing updates, one shared base (a star) |
# | chain | base → `chain-1` (60% of the data) → `chain-2` (all of it) | each update is the base of the next |
# | other hyper-parameters | the base retrained on all data with Adam, or with a larger SGD step | same data, different optimisation |
#
# In the `full` profile the same scenario runs on ImageNet {cite}`deng2009imagenet` with ResNet-50, one of the networks of
# MPEG's NNR evaluation framework (the `dataset` and `architecture` parameters choose others), and
# the base starts from torchvision's published ImageNet weights, so every update refines a network
# that is already good; {doc}`../book/full_set` gives the commands, times and disk space.
#
# Every model is exported and checked as in every recipe ({ref}`output-format`) and entered in
# the manifest with its training record and test accuracy, every pair with its per-tensor change
# statistics.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": `dataset` from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
dataset = "imagenet"  # full: imagenet, cifar10 or cifar100
architecture = ""  # empty: the profile's default (digits-cnn for ci, resnet50 for full)
pretrained = True  # full: the base starts from torchvision's ImageNet weights in $TORCH_HOME
base_fraction = 0.1
base_epochs = 30
retrain_epochs = 12
ladder = [1, 2, 4, 8]
chain_fractions = [0.6, 1.0]
seed = 0

# %%
import copy

import matplotlib.pyplot as plt
import pandas as pd

from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import draw
from pairzoo.models.build import DEFAULT_ARCHITECTURE, build_model
from pairzoo.models.pretrained import torch_checkpoint
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train
from pairzoo.views.catalog import pair_table

architecture = architecture or DEFAULT_ARCHITECTURE[profile]
data = load_dataset(profile, dataset)
weights = torch_checkpoint(architecture) if profile == "full" and pretrained else None
writer = PairWriter(
    "retraining", profile, data, artifacts, architecture=architecture, pretrained=weights
)
print(f"{data.info.name}: {data.sizes}; writing to {writer.folder}")

# %% [markdown]
# Two helpers keep the scenario readable: `subset` draws a class-stratified fraction of the
# training set (subsets of one seed are nested, so 60% contains the base's 10%) and remembers how,
# and `publish` measures a model on the test split and hands it to the writer with that record.


# %%
def subset(fraction):
    drawn = draw(data, fraction, seed)
    return drawn.x_train, drawn.y_train


def publish(name, model, config, fraction, start=None, description=""):
    training = Training.of(draw(data, fraction, seed), config, start=start)
    top1 = accuracy(model, data.x_test, data.y_test)
    writer.add_model(
        name, model, training=training, metrics={"top1": top1}, description=description
    )


# %% [markdown]
# ## The base
#
# A network trained with SGD and a cosine schedule on 10% of the training set: freshly
# initialised (ci), or starting from torchvision's published ImageNet weights (full, `pretrained`).

# %%
base_config = TrainConfig(epochs=base_epochs, lr=0.05, seed=seed)
base = build_model(architecture, len(data.classes), data.input_shape[0], seed, weights)
train(base, *subset(base_fraction), base_config)
publish("base", base, base_config, base_fraction, description="trained on part of the data")

# %% [markdown]
# ## More data, and the chain
#
# Retraining starts from the base's weights with a smaller learning rate. `more-data` sees the whole
# training set at once; the chain gets there in two steps, each update becoming the next base.

# %%
retrain = TrainConfig(epochs=retrain_epochs, lr=0.01, seed=seed + 1)
more_data = copy.deepcopy(base)
train(more_data, *subset(1.0), retrain)
publish("more-data", more_data, retrain, 1.0, "base", "base retrained on all training data")
writer.add_pair("base", "more-data", "more-data")

model, previous = base, "base"
for step, fraction in enumerate(chain_fractions, start=1):
    model = copy.deepcopy(model)
    train(model, *subset(fraction), retrain)
    name = f"chain-{step}"
    publish(name, model, retrain, fraction, previous, f"{previous} retrained on {fraction:.0%}")
    writer.add_pair(previous, name, "more-data", series="chain")
    previous = name

# %% [markdown]
# ## The epochs ladder
#
# One continued run on the base's own data at a constant learning rate, snapshotted after each
# number of epochs in the ladder: the pairs share the base and differ only in how long the update
# ran.

# %%
further = TrainConfig(epochs=max(ladder), lr=0.01, schedule="constant", seed=seed + 2)


def snapshot(epoch, model):
    if epoch in ladder:
        config = TrainConfig(**{**further.record(), "epochs": epoch})
        publish(f"epochs-{epoch}", model, config, base_fraction, "base", f"base + {epoch} epochs")
        writer.add_pair("base", f"epochs-{epoch}", "more-epochs", series="epochs-ladder")


train(copy.deepcopy(base), *subset(base_fraction), further, on_epoch=snapshot)

# %% [markdown]
# ## Other hyper-parameters
#
# The same data as `more-data`, but Adam instead of SGD, or SGD with a five times larger step.

# %%
for name, config in {
    "adam": TrainConfig(epochs=retrain_epochs, optimizer="adam", lr=1e-3, seed=seed + 1),
    "sgd-large-step": TrainConfig(epochs=retrain_epochs, lr=0.05, seed=seed + 1),
}.items():
    model = copy.deepcopy(base)
    train(model, *subset(1.0), config)
    publish(name, model, config, 1.0, "base", f"base retrained on all data ({name})")
    writer.add_pair("base", name, "other-hyperparameters", series="hyper-parameters")

timings = writer.finish()

# %% [markdown]
# ## The pairs
#
# Accuracy on the test split before and after each update, and how much of the network moved:
# the share of values that changed at all, the L2 norm of the delta relative to the base's, and the
# largest single change.

# %%
from pairzoo.record import manifest

entries = manifest.load(writer.folder)
pair_table(entries, "retraining").round(4)

# %% [markdown]
# ## Per-layer change along the epochs ladder
#
# The relative L2 change of every weight tensor between the base and each rung of the ladder.
# Longer training moves every layer further; how evenly it does so is what a codec's per-layer
# rate allocation has to follow.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-retraining-ladder", "caption": "Relative L2 change \u2016\u0394\u2016/\u2016base\u2016 of every weight tensor of the network, from the base to each rung of the epochs ladder (base + *k* epochs on the base's own data), on a log scale."}}
fig, ax = plt.subplots(figsize=(8, 3.5))
for epoch in ladder:
    tensors = entries["pairs"][f"retraining/base..epochs-{epoch}"]["stats"]["tensors"]
    weights = {k: v["rel_l2"] for k, v in tensors.items() if k.endswith("weight")}
    ax.plot(list(weights), list(weights.values()), marker="o", label=f"+{epoch} epochs")
ax.set_yscale("log")
ax.set_ylabel("‖Δ‖ / ‖base‖")
ax.tick_params(axis="x", rotation=45)
ax.legend()
fig.tight_layout()

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): `train` is the optimisation itself, the rest is
# the plumbing of writing test data; for the benchmark, not the book.
pd.Series(timings, name="seconds").round(2)
