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
# # Other kinds of network: an autoencoder and an LSTM
#
# The networks of the other recipes are convolutional image classifiers (and a detector built on
# one). A codec for updates should also meet other layers and other tasks: this recipe makes the
# cases of the call (**retraining** with more data, for more epochs, in a chain; **transfer
# learning** with classes added) for two networks of another kind.
#
# - A **convolutional autoencoder** (ci: scikit-learn's digits; full: CIFAR-10 {cite}`krizhevsky2009cifar` from
#   `$PAIRZOO_DATA`): convolutions down to a small code, transposed convolutions back up. Its output
#   is an image, so its metric is the reconstruction's PSNR (and MSE) on the test split, not an
#   accuracy; its update changes no structure.
# - An **LSTM classifier** that reads each image row by row (one time step per row, the row's
#   pixels as features): recurrent weights, which ONNX runs with its own `LSTM` operator. The model
#   takes the image tensor and turns it into a sequence inside, so it is exported, checked and
#   scored like the image classifiers.
#
# | network | updated model | relation | what a codec sees |
# |---|---|---|---|
# | autoencoder | `ae-more-data`: the base retrained on the whole training set | more data | every tensor moves, shapes kept |
# | autoencoder | `ae-epochs-k`: the base trained further on its own data for *k* epochs | more epochs | growing updates of one base (a star) |
# | autoencoder | `ae-chain-1`, `ae-chain-2`: retrained on growing shares of the data | more data | each update the base of the next |
# | LSTM | `lstm-more-data`: the base retrained on all training images of its classes | more data | recurrent and head tensors move |
# | LSTM | `lstm-add-class`: the head grown by the classes the base never saw, fine-tuned | classes added | the head's tensors are reshaped |
#
# **ONNX and the LSTM.** PyTorch stores an LSTM layer as four tensors (`weight_ih_l0`,
# `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`) with the gates stacked in the order input, forget,
# cell, output; ONNX's `LSTM` operator wants the order input, output, forget, cell, a leading
# direction axis, and one bias holding both. PyTorch's dynamo exporter without its optimiser (the
# exporter of every PyTorch recipe, {ref}`output-format`) writes the four tensors as initializers under their
# framework names and reorders them with `Slice` and `Concat` nodes in front of the `LSTM` node.
# Folding those nodes away (the legacy exporter's constant folding, or the dynamo exporter's
# optimiser) would leave reordered copies under names the exporter makes up. The graph keeps
# those few small nodes instead: the framework's tensors stay individually replaceable, so the coded
# samples of these pairs are scored without PyTorch like every other PyTorch pair. The tables below
# trace the `LSTM` node's inputs back to them.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": CIFAR-10 from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
ae_architecture = ""  # empty: the profile's (digits-ae for ci, cifar-ae for full)
lstm_architecture = ""  # empty: the profile's (digits-lstm for ci, cifar-lstm for full)
base_fraction = 0.25  # share of the training images the bases see
ae_epochs = 100
lstm_epochs = 40
retrain_epochs = 10
ladder = [1, 2, 4, 8]
chain_fractions = [0.6, 1.0]
lstm_classes = [0, 1, 2, 3, 4, 5, 6, 7, 8]  # the LSTM base's classes; the update adds the rest
seed = 0

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import onnx
import pandas as pd
import torch
from IPython.display import display

from pairzoo import architectures
from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import draw, select_classes, unit_pixels
from pairzoo.export.exporters import OnnxExporter, upstream_initializers
from pairzoo.models.build import build_model, grow_head
from pairzoo.record import manifest, view
from pairzoo.record.metrics import mse, psnr
from pairzoo.record.writer import PairWriter, Training
from pairzoo.steps.transfer import forgetting
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, predict, train
from pairzoo.views.catalog import pair_table
from pairzoo.views.report import recipe_entries, structure_table

if profile == "ci":
    torch.set_num_threads(1)  # tiny networks: fastest on one thread, and the same everywhere
ae_architecture = ae_architecture or architectures.default("autoencoder", profile)
lstm_architecture = lstm_architecture or architectures.default("sequence", profile)
data = load_dataset(profile)
writer = PairWriter("autoencoder_lstm", profile, data, artifacts)
ae_exporter = OnnxExporter(data.x_test[:64], output_name="reconstruction")
print(f"{data.info.name}: {data.sizes}; writing to {writer.folder}")

# %% [markdown]
# ## The autoencoder
#
# `quality` measures reconstructions on the test split in the dataset's pixel range scaled to
# [0, 1] (the loader's normalisation undone; for the digits, intensities 0…16), where the peak
# value is 1, so PSNR = −10·log10(MSE) over all test pixels (see the manifest's metric
# definitions). The writer gets the autoencoder's own exporter, whose output is named
# `reconstruction`; its parity check compares the reconstructed images element by element.


