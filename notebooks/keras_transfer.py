# ---
# jupyter:
#   jupytext:
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
# # Transfer learning in Keras: classes exchanged, classes added
#
# The same two cases of the call as {doc}`transfer_classes`, made with **TensorFlow / Keras 3**:
# an updated network made by transfer learning from the base, (a) with one or two output slots
# given to unseen classes (no structure change), (b) with the head grown to all classes (structure
# change), fine-tuned either head-only or as a whole. A codec that reads Keras models gets the same
# kinds of pairs as from PyTorch, with Keras's own tensor names and layouts: a `Dense` kernel is
# inputs × outputs, so the grown head adds *columns*, not rows.
#
# The ci profile uses a Keras twin of the PyTorch digits CNN (three conv–BatchNorm–ReLU blocks and
# a linear head, NCHW input permuted inside the network) on scikit-learn's digits, base on digits
# 0–7. The full profile uses Keras's MobileNetV2 with its ImageNet weights read from Keras's cache
# (a fresh head; the dataset's NCHW images permuted and resized to 224×224 inside the network), on
# CIFAR-10 from `$PAIRZOO_DATA` (CIFAR-100 by `dataset`), base on classes 0–7.
#
# Every model is written three ways: the Keras model itself (`.keras`), its weights as safetensors
# under their Keras paths (`block1_conv/kernel`, `head/bias`, …; the pair statistics are computed
# from these), and ONNX converted by tf2onnx from a `tf.function` and checked in onnxruntime. The
# ONNX initializers keep tf2onnx's names: TensorFlow's graph optimiser folds BatchNorm into the
# convolutions while converting, so the ONNX graph does not hold Keras's tensors one by one
# (the manifest says `initializer_names: exporter`). Compare tensors through the safetensors files.
#
# | updated model | task | how |
# |---|---|---|
# | `exchange-1` | slot 7 now means class 9 | same head size, the exchanged column freshly initialised, whole network fine-tuned |
# | `exchange-2` | slots 6 and 7 now mean classes 8 and 9 | as above, two columns |
# | `add-head` | all classes (8 → 10 outputs) | columns of persisting classes copied, new ones fresh; **head only** fine-tuned |
# | `add-whole` | all classes (8 → 10 outputs) | same start, **whole network** fine-tuned |

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": MobileNetV2 on `dataset` from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
dataset = "cifar10"  # full: cifar10 or cifar100
base_classes = [0, 1, 2, 3, 4, 5, 6, 7]
exchanges = [[9], [8, 9]]  # unseen classes that take over the base's last slots
base_epochs = 15
finetune_epochs = 8
seed = 0

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pairzoo import manifest
from pairzoo.catalog import pair_table
from pairzoo.data import load_dataset, select_classes
from pairzoo.keras_export import keras_state, save_keras
from pairzoo.keras_models import (
    HEAD,
    KERAS_IMAGE_SIZE,
    build_keras_model,
    keras_accuracy,
    load_keras,
    remap_head,
    train_keras,
)
from pairzoo.pretrained import keras_mobilenet_v2
from pairzoo.publish import PairMeasurement, PairWriter, Training
from pairzoo.report import layer_change, recipe_entries, structure_table
from pairzoo.train import TrainConfig

data = load_dataset(profile, dataset)
weights = keras_mobilenet_v2(KERAS_IMAGE_SIZE) if profile == "full" else None
architecture = "keras-mobilenet_v2" if weights else "keras-digits-cnn"
keras = load_keras(seed, threads=1 if profile == "ci" else None)  # tiny convolutions: one thread
writer = PairWriter("keras_transfer", profile, data, artifacts)
print(f"{data.info.name}: {data.sizes}; keras {keras.__version__}; writing to {writer.folder}")

# %% [markdown]
# `publish` writes a model's three files, measures it on its own task's test images and enters it
# in the manifest; `known_classes` measures base and update on the test images of the classes
# both still predict in the same slot.


# %%
def publish(name, model, task, config, start=None, description=""):
    files = save_keras(model, writer.path_stem(name), data.x_test[:64])
    top1 = keras_accuracy(model, task.x_test, task.y_test)
    first = weights if start is None else None
    writer.record_model(
        name,
        files,
        framework="keras",
        framework_version=keras.__version__,
        architecture=architecture,
        parameters=model.count_params(),
        training=Training(config, 1.0, len(task.y_train), seed, start, task.classes, first),
        metrics={"top1": top1},
        description=description,
        classes=task.classes,
        test_classes=task.classes,
    )
    print(
        f"{name:>11}: top-1 {top1:6.2f}% on classes {', '.join(task.classes)}; ONNX parity {files.onnx.max_abs_diff:.1e}"
    )


