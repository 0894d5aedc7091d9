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
# # Transformers: a language model (pre-training, fine-tuning, LoRA, bfloat16) and a ViT
#
# The other recipes update convolutional and recurrent networks. The updates that are most often
# shipped today are those of **transformer language models**: a base model trained further on
# more text, fine-tuned on another domain, or adapted with a low-rank adapter (LoRA, {cite}`hu2022lora`) that is
# either sent on its own or merged into the base's weights. This recipe makes those cases of the
# call for a small decoder-only model, built from a configuration with Hugging Face
# `transformers` (a `LlamaForCausalLM`; nothing is downloaded), on text that ships with every
# Python under the PSF licence:
#
# - the **base domain** is English prose: the help topics of the Python documentation
#   (`pydoc_data.topics`);
# - the **second domain** is Python source code: a fixed list of standard-library modules.
#
# Each domain's documents are split train/test by position (every 5th or 6th document is
# held out); a byte-level BPE tokenizer (`tokenizers`) is trained on both training splits and
# saved with the models; the text becomes windows of `context` tokens.
#
# | pairs | updated model | relation | what a codec sees |
# |---|---|---|---|
# | `base → chain-1 → chain-2` | continued pre-training on growing shares of the prose | more data | every tensor moves; each update the base of the next |
# | `base → epochs-k` | the base trained further on its own windows for *k* epochs | more epochs | growing updates of one base |
# | `base → finetune-code` | full fine-tune on the source code | other data | every tensor moves |
# | `base → lora-r` | a LoRA adapter of rank *r* trained on the code (PEFT) | LoRA adapter | the base unchanged, the adapter's tensors **added** |
# | `base → lora-r-merged` | that adapter merged into the weights | LoRA merged | same structure, a delta of rank ≤ *r* per weight |
# | `base-bf16 → finetune-code-bf16` | base and full fine-tune stored in bfloat16 | other data | bfloat16 tensors |
#
# A small **vision transformer** (`ViTForImageClassification` from a `ViTConfig`, on the digits)
# adds the transfer-learning cases for a third kind of classifier: `vit-base` knows the digits of
# `vit_classes`; `vit-exchange` gives the last slot to digit 9 (same structure); `vit-add-class`
# grows the head to every digit (the head's tensors are reshaped; the manifest names the block of
# each that continues the base's).
#
# Every language model is measured by its **perplexity** and **next-token top-1 accuracy** on the held-out
# windows of its own domain; the code models also on the prose (the pair records the base's and the
# update's perplexity there: the forgetting). Every model is exported and checked as in every
# recipe ({ref}`output-format`; the adapter is also saved as PEFT saves it), its ONNX for a fixed
# context (token ids in, logits out), so the `update_coding` recipe codes and scores these pairs
# without PyTorch.
#
# In the `full` profile the same scenario starts from a **published checkpoint**: the base is
# `hub_model` as read from the local Hugging Face cache (`HF_HUB_OFFLINE`; for example
# `EleutherAI/pythia-160m`, `TinyLlama/TinyLlama-1.1B`), with its own tokenizer; the two domains
# are folders under `$PAIRZOO_DATA` (text files, or a dataset saved by `datasets.save_to_disk`,
# whose `text_column` is read), and the ViT starts from `vit_model` with a fresh head on
# `vit_dataset`. Nothing is downloaded; training runs on the GPU in bfloat16 mixed precision, and
# under `torchrun` on every GPU. An ONNX file whose tensors reach `onnx_external_bytes` (protobuf's
# 2 GiB limit) keeps them as ONNX external data, a file beside it listed with the model's files.

