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
# # Backbone reuse: a detector built on the base classifier
#
# The case of the call where **the updated network uses (part of) the base network in its
# structure**. The base is an image classifier; the updated network is an object detector whose
# backbone *is* the classifier's feature layers, with new layers around them. A codec that knows
# the base should code the reused tensors as a difference (or not at all, when they were frozen)
# and only the new layers from scratch; the pair tells it which tensors are which.
#
# | model | how it is made | pair with the base |
# |---|---|---|
# | `base` | a classifier trained on single objects (scikit-learn's digits for `ci`) | — |
# | `detector-frozen` | FCOS detector, backbone = the base's feature layers, kept frozen | base tensors copied unchanged, new neck and head |
# | `detector-finetuned` | the same detector, backbone trained along | base tensors changed, new neck and head |
# | `detector-scratch` | the same detector with a freshly initialised backbone, same steps | none: the comparison point |
#
# The detector is torchvision's FCOS {cite}`tian2019fcos` (anchor-free, one box per feature-map location). For `ci` the
# backbone is the base `digits-cnn`'s three conv blocks (stride 2) and one new strided block, one
# feature level at stride 4, and a two-conv head; the data are **digit canvases**: 1–3 digits from
# scikit-learn's digits pasted at 8–14 pixels on a 32×32 canvas, boxes tight around the ink,
# generated from a seed (train canvases from the digits' train split, test canvases from its test
# split). For `full` the base is a ResNet-50 (another ResNet by `architecture`) that starts from
# torchvision's ImageNet weights and is trained on the object crops of Pascal VOC 2012 {cite}`everingham2010voc`, the detector
# puts an FPN on its stages, and the data are VOC 2012 read from `$PAIRZOO_DATA/voc2012`.
#
# **Tensor names.** The classifier holds `features.0.0.weight`; inside the detector the same
# tensor is `backbone.body.0.0.weight`. Each pair records this name map (updated name → base name),
# found by which tensors the detector shares in memory with the classifier it was built around. Its
# change statistics compare the mapped tensors under the updated names, and its `reuse` record
# lists the updated tensors copied unchanged, changed, and new, and the base tensors dropped (the
# classifier's last layer), with their sizes. The detectors are exported as {ref}`output-format`
# says for detectors; each one's boxes, scores and labels are checked in onnxruntime against
# PyTorch on `parity_count` test images and on an enlarged copy of one. The metric is the box mAP
# at IoU 0.5 and the COCO mAP@[.5:.95], computed by torchmetrics with pycocotools on the test
# split.

# %% tags=["parameters"]
profile = "ci"  # "ci": digit canvases from scikit-learn's digits; "full": Pascal VOC 2012
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
architecture = ""  # empty: the profile's default (digits-cnn for ci, resnet50 for full)
pretrained = True  # full: the base starts from torchvision's ImageNet weights in $TORCH_HOME
canvases = 1000  # ci: number of training canvases
base_epochs = 10
detector_steps = 200
batch_size = 16
lr = 3e-3
backbone_lr_scale = 0.1  # fine-tuned variant: the base's layers learn at this × lr
parity_count = 8  # test images checked in onnxruntime (plus one enlarged copy)
seed = 0

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd

from pairzoo.data.detection import load_detection_task
from pairzoo.data.sets import Subset, draw
from pairzoo.export.exporters import DetectorExporter
from pairzoo.models.build import DEFAULT_ARCHITECTURE, build_model
from pairzoo.models.pretrained import torch_checkpoint
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.detection import (
    DetectorConfig,
    build_detector,
    detect,
    freeze,
    mean_average_precision,
    parity_images,
    reused_tensors,
    train_detector,
)
from pairzoo.train.loop import accuracy, train

architecture = architecture or DEFAULT_ARCHITECTURE[profile]
weights = torch_checkpoint(architecture) if profile == "full" and pretrained else None
classification, detection = load_detection_task(profile, canvases, seed)
writer = PairWriter(
    "detection_backbone",
    profile,
    classification,
    artifacts,
    architecture=architecture,
    pretrained=weights,
)
print(f"base: {classification.info.name}: {classification.sizes}")
print(f"detector: {detection.info.name}: {detection.sizes}; writing to {writer.folder}")

# %% [markdown]
# ## The base classifier
#
# Trained on the whole classification training set with SGD and a cosine schedule, from scratch
# (ci) or from the ImageNet weights (full); its top-1 accuracy on the test split goes into the
# manifest.

# %%
base_config = TrainConfig(epochs=base_epochs, lr=0.05, seed=seed)
base = build_model(
    architecture, len(classification.classes), classification.input_shape[0], seed, weights
)
train(base, classification.x_train, classification.y_train, base_config)
top1 = accuracy(base, classification.x_test, classification.y_test)
writer.add_model(
    "base",
    base,
    training=Training.of(draw(classification, 1.0, seed), base_config),
    metrics={"top1": top1},
    description="the classifier whose feature layers become the detectors' backbone",
)

# %% [markdown]
# ## The detectors
#
# `build_detector` wraps the base's own modules, so the name map can be read off the shared
# memory before each detector gets its own copy. The three detectors start from the same new
# layers (one seed) and train with the same configuration for the same number of steps; the
# frozen one trains only its new layers, and its BatchNorm statistics stay the base's. The
# fine-tuned one trains the base's layers at a tenth of the learning rate (`backbone_lr_scale`):
# at the full rate, Adam's first steps undo much of what the base learnt, and the detector ends
# barely above the one trained from scratch.

