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
# # Compression-rate variants: one network at several compression levels
#
# The call's case **base and updated are compressed versions of the same network with different
# compression rates**, and its use case *an update to higher precision / less compression*: a
# receiver holds a coarse version of a network and gets a finer one. The recipe trains one float
# classifier (ci: the digits CNN on scikit-learn's digits; full: ResNet-50 on ImageNet from
# torchvision's weights, VGG-16 or MobileNetV2 by `architecture`: with `epochs = 0` it is the
# published network itself, as in MPEG's NNR evaluation {cite}`iso15938-17`) and derives three **ladders** from it.
# Each ladder is a chain of pairs from the more compressed model (base) to the less compressed one
# (updated):
#
# | ladder | models | how |
# |---|---|---|
# | quantisation | `quant-2bit` → `quant-4bit` → `quant-6bit` → `quant-8bit` | conv and linear weights quantised uniformly and symmetrically **per output channel**, stored dequantised; biases and BatchNorm stay float32 |
# | sparsity | `sparse-90` → `sparse-75` → `sparse-50` → `sparse-25` | global magnitude pruning of the conv and linear weights (`torch.nn.utils.prune`), each level pruned from the float model and briefly fine-tuned with its mask, then made permanent |
# | NNC | `nnc-qp-16` → `nnc-qp-24` → `nnc-qp-32` → `nnc-qp-40` | the float model coded whole by NNC (`nncodec`) and decoded; the reconstruction is the model |
#
# Every model's manifest record carries a `compression` block: method, parameters, tool and
# version, and the size of its compressed representation in bytes with how that size is counted.
# Global magnitude masks are nested (a weight kept at 90 % sparsity is kept at 75 %), so the
# sparsity pairs mostly *fill in zeros*; each pair's description says how many base weights were
# zero.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": `dataset` from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
dataset = "imagenet"  # full: imagenet, cifar10 or cifar100
architecture = ""  # empty: the profile's default (digits-cnn for ci, resnet50 for full)
pretrained = True  # full: start from torchvision's ImageNet weights in $TORCH_HOME
epochs = 12  # training of the float model
finetune_epochs = 2  # after each pruning level
bits = [2, 4, 6, 8]
sparsities = [0.9, 0.75, 0.5, 0.25]
qps = [-16, -24, -32, -40]
seed = 0

# %%
from pairzoo.coding import codec
from pairzoo.record import manifest  # first: it turns onnxruntime's telemetry off

# isort: split
import copy
from itertools import pairwise

import matplotlib.pyplot as plt
import onnxruntime as ort
import torch

from pairzoo.coding.compression import (
    int8_qdq,
    make_permanent,
    nnc_reconstruction,
    prune_magnitude,
    quantised,
    sparse_size,
    weight_sparsity,
)
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import calibration_images, draw
from pairzoo.export.exporters import INPUT_NAME, float_state
from pairzoo.models.build import DEFAULT_ARCHITECTURE, build_model
from pairzoo.models.pretrained import torch_checkpoint
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train
from pairzoo.views.catalog import pair_table

if profile == "ci":
    torch.set_num_threads(1)  # tiny convolutions: fastest on one thread, and the same everywhere
architecture = architecture or DEFAULT_ARCHITECTURE[profile]
data = load_dataset(profile, dataset)
weights = torch_checkpoint(architecture) if profile == "full" and pretrained else None
writer = PairWriter(
    "compression_variants", profile, data, artifacts, architecture=architecture, pretrained=weights
)
print(f"{data.info.name}: {data.sizes}; writing to {writer.folder}")

# %% [markdown]
# Every model is trained on (or derived from a model trained on) all training images. `publish`
# measures a variant's top-1 accuracy on the test set and writes it with its `compression` block;
# `ladder` chains a list of models, most compressed first.

# %%
results: dict[str, list[tuple[int, float]]] = {}
training_set = draw(data, 1.0, seed)


def publish(ladder, name, variant, config, compression, description):
    top1 = accuracy(variant.model, data.x_test, data.y_test)
    size = {"size_bytes": variant.size_bytes, "size_measure": variant.size_measure}
    writer.add_model(name, variant.model, training=Training.of(training_set, config, start="float"),
                     metrics={"top1": top1}, description=description,
                     extra={"compression": {**compression, **size}})  # fmt: skip
    results.setdefault(ladder, []).append((variant.size_bytes, top1))


def chain(names, series, describe=lambda base, updated: ""):
    for base_name, updated_name in pairwise(names):
        writer.add_pair(
            base_name,
            updated_name,
            "compression-rate",
            series=series,
            description=describe(base_name, updated_name) or f"{series}: less compressed",
        )


# %% [markdown]
# ## The float model
#
# A network trained with SGD and a cosine schedule on all training images, freshly initialised (ci)
# or from the ImageNet weights (full); its size is every float tensor at 4 bytes.

# %%
config = TrainConfig(epochs=epochs, lr=0.05, seed=seed)
net = build_model(architecture, len(data.classes), data.input_shape[0], seed, weights)
train(net, data.x_train, data.y_train, config)
float_bytes = sum(4 * t.numel() for t in float_state(net).values())
float_top1 = accuracy(net, data.x_test, data.y_test)
writer.add_model(
    "float",
    net,
    training=Training.of(training_set, config),
    metrics={"top1": float_top1},
    description="the uncompressed float32 network every variant is made from",
)