# %% tags=["parameters"]
profile = "ci"  # "ci": text shipped with Python; "full": a hub checkpoint, text from $PAIRZOO_DATA
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
hub_model = "EleutherAI/pythia-160m"  # full: the base, a causal LM in the Hugging Face cache
base_text = "wikitext-103"  # full: $PAIRZOO_DATA/<name>, the base domain's text
finetune_text = "python-code"  # full: $PAIRZOO_DATA/<name>, the second domain's text
text_column = "text"  # full: the column of a dataset saved by save_to_disk
text_split = "train"  # full: the split of a saved DatasetDict
test_windows = 256  # full: at most this many test windows per domain
vit_model = "google/vit-base-patch16-224"  # full: the ViT base's start, in the Hugging Face cache
vit_dataset = "imagenet"  # full: the ViT's images, from $PAIRZOO_DATA
onnx_external_bytes = 2**31  # ONNX tensors of this size or more are stored as external data
vocab_size = 512  # byte-level BPE tokens
context = 64  # tokens per window (and the ONNX input's length)
hidden_size = 128
layers = 2
base_fraction = 0.1  # share of the prose training windows the base sees
base_epochs = 6
ladder = [1, 2, 4]  # epochs of continued training on the base's windows
chain_fractions = [0.5, 1.0]  # continued pre-training on growing shares of the prose
chain_steps = 30  # steps per link of the chain
finetune_steps = 50  # steps on the source code (full fine-tune and each LoRA)
lora_ranks = [4, 16]
lora_targets = []  # layer names; empty: ci every linear layer of the blocks, full "all-linear"
vit_classes = [0, 1, 2, 3, 4, 5, 6, 7]  # the ViT base's classes (indices)
vit_added = 2  # classes the ViT gains
vit_epochs = 15
vit_tune_epochs = 5
qp = -38  # NNC quantisation parameter of the byte counts shown on this page
seed = 0

# %%
import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from pairzoo.coding import codec
from pairzoo.data.loading import load_dataset
from pairzoo.data.local_text import load_local_text
from pairzoo.data.sets import Subset, draw, select_classes
from pairzoo.data.text import load_text, train_tokenizer
from pairzoo.export.exporters import OnnxExporter
from pairzoo.models.build import build_model, remap_head
from pairzoo.models.hub_checkpoints import hub_pretrained, load_causal_lm, load_image_classifier
from pairzoo.models.vision_transformers import LogitsViT
from pairzoo.profiles import check_profile
from pairzoo.record import manifest, view
from pairzoo.record.writer import PairMeasurement, PairWriter, Training
from pairzoo.steps import language_models as lm
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train
from pairzoo.views.catalog import pair_table

if check_profile(profile) == "ci":
    torch.set_num_threads(1)  # small models: fast on one thread, and the same bytes everywhere
    prose = load_text("pydoc-topics", vocab_size, context)
    code = load_text("python-stdlib-source", vocab_size, context)
    config = lm.LMConfig(
        vocab_size, hidden_size, 3 * hidden_size, layers, hidden_size // 32, context
    )
    architecture, pretrained = f"llama-{layers}x{hidden_size}", None
    lrs = {"continue": 1e-3, "lora": 3e-3}
    lora_targets = lora_targets or lm.LINEAR_LAYERS
else:
    published, tokenizer = load_causal_lm(hub_model)
    prose, code = (
        load_local_text(name, tokenizer, hub_model, context, test_windows, text_column, text_split)
        for name in (base_text, finetune_text)
    )
    architecture, pretrained = hub_model, hub_pretrained(hub_model)
    lrs = {"continue": 3e-5, "lora": 3e-4}  # a trained model continues at a smaller step
    lora_targets = lora_targets or "all-linear"
writer = PairWriter(
    "language_model", profile, prose, artifacts, architecture=architecture, pretrained=pretrained
)
exporter = lm.CausalLMExporter(prose.x_test[:8], external_over=onnx_external_bytes)
for data in (prose, code):
    print(f"{data.info.id}: {data.sizes} windows of {context} tokens")

# %% [markdown]
# The tokenizer and the model's configuration are files of every model (one copy each in the
# recipe's folder); `publish` measures a model on the test windows of its domain (and of the prose)
# and hands it to the writer with its training record.

# %%
tokenizer_file = writer.output.path("tokenizer.json")
config_file = writer.output.path("config.json")
if profile == "ci":
    tokenizer_file.write_text(train_tokenizer(vocab_size).to_str(pretty=True), "utf-8")
    config.build(seed).config.to_json_file(str(config_file))
else:
    tokenizer.backend_tokenizer.save(str(tokenizer_file), pretty=True)
    published.config.to_json_file(str(config_file))
shared = {"tokenizer": tokenizer_file, "hf_config": config_file}
measured: dict[str, dict] = {}