# %%
tensor_map = reused_tensors(build_detector(base, detection, seed), base)
pd.Series(tensor_map, name="base tensor").rename_axis("detector tensor").head(6)

# %%
in_channels = classification.input_shape[0]
detector_config = DetectorConfig(steps=detector_steps, lr=lr, batch_size=batch_size, seed=seed)
exporter = DetectorExporter(parity_images(detection.test, parity_count))
variants = {
    "detector-frozen": "FCOS on the base's frozen feature layers; new layers trained",
    "detector-finetuned": "FCOS on the base's feature layers; all layers trained",
    "detector-scratch": "FCOS with a freshly initialised backbone (the comparison point)",
}
detectors, scores, losses = {}, {}, {}
for name, description in variants.items():
    start = build_model(architecture, len(classification.classes), in_channels, seed + 1)
    if name != "detector-scratch":
        start.load_state_dict(base.state_dict())
    detector = build_detector(start, detection, seed)
    config = detector_config
    if name == "detector-frozen":
        freeze(detector, tensor_map)
    if name == "detector-finetuned":
        config = replace(detector_config, reused_lr_scale=backbone_lr_scale)
    losses[name] = train_detector(detector, detection.train, config, reused=tensor_map)
    scores[name] = mean_average_precision(detect(detector, detection.test), detection.test)
    writer.add_model(
        name,
        detector,
        architecture=f"fcos({architecture})",
        training=Training(
            config=config.record(),
            subset=Subset(1.0, seed, len(detection.train)),
            start=None if name == "detector-scratch" else "base",
        ),
        metrics=scores[name],
        description=description,
        data=detection,
        exporter=exporter,
    )
    if name != "detector-scratch":
        writer.add_pair("base", name, "backbone-reuse", series="detector", tensor_map=tensor_map)
    detectors[name] = detector

timings = writer.finish()

# %% [markdown]
# ## What the backbone buys
#
# Box mAP on the test split after the same number of training steps. The base's own accuracy is
# the classification top-1 on single objects.

# %%
results = pd.DataFrame(scores).T.rename(columns={"map50": "mAP@0.5 %", "map": "mAP@[.5:.95] %"})
results["steps"] = detector_steps
results.loc["base (classifier)", "top-1 %"] = top1
results.round(2)

# %% [markdown]
# The training loss of the three detectors, which start from the same new layers and train for
# the same steps:

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-detection-loss", "caption": "Training loss of each detector (FCOS's classification, box and centre-ness losses summed), the mean over each tenth of the run, against the training step."}}
fig, ax = plt.subplots(figsize=(6, 3))
for name, curve in losses.items():
    ax.plot([(i + 1) / len(curve) * detector_steps for i in range(len(curve))], curve, marker="o",
            label=name)  # fmt: skip
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## What the codec sees
#
# For each pair: the detector's tensors that are the base's, copied unchanged or changed, the new
# ones, and the base tensors the detector dropped, counted in tensors and in values (weights,
# biases and BatchNorm statistics). The change statistics cover the copied and changed tensors,
# compared under the detector's names.

# %%
from pairzoo.record import manifest

entries = manifest.load(writer.folder)
pairs = {k: v for k, v in entries["pairs"].items() if v["recipe"] == "detection_backbone"}
rows = []
for pair_id, pair in sorted(pairs.items()):
    for group, members in pair["reuse"].items():
        rows.append({"pair": pair_id.split("..")[-1], "group": group,
                     "tensors": len(members["tensors"]), "values": members["numel"]})  # fmt: skip
reuse = pd.DataFrame(rows).pivot(index="group", columns="pair", values=["tensors", "values"])
reuse.loc[["copied", "changed", "new", "dropped"]]

# %%
pd.DataFrame(
    {pair_id.split("..")[-1]: pair["stats"]["total"] for pair_id, pair in sorted(pairs.items())}
).loc[["numel", "changed", "rel_l2", "max_abs_delta"]]

# %% [markdown]
# ## Detections
#
# A few test canvases with the detections scoring at least 0.3 (solid, with class and score) and
# the true boxes (dashed), for the two detectors built on the base.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-detection-examples", "caption": "The first test canvases: true boxes dashed, detections scoring at least 0.3 solid with their class and score; top row `detector-frozen`, bottom row `detector-finetuned`."}}
shown = detection.test[:4]
fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 5.4))
for row, name in zip(axes, ["detector-frozen", "detector-finetuned"], strict=True):
    for ax, sample, found in zip(row, shown, detect(detectors[name], shown), strict=True):
        image = sample.image.transpose(1, 2, 0)
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        for x0, y0, x1, y1 in sample.boxes:
            ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", ec="w"))
        for (x0, y0, x1, y1), score, label in zip(*found.values(), strict=True):
            if score >= 0.3:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="tab:orange"))
                ax.text(x0, y0 - 1, f"{detection.classes[label]} {score:.2f}", color="tab:orange",
                        fontsize=8)  # fmt: skip
        ax.set_axis_off()
    row[0].set_title(name, loc="left", fontsize=10)
fig.tight_layout()

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
pd.Series(timings, name="seconds").round(2)