def known_classes(model, task):
    kept = [s for s, c in enumerate(base_task.classes) if task.classes[s : s + 1] == (c,)]
    mask = np.isin(base_task.y_test, kept)
    x, y = base_task.x_test[mask], base_task.y_test[mask]
    names = [base_task.classes[s] for s in kept]
    measured = PairMeasurement(keras_accuracy(base, x, y), keras_accuracy(model, x, y), names)
    return {"top1-known-classes": measured}


# %% [markdown]
# ## The base
#
# A network trained with SGD and a cosine schedule on the base's classes: freshly initialised (ci),
# or MobileNetV2 from its ImageNet weights with a fresh head (full).

# %%
base_task = select_classes(data, base_classes)
base_config = TrainConfig(epochs=base_epochs, lr=0.05, seed=seed)
base = build_keras_model(len(base_classes), data.input_shape, seed, weights)
train_keras(base, base_task.x_train, base_task.y_train, base_config)
publish("base", base, base_task, base_config, description="trained on part of the classes")

# %% [markdown]
# ## Classes exchanged: same structure
#
# The last slots are given to unseen classes; their head columns are freshly initialised, every
# other tensor starts from the base, and the whole network is fine-tuned on the new task.

# %%
finetune = TrainConfig(epochs=finetune_epochs, lr=0.01, seed=seed + 1)
for step, unseen in enumerate(exchanges, start=1):
    keep = len(base_classes) - len(unseen)
    task = select_classes(data, base_classes[:keep] + list(unseen))
    model = remap_head(base, [*range(keep), *[None] * len(unseen)], seed + 1)
    train_keras(model, task.x_train, task.y_train, finetune)
    name = f"exchange-{step}"
    publish(name, model, task, finetune, "base", f"slots {keep}… re-assigned to {unseen}")
    writer.add_pair(
        "base",
        name,
        "transfer-exchange-classes",
        series="exchange",
        description=f"{len(unseen)} slot(s) exchanged for unseen classes",
        metrics=known_classes(model, task),
    )

# %% [markdown]
# ## Classes added: the head grows
#
# The head gets one output per class of the dataset; the columns of the classes the base knew are
# copied (in front, in the same order), the new ones are fresh. The same start is fine-tuned twice:
# the head only (the other layers frozen, BatchNorm statistics included) or the whole network.

# %%
all_classes = base_classes + [c for c in range(len(data.classes)) if c not in base_classes]
full_task = select_classes(data, all_classes)
new_slots = len(all_classes) - len(base_classes)
old = keras_state(base)
correspondence = {
    f"{HEAD}/{p}": [[0, n] for n in old[f"{HEAD}/{p}"].shape] for p in ("kernel", "bias")
}
for name, config in {
    "add-head": TrainConfig(epochs=finetune_epochs, lr=0.05, seed=seed + 1, trainable=HEAD),
    "add-whole": finetune,
}.items():
    model = remap_head(base, [*range(len(base_classes)), *[None] * new_slots], seed + 1)
    train_keras(model, full_task.x_train, full_task.y_train, config)
    publish(name, model, full_task, config, "base", f"head grown to {len(all_classes)} ({name})")
    writer.add_pair(
        "base",
        name,
        "transfer-add-classes",
        series="add",
        description=f"head {len(base_classes)} → {len(all_classes)} outputs, {name}",
        correspondence=correspondence,
        metrics=known_classes(model, full_task),
    )

timings = writer.finish()

# %% [markdown]
# ## What changed in the structure
#
# Per pair, every tensor added, removed or reshaped, and for a reshaped tensor the block of the
# updated tensor (`start:stop` per axis) that continues the base's tensor. Keras's `Dense` kernel
# is inputs × outputs: the old head is the first *columns* of the new kernel.

# %%
entries = recipe_entries(manifest.load(writer.folder), "keras_transfer")
structure_table(entries)

# %% [markdown]
# ## Accuracy before and after
#
# `top1` is each model on its own task's test classes; `top1-known-classes` is base and update on
# the classes the base knew and the update kept in the same slots (base minus updated: forgetting).
# The change statistics cover the tensors of equal shape: for `add-head` that is everything but the
# head, hence zero; the head's change is in the figure below and in the manifest's `correspondence`.

# %%
pair_table(entries).round(4)

# %% [markdown]
# ## Per-layer change: head only versus whole network
#
# The relative L2 change of each Keras tensor from the base for the two ways of fine-tuning the
# grown head (the head measured on the block that continues the base's head).

# %%
fig, ax = plt.subplots(figsize=(9, 3.5))
for variant in ("add-head", "add-whole"):
    change = layer_change(entries["pairs"][f"keras_transfer/base..{variant}"])
    ax.plot(list(change), list(change.values()), marker="o", label=variant)
ax.set_ylabel("‖Δ‖ / ‖base‖")
ax.tick_params(axis="x", rotation=90)
ax.legend()
ax.set_title("Relative change per Keras tensor, base → head grown 8 → 10")
fig.tight_layout()

# %% [markdown]
# Where the time went in this run (seconds):

# %%
pd.Series(timings, name="seconds").round(2)