def publish(name, model, config, data, windows, fraction, start=None, description="", files=None):
    metrics = lm.lm_metrics(model, data.x_test)
    measured[name] = {
        "domain": data.info.id.split("-bpe")[0],
        **metrics,
        "prose perplexity": lm.lm_metrics(model, prose.x_test)["perplexity"],
    }
    training = Training(config=config, subset=Subset(fraction, seed, len(windows)), start=start)
    others = {**shared, **(files or {})}
    lm.add_language_model(writer, name, model, exporter, training=training, metrics=metrics,
                          data=data, description=description, others=others)  # fmt: skip


# %% [markdown]
# ## The base
#
# ci: a freshly initialised model (seeded) trained with AdamW and a cosine schedule for
# `base_epochs` passes over a share of the prose's training windows. full: the published
# checkpoint as it is (the share is the one the epochs ladder continues on).

# %%
base_windows = lm.window_subset(prose.x_train, base_fraction, seed)
if profile == "ci":
    steps = base_epochs * lm.steps_per_epoch(base_windows, 16)
    base_config = lm.LMTrainConfig(steps=steps, lr=3e-3, seed=seed)
    base = lm.train_lm(config.build(seed), base_windows, base_config)
    base_record, about = base_config.record(), "trained on prose"
else:
    base, base_record = published, {"steps": 0, "published": hub_model}
    about = f"{hub_model} as published"
publish("base", base, base_record, prose, base_windows, base_fraction, None, about)

# %% [markdown]
# ## Continued pre-training: the chain and the epochs ladder
#
# The chain continues on growing shares of the prose (subsets of one seed are nested), each link
# the base of the next. The ladder continues on the base's own windows at a constant step,
# snapshotted after each number of epochs in `ladder`.

# %%
model, previous = base, "base"
for link, fraction in enumerate(chain_fractions, start=1):
    windows = lm.window_subset(prose.x_train, fraction, seed)
    link_config = lm.LMTrainConfig(steps=chain_steps, lr=lrs["continue"], seed=seed + link)
    model = lm.train_lm(copy.deepcopy(model), windows, link_config)
    name = f"chain-{link}"
    publish(
        name, model, link_config.record(), prose, windows, fraction, previous, f"{previous} + prose"
    )
    writer.add_pair(previous, name, "more-data", series="chain")
    previous = name

per_epoch = lm.steps_per_epoch(base_windows, 16)
further = lm.LMTrainConfig(
    steps=max(ladder) * per_epoch, lr=lrs["continue"], schedule="constant", seed=seed
)


def snapshot(step, model):
    if step % per_epoch == 0 and step // per_epoch in ladder:
        epochs = step // per_epoch
        done = {**further.record(), "steps": step}
        name = f"epochs-{epochs}"
        publish(name, model, done, prose, base_windows, base_fraction, "base", f"+{epochs} epochs")
        writer.add_pair("base", name, "more-epochs", series="epochs-ladder")


longest = lm.train_lm(copy.deepcopy(base), base_windows, further, snapshot, every=per_epoch)

# %% [markdown]
# ## Fine-tuning on source code: every weight, or a low-rank adapter
#
# The full fine-tune trains every tensor on the code. Each LoRA run trains only an adapter of rank
# *r* on the linear layers named in `lora_targets` (ci: every one of the attention and MLP blocks;
# full: "all-linear", PEFT's every linear layer but the output head; PEFT's defaults: A random,
# B zero, α = r, no dropout) with the same data and steps. The adapter model is the base's tensors plus the
# adapter's (`…q_proj.lora_A.weight`, `…q_proj.lora_B.weight`: PEFT's names without its wrapping);
# it is also saved as PEFT saves it. Merging it (`merge_and_unload`) gives a model of the base's
# structure whose weights differ from the base's by B·A·α/r, a delta of rank at most *r*.
# Each pair records the prose perplexity of base and update (forgetting).

# %%
prose_base = measured["base"]["prose perplexity"]


def forgetting(name):
    return {
        "perplexity-base-domain": PairMeasurement(
            prose_base, measured[name]["prose perplexity"], None
        )
    }


tune = lm.LMTrainConfig(steps=finetune_steps, lr=lrs["continue"], seed=seed + 10)
finetuned = lm.train_lm(copy.deepcopy(base), code.x_train, tune)
publish(
    "finetune-code", finetuned, tune.record(), code, code.x_train, 1.0, "base", "base tuned on code"
)
writer.add_pair("base", "finetune-code", "other-data", metrics=forgetting("finetune-code"))

