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
# CIFAR-10 {cite}`krizhevsky2009cifar` from `$PAIRZOO_DATA` (CIFAR-100 by `dataset`), base on classes 0–7.
#
# Every model is written as a Keras model is ({ref}`output-format`): the `.keras` file, its weights
# as safetensors under their Keras paths (`block1_conv/kernel`, `head/bias`, …; the pair statistics
# are computed from these), and ONNX converted by tf2onnx from a `tf.function` that takes the
# weights as arguments, so that nothing folds them (BatchNorm stays unfolded). Every Keras tensor is
# an initializer of the graph; a convolution's kernel is stored output channels first, under
# tf2onnx's name. The manifest's `onnx.initializer_map` says which initializer holds which tensor
# and how it is transposed (`initializer_names: mapped`), so the safetensors tensors, or a codec's
# reconstruction of them, are scored in onnxruntime without Keras.
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
import pandas as pd

from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import select_classes
from pairzoo.keras.export import KerasExporter
from pairzoo.keras.models import (
    DEFAULT_ARCHITECTURE,
    HEADS,
    KERAS_IMAGE_SIZE,
    accuracy,
    build_model,
    grow_head,
    load_keras,
    remap_head,
    train,
)
from pairzoo.models.pretrained import keras_mobilenet_v2
from pairzoo.record import manifest
from pairzoo.record.writer import PairWriter
from pairzoo.steps.transfer import ClassTransfer, Framework
from pairzoo.train.config import TrainConfig
from pairzoo.views.catalog import pair_table
from pairzoo.views.report import change_figure, model_files, recipe_entries, structure_table

data = load_dataset(profile, dataset)
weights = keras_mobilenet_v2(KERAS_IMAGE_SIZE) if profile == "full" else None
architecture = DEFAULT_ARCHITECTURE[profile]
head = HEADS[architecture]
writer = PairWriter("keras_transfer", profile, data, artifacts, pretrained=weights)
keras = load_keras(seed, threads=1 if profile == "ci" else None)  # tiny convolutions: one thread
print(f"{data.info.name}: {data.sizes}; keras {keras.__version__}; writing to {writer.folder}")

# %% [markdown]
# ## The base
#
# A network trained with SGD and a cosine schedule on the base's classes: freshly initialised (ci),
# or MobileNetV2 from its ImageNet weights with a fresh head (full). Keras builds its input layer,
# so `build_model` takes the image shape where PyTorch's takes the channels. `ClassTransfer` makes
# every update with Keras's functions under PyTorch's names and writes each model through the
# Keras exporter: the `.keras` file, safetensors and ONNX.

# %%
base_task = select_classes(data, base_classes)
base_config = TrainConfig(epochs=base_epochs, lr=0.05, seed=seed)
finetune = TrainConfig(epochs=finetune_epochs, lr=0.01, seed=seed + 1)
head_only = TrainConfig(epochs=finetune_epochs, lr=0.05, seed=seed + 1, trainable=head)
base = build_model(architecture, len(base_classes), data.input_shape, seed, weights)
train(base, base_task.x_train, base_task.y_train, base_config)
exporter = KerasExporter(data.x_test[:64])
framework = Framework(remap_head, grow_head, train, accuracy)
transfer = ClassTransfer(writer, framework, architecture, base, base_classes, seed, exporter)
transfer.publish("base", base, base_task, base_config, description="trained on part of the classes")

# %% [markdown]
# ## Classes exchanged: same structure
#
# The last slots are given to unseen classes; their head columns are freshly initialised, every
# other tensor starts from the base, and the whole network is fine-tuned on the new task.

# %%
transfer.exchange(exchanges, finetune)

# %% [markdown]
# ## Classes added: the head grows
#
# The head gets one output per class of the dataset; the columns of the classes the base knew are
# copied (in front, in the same order), the new ones are fresh, and `grow_head` returns the block
# of the kernel and the bias that continues the base's. The same start is fine-tuned twice: the
# head only (the other layers frozen, BatchNorm statistics included) or the whole network.

# %%
transfer.add_classes({"add-head": head_only, "add-whole": finetune})
timings = writer.finish()

# %% [markdown]
# ## The files of each model
#
# The `.keras` file holds the model as Keras saves it (no save date, fixed zip times), the
# safetensors file its tensors under their Keras paths, the ONNX file tf2onnx's graph (sizes in
# bytes).

# %%
model_files(manifest.load(writer.folder), "keras_transfer")

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

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-keras-head-change", "caption": "Relative L2 change of each Keras tensor from the base after the head grew to every class of the dataset: `add-head` (head only fine-tuned) against `add-whole` (whole network fine-tuned); the head is measured on the block of its kernel and bias that continues the base's."}}
figure = change_figure(entries, ["add-head", "add-whole"], "Change per Keras tensor, head 8 → 10")

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
pd.Series(timings, name="seconds").round(2)
