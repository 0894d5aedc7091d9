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
# # Transfer learning: classes exchanged, classes added (PyTorch)
#
# The second and third cases of the call {cite}`mpeg-call-test-data`: **the updated network is made by transfer learning from
# the base**, either (a) without structure change, by giving one or a few output slots to classes
# the base never saw, or (b) with structure change, because the updated task has more classes and
# the head grows. A codec sees two different things here: in (a) every tensor keeps its name and
# shape; in (b) the head's tensors are reshaped, and only part of each new tensor continues the old
# one.
#
# The recipe trains one **base** on a subset of the classes (ci: digits 0–7 of scikit-learn's
# digits {cite}`alpaydin1998optdigits`; full: CIFAR-10 {cite}`krizhevsky2009cifar` classes 0–7 from `$PAIRZOO_DATA`, or CIFAR-100's or ImageNet's by
# `dataset`), then derives every updated model from it (a star). In the full profile the base is a
# ResNet-50 whose every layer but the head starts from torchvision's ImageNet weights: transfer
# from ImageNet to the new classes, as practised (CIFAR's images are seen at their 32×32 size).
#
# | updated model | task | how |
# |---|---|---|
# | `exchange-1` | slot 7 now means class 9 | same head size, the exchanged row freshly initialised, whole network fine-tuned |
# | `exchange-2` | slots 6 and 7 now mean classes 8 and 9 | as above, two rows |
# | `add-head` | all classes (8 → 10 outputs) | rows of persisting classes copied from the old head, new rows fresh; **head only** fine-tuned |
# | `add-whole` | all classes (8 → 10 outputs) | same start, **whole network** fine-tuned |
#
# Each model is measured on the test images of its own classes (top-1), and each pair on the test
# images of the classes the base knew and the update kept (the same slots in both): the drop from
# base to updated is the forgetting. For the reshaped head tensors the manifest names the block of
# the new tensor that continues the old one (`correspondence`) and its change statistics.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": `dataset` from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
dataset = "cifar10"  # full: cifar10, cifar100 or imagenet
architecture = ""  # empty: the profile's default (digits-cnn for ci, resnet50 for full)
pretrained = True  # full: the base starts from torchvision's ImageNet weights in $TORCH_HOME
base_classes = [0, 1, 2, 3, 4, 5, 6, 7]
exchanges = [[9], [8, 9]]  # unseen classes that take over the base's last slots
base_epochs = 20
finetune_epochs = 10
seed = 0

# %%
import torch

from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import select_classes
from pairzoo.models.build import DEFAULT_ARCHITECTURE, HEADS, build_model, grow_head, remap_head
from pairzoo.models.pretrained import torch_checkpoint
from pairzoo.record import manifest
from pairzoo.record.writer import PairWriter
from pairzoo.steps.transfer import ClassTransfer, Framework
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train
from pairzoo.views.catalog import pair_table
from pairzoo.views.report import change_figure, recipe_entries, structure_table

if profile == "ci":
    torch.set_num_threads(1)  # tiny convolutions: fastest on one thread, and the same everywhere
architecture = architecture or DEFAULT_ARCHITECTURE[profile]
head = HEADS[architecture]
data = load_dataset(profile, dataset)
weights = torch_checkpoint(architecture) if profile == "full" and pretrained else None
writer = PairWriter("transfer_classes", profile, data, artifacts, pretrained=weights)
print(f"{data.info.name}: {data.sizes}; writing to {writer.folder}")

# %% [markdown]
# ## The base
#
# A network trained with SGD and a cosine schedule on the base's classes: freshly initialised (ci),
# or from the ImageNet weights with a fresh head (full). A model's task is a list of classes, one
# per output slot; `select_classes` keeps the images of those classes and labels each by its slot.
# `ClassTransfer` makes every update from this base with PyTorch's functions (`remap_head`,
# `grow_head`, `train`, `accuracy`), measures each model on its own task's test images, and each
# pair on the test images of the classes both still predict in the same slot (`forgetting`).

# %%
base_task = select_classes(data, base_classes)
base_config = TrainConfig(epochs=base_epochs, lr=0.05, seed=seed)
finetune = TrainConfig(epochs=finetune_epochs, lr=0.01, seed=seed + 1)
head_only = TrainConfig(epochs=finetune_epochs, lr=0.05, seed=seed + 1, trainable=head)
base = build_model(architecture, len(base_classes), data.input_shape[0], seed, weights)
train(base, base_task.x_train, base_task.y_train, base_config)
pytorch = Framework(remap_head, grow_head, train, accuracy)
transfer = ClassTransfer(writer, pytorch, architecture, base, base_classes, seed)
transfer.publish("base", base, base_task, base_config, description="trained on part of the classes")

# %% [markdown]
# ## Classes exchanged: same structure
#
# The last slots are given to unseen classes. Their head rows are freshly initialised (the old rows
# meant other classes), every other tensor starts from the base, and the whole network is
# fine-tuned on the new task.

# %%
transfer.exchange(exchanges, finetune)

# %% [markdown]
# ## Classes added: the head grows
#
# The head gets one row per class of the dataset. Rows of the classes the base knew are copied from
# its head (they stay in front, in the same order), the new rows are fresh; `grow_head` returns
# the block of each head tensor that continues the base's, which the pair records. The same start
# is then fine-tuned twice: the head only (every other tensor, BatchNorm statistics included, stays
# bit-identical) or the whole network.

# %%
transfer.add_classes({"add-head": head_only, "add-whole": finetune})
timings = writer.finish()

# %% [markdown]
# ## What changed in the structure
#
# Per pair, every tensor added, removed or reshaped, and for a reshaped tensor the block of the
# updated tensor (`start:stop` per axis) that continues the base's tensor. PyTorch's `Linear`
# stores one row per output, so the old head is the first rows of the new one.

# %%
entries = recipe_entries(manifest.load(writer.folder), "transfer_classes")
structure_table(entries)

# %% [markdown]
# ## Accuracy before and after
#
# `top1` is each model on its own task's test classes; `top1-known-classes` is base and update on
# the classes the base knew and the update kept in the same slots (base minus updated: forgetting).
# The change statistics cover the tensors of equal shape (the head's reshaped tensors are measured
# separately, on their corresponding block, in the manifest).

# %%
pair_table(entries).round(4)

# %% [markdown]
# ## Per-layer change: head only versus whole network
#
# The relative L2 change of each tensor from the base, for the two ways of fine-tuning the grown
# head (the head measured on the block that continues the base's head). Head-only fine-tuning
# leaves every other tensor untouched; whole-network fine-tuning moves all of them.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-transfer-head-change", "caption": "Relative L2 change of each tensor from the base after the head grew to every class of the dataset: `add-head` (head only fine-tuned) against `add-whole` (whole network fine-tuned); the head is measured on the block that continues the base's head."}}
figure = change_figure(entries, ["add-head", "add-whole"], "Change per tensor, head 8 → 10")

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
import pandas as pd

pd.Series(timings, name="seconds").round(2)