adapters = {}
for rank in lora_ranks:
    lora_config = lm.LMTrainConfig(steps=finetune_steps, lr=lrs["lora"], seed=seed + 10)
    adapter = lm.add_lora(base, rank, seed + rank, lora_targets)
    adapted = lm.train_lm(adapter, code.x_train, lora_config)
    adapters[rank] = adapted
    peft_folder = writer.output.path(f"lora-{rank}-peft")
    lm.save_adapter(adapted, peft_folder)
    peft_files = {
        "peft_adapter": peft_folder / "adapter_model.safetensors",
        "peft_config": peft_folder / "adapter_config.json",
    }
    name = f"lora-{rank}"
    lora = {"lora": lm.lora_record(adapted)}
    description = f"base + LoRA adapter (r={rank}) trained on code"
    publish(
        name,
        adapted,
        {**lora_config.record(), **lora},
        code,
        code.x_train,
        1.0,
        "base",
        description,
        peft_files,
    )
    writer.add_pair("base", name, "lora-adapter", series="lora", metrics=forgetting(name))
    merged = copy.deepcopy(adapted).merge_and_unload()
    name = f"lora-{rank}-merged"
    publish(
        name,
        merged,
        {**lora_config.record(), **lora},
        code,
        code.x_train,
        1.0,
        "base",
        f"lora-{rank} merged",
    )
    writer.add_pair("base", name, "lora-merged", series="lora", metrics=forgetting(name))

# %% [markdown]
# ## bfloat16
#
# The base and the full fine-tune rounded to bfloat16 and stored so (safetensors in `BF16`). Their
# ONNX files hold the same values widened to float32, and their metrics are those of the widened
# model; the codec reads the tensors as float32 (exactly) and the coding records that it did.

# %%
for name, model, data, start in (
    ("base-bf16", base, prose, "base"),
    ("finetune-code-bf16", finetuned, code, "finetune-code"),
):
    rounding = {"rounded_from": writer.model_id(start), "dtype": "bfloat16"}
    publish(
        name, lm.to_bfloat16(model), rounding, data, data.x_train, 1.0, start, f"{start} in bf16"
    )
bf16_stats = writer.add_pair("base-bf16", "finetune-code-bf16", "other-data", series="bfloat16")

# %% [markdown]
# ## A vision transformer: a class exchanged, classes added
#
# The ViT base is trained on the digits of `vit_classes` (Adam, cosine schedule; full: `vit_model`
# with a fresh head, on those classes of `vit_dataset`). `remap_head`
# makes each update's head: the base's rows for the classes it keeps, fresh rows (seeded) for the
# others; then the whole network is fine-tuned on the new task's training images. Each model is
# measured (top-1) on the test images of its own classes.

# %%
digits = load_dataset(profile, vit_dataset)  # ci: the digits
vit_exporter = OnnxExporter(digits.x_test[:64])
vit_lrs = (3e-3, 1e-3) if profile == "ci" else (1e-4, 3e-5)  # base, tune: a trained ViT, smaller
adam = {"optimizer": "adam", "lr": vit_lrs[0], "weight_decay": 0.0, "batch_size": 32}


def publish_vit(name, model, task, config, start=None, description=""):
    top1 = accuracy(model, task.x_test, task.y_test)
    training = Training.of(draw(task, 1.0, seed), config, start=start)
    writer.add_model(name, model, architecture=vit_architecture, training=training,
                     metrics={"top1": top1}, description=description, classes=task.classes,
                     data=digits, exporter=vit_exporter, test_classes=task.classes)  # fmt: skip


vit_task = select_classes(digits, vit_classes)
vit_config = TrainConfig(epochs=vit_epochs, seed=seed, **adam)
if profile == "ci":
    vit_architecture, vit = "digits-vit", build_model("digits-vit", len(vit_classes), 1, seed)
else:
    vit_architecture = vit_model
    vit = load_image_classifier(vit_model, loader=LogitsViT)
    vit = remap_head(vit, "digits-vit", [None] * len(vit_classes), seed)  # a fresh head
    vit.config.num_labels = len(vit_classes)
train(vit, vit_task.x_train, vit_task.y_train, vit_config)
publish_vit("vit-base", vit, vit_task, vit_config, None, "ViT trained on part of the digits")