# %% [markdown]
# ### An int8 ONNX of the float model
#
# For runtimes that execute integer models, the float ONNX is also quantised statically by
# `onnxruntime.quantization` to int8 in QDQ format (weights and activations per tensor, min-max
# ranges calibrated on the training images, at most about 2048 of them, stratified by class) and
# measured in onnxruntime. It is a file of the float model (`onnx-int8-qdq`, described under
# `derived`), not a model of the ladders: its tensors are int8 and its graph differs from the float
# one.

# %%
float_onnx = writer.path_stem("float").with_suffix(".onnx")
calibration = calibration_images(data, 2048, seed)
qdq = int8_qdq(float_onnx, writer.path_stem("float-int8-qdq").with_suffix(".onnx"),
               calibration, INPUT_NAME)  # fmt: skip
qdq_top1 = OnnxEvaluator(qdq, data, "top1")()
writer.attach(
    "float",
    "onnx-int8-qdq",
    qdq,
    {
        "method": "static-int8-quantisation",
        "parameters": {"format": "QDQ", "granularity": "per-tensor", "calibration": "min-max, "
                       f"{len(calibration)} training images", "activations": "int8"},
        "tool": "onnxruntime",
        "tool_version": ort.__version__,
        "size_bytes": qdq.stat().st_size,
        "size_measure": "ONNX file bytes",
        "metrics": {"top1": {"value": qdq_top1, "dataset": data.info.id, "split": "test"}},
    },
)  # fmt: skip
print(f"  int8 QDQ: top-1 {qdq_top1:6.2f}% in onnxruntime (float {float_top1:.2f}%), "
      f"{qdq.stat().st_size} bytes of ONNX")  # fmt: skip

# %% [markdown]
# ## Ladder 1: uniform quantisation
#
# Each conv and linear weight is quantised per output channel with the step max|w| / (2^(b−1) − 1)
# and stored dequantised, so the ONNX and safetensors files are ordinary float32 models whose
# weights take at most 2^b − 1 values per channel.

# %%
no_training = {"epochs": 0, "note": "no training: derived from the float model"}
for b in bits:
    variant = quantised(net, b)
    publish("quantisation", f"quant-{b}bit", variant, no_training, variant.record(),
            f"{b}-bit weights")  # fmt: skip
chain([f"quant-{b}bit" for b in bits], "quantisation")

# %% [markdown]
# ## Ladder 2: magnitude pruning
#
# Each level prunes the float model's conv and linear weights globally by magnitude, fine-tunes
# the network with the mask applied (the zeros stay zero), and makes the pruning permanent. The
# size counts every nonzero weight at 32 bits plus its flat index within its tensor.

# %%
finetune = TrainConfig(epochs=finetune_epochs, lr=0.01, seed=seed + 1)
zeros: dict[str, tuple[int, int]] = {}
for s in sparsities:
    model = prune_magnitude(copy.deepcopy(net), s)
    train(model, data.x_train, data.y_train, finetune)
    make_permanent(model)
    name = f"sparse-{round(100 * s)}"
    zeros[name] = weight_sparsity(model)
    variant = sparse_size(model, s)
    publish("sparsity", name, variant, finetune, variant.record(), f"{s:.0%} zero weights")


def zeros_in_base(base_name, updated_name):
    (zero, total), (left, _) = zeros[base_name], zeros[updated_name]
    return f"sparsity: {zero} of {total} layer weights zero in the base, {left} in the updated"


chain([f"sparse-{round(100 * s)}" for s in sparsities], "sparsity", zeros_in_base)

# %% [markdown]
# ## Ladder 3: NNC reconstructions
#
# The float model's tensors are coded whole by NNC at each QP (`pairzoo.coding.codec.nnc_full`) and
# decoded; the reconstruction is loaded back into the network. The size is the bitstream's length.
# A lower QP is a finer step, so the ladder runs from the highest QP to the lowest.

# %%
tensors = {name: t.numpy() for name, t in float_state(net).items()}
nnc_names = []
for qp in sorted(qps, reverse=True):
    variant = nnc_reconstruction(net, codec.nnc_full(tensors, codec.NncSettings(qp)))
    name = f"nnc-qp{qp}"
    publish("NNC", name, variant, no_training, variant.record(), f"NNC reconstruction at QP {qp}")
    nnc_names.append(name)
chain(nnc_names, "nnc")

timings = writer.finish()

# %% [markdown]
# ## Accuracy versus size
#
# Every model of the three ladders, its top-1 accuracy on the test set against the bytes of its
# compressed representation (logarithmic axis); the dashed line is the float model.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-compression-size", "caption": "Top-1 accuracy on the test set against the compressed size in bytes (log scale) of every model of the quantisation, sparsity and NNC ladders; dashed: the float model."}}
from matplotlib.ticker import LogLocator, NullFormatter

fig, ax = plt.subplots(figsize=(7, 4))
for ladder, points in results.items():
    sizes, top1s = zip(*sorted(points), strict=True)
    ax.plot(sizes, top1s, marker="o", label=ladder)
ax.axhline(float_top1, color="grey", linestyle="--", label=f"float ({float_bytes} B)")
ax.set_xscale("log")
low, high = ax.get_xlim()
if sum(low <= tick <= high for tick in ax.get_xticks()) < 2:  # one power of ten in view
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5 × 10^k
ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
ax.xaxis.set_major_formatter("{x:,.0f}")
ax.set_xlabel("compressed size (bytes)")
ax.set_ylabel("top-1 (%)")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## The pairs
#
# Each row is one step up a ladder. The change statistics count the tensors that change from the
# base to the updated model; in the sparsity ladder most changed weights were zeros in the base.

# %%
entries = manifest.load(writer.folder)
pair_table(entries, "compression_variants").round(4)

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
import pandas as pd

pd.Series(timings, name="seconds").round(2)