# %%
originals = unit_pixels(data.info.id, data.x_test)


def quality(model):
    reconstructions = unit_pixels(data.info.id, predict(model, data.x_test))
    return {
        "psnr": psnr(reconstructions, originals),
        "reconstruction-mse": mse(reconstructions, originals),
    }


def images(fraction):
    return draw(data, fraction, seed).x_train


def publish_ae(name, model, config, fraction, start=None, description=""):
    training = Training.of(draw(data, fraction, seed), config, start=start)
    writer.add_model(name, model, architecture=ae_architecture, training=training,
                     metrics=quality(model), description=description, classes=[],
                     exporter=ae_exporter)  # fmt: skip


# %% [markdown]
# The base learns to reconstruct a class-stratified share of the training images (Adam, cosine
# schedule, mean squared error against the input).

# %%
adam = {"optimizer": "adam", "weight_decay": 0.0, "batch_size": 32}
ae_config = TrainConfig(epochs=ae_epochs, lr=3e-3, loss="mse", seed=seed, **adam)
ae_base = build_model(ae_architecture, 0, data.input_shape[0], seed)
train(ae_base, images(base_fraction), images(base_fraction), ae_config)
publish_ae("ae-base", ae_base, ae_config, base_fraction, description="trained on part of the data")

# %% [markdown]
# The epochs ladder continues on the base's own images at a constant step, snapshotted after each
# number of epochs in `ladder`.

# %%
retrain = TrainConfig(epochs=retrain_epochs, lr=1e-3, loss="mse", seed=seed + 1, **adam)
changes = {"epochs": max(ladder), "schedule": "constant", "seed": seed + 2}
further = TrainConfig(**{**retrain.record(), **changes})


def snapshot(epoch, model):
    if epoch in ladder:
        config = TrainConfig(**{**further.record(), "epochs": epoch})
        name = f"ae-epochs-{epoch}"
        publish_ae(name, model, config, base_fraction, "ae-base", f"base + {epoch} epochs")
        writer.add_pair("ae-base", name, "more-epochs", series="ae-epochs-ladder")


longest = copy.deepcopy(ae_base)
train(longest, images(base_fraction), images(base_fraction), further, snapshot)
shown = {"ae-base": ae_base, f"ae-epochs-{max(ladder)}": longest}

# %% [markdown]
# `ae-more-data` continues from the base on all training images; the chain gets there in steps
# (`chain_fractions`; subsets of one seed are nested), each update the base of the next.

# %%
more_data = shown["ae-more-data"] = copy.deepcopy(ae_base)
train(more_data, images(1.0), images(1.0), retrain)
publish_ae("ae-more-data", more_data, retrain, 1.0, "ae-base", "base retrained on all data")
writer.add_pair("ae-base", "ae-more-data", "more-data")

model, previous = ae_base, "ae-base"
for step, fraction in enumerate(chain_fractions, start=1):
    model = copy.deepcopy(model)
    train(model, images(fraction), images(fraction), retrain)
    name = f"ae-chain-{step}"
    publish_ae(name, model, retrain, fraction, previous, f"{previous} retrained on {fraction:.0%}")
    writer.add_pair(previous, name, "more-data", series="ae-chain")
    previous = name

# %% [markdown]
# ## The LSTM
#
# The base knows the classes of `lstm_classes` and is trained on the base's share of their
# training images. `lstm-more-data` is the base retrained on all of them. `lstm-add-class` grows the
# head by one output per class the base never saw (`grow_head`: the old rows copied in front, the
# new rows freshly initialised) and fine-tunes the whole network on the same share of every class's
# training images: the base's images plus those of the new classes. Each model is measured on the
# test images of its own classes; the added-class pair also on the classes the base knew
# (`top1-known-classes`: base minus updated is the forgetting), and its manifest entry names the
# block of each grown tensor that continues the base's (`correspondence`).


# %%
def publish_lstm(name, model, task, config, fraction, start=None, description=""):
    training = Training.of(draw(task, fraction, seed), config, start=start)
    top1 = accuracy(model, task.x_test, task.y_test)
    writer.add_model(name, model, architecture=lstm_architecture, training=training,
                     metrics={"top1": top1}, description=description, classes=task.classes,
                     test_classes=task.classes)  # fmt: skip


def fit(model, task, fraction, config):
    drawn = draw(task, fraction, seed)
    train(model, drawn.x_train, drawn.y_train, config)


base_task = select_classes(data, lstm_classes)
lstm_config = TrainConfig(epochs=lstm_epochs, lr=5e-3, seed=seed, **adam)
lstm_base = build_model(lstm_architecture, len(lstm_classes), data.input_shape[0], seed)
fit(lstm_base, base_task, base_fraction, lstm_config)
publish_lstm(
    "lstm-base", lstm_base, base_task, lstm_config, base_fraction, None, "part of the data"
)