unseen = [c for c in range(len(digits.classes)) if c not in vit_classes][:vit_added]
vit_tune = TrainConfig(epochs=vit_tune_epochs, seed=seed + 1, **{**adam, "lr": vit_lrs[1]})
updates = {
    "vit-exchange": (vit_classes[:-1] + unseen[-1:], "transfer-exchange-classes"),
    "vit-add-class": (vit_classes + unseen, "transfer-add-classes"),
}
for name, (classes, relation) in updates.items():
    task = select_classes(digits, classes)
    sources = [vit_classes.index(c) if c in vit_classes else None for c in classes]
    model = remap_head(vit, "digits-vit", sources, seed + 1)
    train(model, task.x_train, task.y_train, vit_tune)
    description = f"head for digits {', '.join(task.classes)}, whole network fine-tuned"
    publish_vit(name, model, task, vit_tune, "vit-base", description)
    grown = len(classes) != len(vit_classes)
    old_rows = len(vit_classes)
    correspondence = {
        "classifier.weight": [[0, old_rows], [0, vit.config.hidden_size]],
        "classifier.bias": [[0, old_rows]],
    }
    writer.add_pair(
        "vit-base",
        name,
        relation,
        series="vit",
        description=description,
        correspondence=correspondence if grown else None,
    )
timings = writer.finish()

# %% [markdown]
# ## The models
#
# Perplexity and next-token top-1 on the held-out windows of each model's own domain, perplexity
# on the prose for every model, and the largest difference between onnxruntime's and PyTorch's
# logits on the parity windows.

# %%
entries = manifest.load(writer.folder)
zoo = view.of(writer.folder, entries)
ours = {model.name: model.record for model in zoo.models(recipe=writer.recipe)}
models = pd.DataFrame.from_dict(measured, orient="index")
models["parameters"] = [ours[name]["parameters"] for name in models.index]
models["dtype"] = [ours[name]["dtype"] for name in models.index]
models["ONNX max |diff|"] = [f"{ours[name]['onnx']['max_abs_diff']:.1e}" for name in models.index]
models.round(3)

# %% [markdown]
# ## The pairs
#
# How much of the network each update moved, and what the structure change is: the adapter pairs
# add the adapter's tensors and change no base tensor; every other pair keeps the structure. The
# `perplexity-base-domain` columns are the prose perplexity of base and update (forgetting).

# %%
pair_table(entries, writer.recipe).round(4)

# %% [markdown]
# ## A low-rank delta against a full fine-tune, and what NNC makes of it
#
# For the code updates: the relative L2 change of all tensors, the share of values changed, the
# largest numerical rank of a weight delta (singular values above 10⁻⁴ of the largest), and NNC's
# bytes at QP `qp` for the updated model coded whole (`nnc-full`) and as an update of the base
# (`nnc-incremental`: the delta, with new tensors coded whole). The `update_coding` recipe codes
# every pair along a ladder of QPs and scores each reconstruction in onnxruntime; this table is one
# point of that ladder.

# %%
code_pairs = ["finetune-code"] + [
    name for rank in lora_ranks for name in (f"lora-{rank}", f"lora-{rank}-merged")
]


def files(name):
    return zoo.model(f"{writer.recipe}/{name}").tensors()


base_tensors = files("base")
base_on_code = lm.lm_metrics(base, code.x_test)["perplexity"]
settings = codec.NncSettings(qp)
rows = {}
for name in code_pairs:
    tensors = files(name)
    pair = entries["pairs"][f"{writer.recipe}/base..{name}"]
    matrices = [k for k in base_tensors if base_tensors[k].ndim == 2 and k in tensors]
    rows[name] = {
        "relation": pair["relation"],
        "tensors added": len(pair["structure_change"]["added"]),
        "rel. L2": pair["stats"]["total"]["rel_l2"],
        "changed %": 100 * pair["stats"]["total"]["changed_fraction"],
        "max rank of a weight delta": max(
            lm.delta_rank(base_tensors[k], tensors[k]) for k in matrices
        ),
        "NNC full B": codec.nnc_full(tensors, settings).size,
        "NNC incremental B": codec.nnc_update(base_tensors, tensors, settings).size,
        "code perplexity (base)": base_on_code,
        "code perplexity": measured[name]["perplexity"],
        "prose perplexity (base)": prose_base,
        "prose perplexity": measured[name]["prose perplexity"],
    }
lowrank = pd.DataFrame.from_dict(rows, orient="index")
lowrank["incr. / full"] = lowrank["NNC incremental B"] / lowrank["NNC full B"]
lowrank.round(4)

# %% [markdown]
# What this run's table says (computed from it):


# %%
def reading():
    full = lowrank.loc["finetune-code"]
    lines = [
        f"- The full fine-tune moves {full['changed %']:.1f}% of all values (relative L2 "
        f"{full['rel. L2']:.3f}); its weight deltas have full rank (up to "
        f"{full['max rank of a weight delta']}). NNC codes it incrementally in "
        f"{full['NNC incremental B']:,} bytes, {full['incr. / full']:.0%} of the full coding."
    ]
    for rank in lora_ranks:
        adapter, merged = lowrank.loc[f"lora-{rank}"], lowrank.loc[f"lora-{rank}-merged"]
        lines.append(
            f"- LoRA r = {rank}: the adapter adds {adapter['tensors added']} tensors and costs "
            f"{adapter['NNC incremental B']:,} bytes as an update; merged, the same change is a "
            f"delta of rank ≤ {merged['max rank of a weight delta']} in every adapted matrix "
            f"(relative L2 {merged['rel. L2']:.3f}) that NNC codes element by element in "
            f"{merged['NNC incremental B']:,} bytes, "
            f"{merged['NNC incremental B'] / adapter['NNC incremental B']:.1f}× the adapter's. "
            f"Code perplexity {adapter['code perplexity (base)']:.1f} → "
            f"{adapter['code perplexity']:.1f} (full fine-tune: {full['code perplexity']:.1f})."
        )
    return "\n".join(lines)


Markdown(reading())

# %% [markdown]
# ## Where each update moved the weights
#
# The relative L2 change of every weight matrix between the base and the full fine-tune, and
# between the base and each merged LoRA model.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-lm-weight-change", "caption": "Relative L2 change of each weight matrix (attention and MLP projections of both layers), base to full fine-tune and base to each merged LoRA model, on a log scale."}}
fig, ax = plt.subplots(figsize=(9, 3.5))
for name in ["finetune-code"] + [f"lora-{rank}-merged" for rank in lora_ranks]:
    tensors = entries["pairs"][f"{writer.recipe}/base..{name}"]["stats"]["tensors"]
    weights = {
        k.removeprefix("model.").replace("layers.", "L"): v["rel_l2"]
        for k, v in tensors.items()
        if k.endswith("proj.weight")
    }
    ax.plot(list(weights), list(weights.values()), marker="o", label=name)
ax.set_yscale("log")
ax.set_ylabel("‖Δ‖ / ‖base‖")
ax.tick_params(axis="x", rotation=90, labelsize=7)
ax.legend(fontsize=8)
ax.set_title("Relative change per weight matrix: full fine-tune against merged LoRA")
fig.tight_layout()

# %% [markdown]
# The ViT pairs: the exchanged class keeps every tensor's shape; the added classes reshape the
# classifier, whose first rows continue the base's (`correspondence`, with their change).

# %%
pd.DataFrame.from_dict(
    {
        pair.id.split("/")[1]: {
            "relation": pair.relation,
            "reshaped": ", ".join(pair.structure_change["reshaped"]) or "none",
            "base top-1": pair.base.metrics["top1"]["value"],
            "updated top-1": pair.updated.metrics["top1"]["value"],
            "rel. L2": pair.record["stats"]["total"]["rel_l2"],
            "head block rel. L2": pair.record.get("correspondence", {})
            .get("classifier.weight", {})
            .get("change", {})
            .get("rel_l2"),
        }
        for pair in zoo.pairs()
        if pair.record["series"] == "vit"
    },
    orient="index",
).round(4)

# %% [markdown]
# Perplexity on the held-out prose along the continued pre-training (the chain and the epochs
# ladder), and the bfloat16 base against its float32 original (the bfloat16 fine-tune is in the
# table of the models above).

# %%
display(models.loc[[n for n in models.index if n.startswith(("base", "chain", "epochs"))]].round(3))

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
print(np.round(pd.Series(timings, name="seconds"), 2).to_string())