lstm_retrain = TrainConfig(epochs=retrain_epochs, lr=1e-3, seed=seed + 1, **adam)
model = copy.deepcopy(lstm_base)
fit(model, base_task, 1.0, lstm_retrain)
publish_lstm("lstm-more-data", model, base_task, lstm_retrain, 1.0, "lstm-base", "all the data")
writer.add_pair("lstm-base", "lstm-more-data", "more-data")

all_classes = lstm_classes + [c for c in range(len(data.classes)) if c not in lstm_classes]
full_task = select_classes(data, all_classes)
added = len(all_classes) - len(lstm_classes)
model, correspondence = grow_head(lstm_base, lstm_architecture, added, seed + 1)
fit(model, full_task, base_fraction, lstm_retrain)
description = f"head grown {len(lstm_classes)} → {len(all_classes)} outputs, fine-tuned"
publish_lstm(
    "lstm-add-class", model, full_task, lstm_retrain, base_fraction, "lstm-base", description
)
writer.add_pair(
    "lstm-base",
    "lstm-add-class",
    "transfer-add-classes",
    description=description,
    correspondence=correspondence,
    metrics=forgetting(accuracy, lstm_base, model, base_task, full_task),
)
timings = writer.finish()

# %% [markdown]
# ## The models
#
# Each model's metric on its test split, and the largest difference between onnxruntime and
# PyTorch on the parity batch (reconstructed pixel values for the autoencoder, logits for the
# LSTM; in the loader's units).

# %%
entries = manifest.load(writer.folder)
zoo = view.of(writer.folder, entries)
models = pd.DataFrame.from_dict(
    {
        model.id: {
            "architecture": model.record["architecture"],
            "parameters": model.record["parameters"],
            **{metric: m["value"] for metric, m in model.metrics.items()},
            "ONNX max |diff|": f"{model.record['onnx']['max_abs_diff']:.1e}",
        }
        for model in zoo.models(recipe="autoencoder_lstm")
    },
    orient="index",
)
for architecture in (ae_architecture, lstm_architecture):
    display(models[models["architecture"] == architecture].dropna(axis=1, how="all"))

# %% [markdown]
# ## The pairs
#
# The metric before and after each update, and how much of the network moved. For the grown head,
# the change statistics cover the tensors of equal shape; the head's block that continues the base
# is measured separately in the manifest.

# %%
pairs = recipe_entries(entries, "autoencoder_lstm")
pair_table(pairs).round(4)

# %% [markdown]
# What changed in the structure: the LSTM's head, whose old rows are the first rows of the new one.

# %%
structure_table(pairs)

# %% [markdown]
# ## The LSTM in ONNX
#
# The operators of the LSTM base's graph, and for each weight input of its `LSTM` node the
# initializers it is computed from: PyTorch's own tensors, under their own names.

# %%
graph = onnx.load(zoo.model("autoencoder_lstm/lstm-base").path("onnx"))
lstm_node = next(node for node in graph.graph.node if node.op_type == "LSTM")
display(
    pd.Series([n.op_type for n in graph.graph.node]).value_counts().rename("nodes").to_frame().T
)
pd.DataFrame(
    {
        "LSTM input": ["W", "R", "B"],
        "from initializers": [
            ", ".join(upstream_initializers(graph, name)) for name in lstm_node.input[1:4]
        ],
    }
).set_index("LSTM input")

# %% [markdown]
# ## Reconstructions
#
# The first test images and their reconstructions by the base, by the longest run of the ladder
# and by the base retrained on all data, with each model's PSNR on the whole test split.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-ae-reconstructions", "caption": "The first test images (top row) and their reconstructions by `ae-base`, by the longest run of the epochs ladder and by `ae-more-data`, each row labelled with the model's PSNR on the whole test split; pixel range as [0, 1], clipped for display."}}
count = 10
psnr_of = {m.name: m.metrics.get("psnr") for m in zoo.models(recipe="autoencoder_lstm")}
fig, axes = plt.subplots(1 + len(shown), count, figsize=(count, 1.1 * (1 + len(shown))))
rows = {"original": originals[:count]}
rows.update(
    {k: unit_pixels(data.info.id, predict(m, data.x_test[:count])) for k, m in shown.items()}
)
for row, (label, pictures) in zip(axes, rows.items(), strict=True):
    for ax, picture in zip(row, pictures, strict=True):
        ax.imshow(np.clip(picture.transpose(1, 2, 0), 0, 1).squeeze(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    value = psnr_of.get(label)
    row[0].set_ylabel(label if value is None else f"{label}\n{value['value']:.1f} dB", fontsize=8)
fig.tight_layout()

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
pd.Series(timings, name="seconds").round(2)
