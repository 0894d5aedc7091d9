"""The language model recipe's full profile on miniatures: a hub cache, text folders, images."""

import dataclasses
import json
import os
import runpy
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

import pairzoo
from pairzoo import distributed
from pairzoo.archive import claims
from pairzoo.archive.validate import validate
from pairzoo.coding import codec, coded_samples
from pairzoo.data.loading import load_by_id
from pairzoo.data.local_text import load_local_text
from pairzoo.data.text import pydoc_topics, stdlib_source, train_tokenizer
from pairzoo.errors import PairzooError
from pairzoo.hf_env import huggingface_hub, transformers
from pairzoo.models.hub_checkpoints import load_causal_lm
from pairzoo.models.vision_transformers import LogitsViT
from pairzoo.record import manifest
from pairzoo.steps import language_models as lm
from pairzoo.steps.language_models import (
    CausalLMExporter,
    model_tensors,
    save_tensors,
    tied_names,
)

from . import fabricate
from .conftest import ROOT
from .test_hub_checkpoints import _cache_model

LM_ID, VIT_ID = "tiny/neox", "tiny/vit"


def _save_neox(folder):
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(300), eos_token="<|endoftext|>"
    )
    config = transformers.GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.GPTNeoXForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _save_vit(folder):
    config = transformers.ViTConfig(
        image_size=224, patch_size=56, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=5,
    )  # fmt: skip
    torch.manual_seed(0)
    LogitsViT(config).save_pretrained(folder)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A hub cache with a tiny GPT-NeoX and a tiny ViT; prose files, saved code, images."""
    import datasets

    root = tmp_path_factory.mktemp("full")
    _cache_model(root / "hub", LM_ID, _save_neox)
    _cache_model(root / "hub", VIT_ID, _save_vit)
    prose = root / "data" / "prose"
    for name, text in list(pydoc_topics().documents.items())[:10]:
        (prose / f"{name}.txt").parent.mkdir(parents=True, exist_ok=True)
        (prose / f"{name}.txt").write_text(text[:1500])
    rows = [text[i : i + 800] for text in stdlib_source().documents.values() for i in (0, 800)]
    code = datasets.Dataset.from_dict({"content": rows[:12], "n": list(range(12))})
    datasets.DatasetDict({"train": code}).save_to_disk(str(root / "data" / "code"))
    fabricate.imagenet(root / "data", "folders")
    return root


def _env(root):
    return {**os.environ, "PAIRZOO_DATA": str(root / "data"), "HF_HUB_CACHE": str(root / "hub"),
            "PAIRZOO_WORKERS": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}  # fmt: skip


def _run(root, out, **changes):
    parameters = {
        "profile": "full", "artifacts": out, "hub_model": LM_ID, "base_text": "prose",
        "finetune_text": "code", "text_column": "content", "context": 16, "test_windows": 6,
        "base_fraction": 0.5, "ladder": [1], "chain_fractions": [1.0], "chain_steps": 2,
        "finetune_steps": 2, "lora_ranks": [2], "vit_model": VIT_ID, "vit_classes": [0, 1],
        "vit_added": 1, "vit_epochs": 1, "vit_tune_epochs": 1, "onnx_external_bytes": 100_000,
        **changes,
    }  # fmt: skip
    command = [sys.executable, "-m", "pairzoo.cli", "run", "notebooks/language_model.py"]
    for name, value in parameters.items():
        command += ["-p", name, str(value)]
    return subprocess.run(command, cwd=ROOT, env=_env(root), timeout=600, capture_output=True,
                          text=True)  # fmt: skip


@pytest.fixture(scope="module")
def full(inputs, tmp_path_factory):
    """The full profile's output folder on the miniatures."""
    out = tmp_path_factory.mktemp("run") / "out"
    done = _run(inputs, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_the_full_profile_runs_on_miniatures_and_validates(full):
    assert validate(full) == []
    entries = manifest.load(full)
    models = {k.split("/")[1]: v for k, v in entries["models"].items()}
    assert set(models) >= {"base", "chain-1", "epochs-1", "finetune-code", "lora-2",
                           "lora-2-merged", "base-bf16", "vit-base", "vit-add-class"}  # fmt: skip
    base = models["base"]
    assert base["architecture"] == LM_ID and base["training"]["config"]["steps"] == 0
    assert base["training"]["pretrained"]["weights"].startswith(f"Hugging Face hub {LM_ID}")
    code = entries["datasets"][models["finetune-code"]["training"]["dataset"]]
    assert "column content" in code["name"] and code["splits"]["test"]["size"] <= 6
    assert models["lora-2"]["training"]["config"]["lora"]["target_modules"] == [
        "dense", "dense_4h_to_h", "dense_h_to_4h", "query_key_value"]  # fmt: skip
    assert models["vit-add-class"]["classes"] == list(fabricate.WNIDS)
    # every language model's float32 tensors (> 100 kB) are ONNX external data, listed and summed
    assert all("onnx_data" in models[n]["files"] for n in models if not n.startswith("vit"))
    assert not any("onnx_data" in models[n]["files"] for n in models if n.startswith("vit"))
    record = models["lora-2-merged"]
    onnx_path = full / record["files"]["onnx"]["path"]
    assert (full / record["files"]["onnx_data"]["path"]).name == onnx_path.name + ".data"
    graph = onnx.load(str(onnx_path), load_external_data=False)
    assert {i.data_location for i in graph.graph.initializer} == {onnx.TensorProto.EXTERNAL}
    # onnxruntime loads the graph with its data and gives the logits of the saved tensors
    folder = full / "language_model"
    config = transformers.AutoConfig.from_pretrained(folder / "config.json")
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model.load_state_dict(load_file(full / record["files"]["safetensors"]["path"]))
    windows = np.arange(32, dtype=np.int64).reshape(2, 16) % 300
    ours = ort.InferenceSession(str(onnx_path)).run(None, {"input_ids": windows})[0]
    with torch.no_grad():
        theirs = model.eval()(input_ids=torch.from_numpy(windows)).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # external data is read only through a reader of the model's recorded files
    problems, _ = claims.onnx_problems("graph", onnx_path.read_bytes(), {}, None)
    assert "tensors stored as external data (refused)" in problems[0]
    problems, _ = claims.onnx_problems("graph", onnx_path.read_bytes(), {}, None, lambda _: b"")
    assert "ends before" in problems[0]


def test_pairs_with_external_data_score_from_the_folder_and_code(inputs, full, monkeypatch):
    monkeypatch.setenv("PAIRZOO_DATA", str(inputs / "data"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(inputs / "hub"))
    pair = pairzoo.open(full).pair("language_model/base..finetune-code")
    assert "onnx_data" in pair.updated.record["files"]
    loaded, evaluate = coded_samples.load_pair(pair)
    measured = pair.updated.metrics[loaded.metric]
    assert loaded.dataset.startswith("saved-code[train:content]-tok-tiny--neox-ctx16-test")
    assert loaded.reference == pytest.approx(measured["value"], abs=1e-6)
    assert evaluate(loaded.updated) == loaded.reference
    coding = codec.nnc_update(loaded.base, loaded.updated, codec.NncSettings(qp=-38))
    value = evaluate(coding.reconstruction)
    assert np.isfinite(value) and value == pytest.approx(loaded.reference, rel=0.05)


def test_a_missing_hub_model_is_one_line_naming_it_and_the_cache(inputs, tmp_path):
    done = _run(inputs, tmp_path / "out", hub_model="EleutherAI/pythia-160m")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "'EleutherAI/pythia-160m'" in lines[0]
    assert str(inputs / "hub" / "models--EleutherAI--pythia-160m") in lines[0]


def test_missing_text_names_what_and_where(inputs, monkeypatch):
    monkeypatch.setenv("PAIRZOO_DATA", str(inputs / "data"))
    _, tokenizer = load_causal_lm(LM_ID, inputs / "hub")
    with pytest.raises(PairzooError, match=r"wikitext not found at .*data/wikitext .*save_to_disk"):
        load_local_text("wikitext", tokenizer, LM_ID, 16, 6)
    with pytest.raises(PairzooError, match=r"column 'text' not in the dataset at .*code \(split"):
        load_local_text("code", tokenizer, LM_ID, 16, 6)
    with pytest.raises(PairzooError, match=r"split 'test' not in the dataset at .*code: \['train'"):
        load_local_text("code", tokenizer, LM_ID, 16, 6, column="content", split="test")
    data = load_local_text("prose", tokenizer, LM_ID, 16, 4)
    assert (
        data.x_test.shape == (4, 16) and data.info.id == "folder-prose-tok-tiny--neox-ctx16-test4"
    )
    assert tokenizer.eos_token_id in data.x_train


def test_local_text_is_rebuilt_from_its_id_alone(inputs, monkeypatch):
    monkeypatch.setenv("PAIRZOO_DATA", str(inputs / "data"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(inputs / "hub"))
    _, tokenizer = load_causal_lm(LM_ID, inputs / "hub")
    made = load_local_text("code", tokenizer, LM_ID, 16, 6, column="content")
    assert made.info.id == "saved-code[train:content]-tok-tiny--neox-ctx16-test6"
    rebuilt = load_by_id(made.info.id)
    assert rebuilt.info == made.info and np.array_equal(rebuilt.x_test, made.x_test)
    with pytest.raises(PairzooError, match=r"refused: it has an empty, '.' or '..' part"):
        load_by_id("folder-..-tok-tiny--neox-ctx16-test6")
    with pytest.raises(PairzooError, match=r"/prose makes folder-prose-tok-tiny--neox-ctx16-test6"):
        load_by_id("saved-prose[text]-tok-tiny--neox-ctx16-test6")


def _save_gpt2(folder):
    config = transformers.GPT2Config(
        n_layer=1, n_embd=32, n_head=2, vocab_size=64, n_positions=64, tie_word_embeddings=True
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(64), eos_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(folder)


def test_tied_embeddings_are_stored_once_and_the_onnx_uses_that_name(tmp_path):
    _cache_model(tmp_path / "hub", "tiny/gpt2", _save_gpt2)
    model, _ = load_causal_lm("tiny/gpt2", tmp_path / "hub")
    assert tied_names(model) == {"lm_head.weight": "transformer.wte.weight"}
    tensors = model_tensors(model)
    assert "transformer.wte.weight" in tensors and "lm_head.weight" not in tensors
    path = save_tensors(tensors, tmp_path / "m.safetensors", {"tied": "lm_head.weight"})
    assert set(load_file(path)) == set(tensors)
    windows = np.arange(32, dtype=np.int64).reshape(2, 16) % 64
    exported = CausalLMExporter(windows).export(model, tmp_path / "m.onnx")
    graph = onnx.load(str(exported.path))
    assert {i.name for i in graph.graph.initializer} == set(tensors)
    ours = ort.InferenceSession(str(exported.path)).run(None, {"input_ids": windows})[0]
    with torch.no_grad():
        theirs = model(input_ids=torch.from_numpy(windows)).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


TINY_LM = lm.LMConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, context=16)  # fmt: skip


LM_DDP_SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np, torch
from pairzoo import distributed
from pairzoo.steps import language_models as lm

model = lm.LMConfig(**json.loads(sys.argv[2])).build(seed=0)
windows = np.random.default_rng(0).integers(0, 64, (32, 16))
everything = torch.from_numpy(windows)
batch_losses, losses = [], []
model.register_forward_hook(
    lambda module, _, out: batch_losses.append(out.loss.item()) if module.training else None
)

@torch.no_grad()
def evaluate(step, trained):
    losses.append(trained(input_ids=everything, labels=everything).loss.item())

config = lm.LMTrainConfig(steps=6, batch_size=8 // distributed.world_size(), seed=0)
lm.train_lm(model, windows, config, evaluate)
name = f"{distributed.world_size()}-{distributed.rank()}"  # a file each: ranks share stdout
torch.save(model.state_dict(), Path(sys.argv[1]) / f"{name}.pt")
record = {"losses": losses, "batch_losses": batch_losses}
(Path(sys.argv[1]) / f"{name}.json").write_text(json.dumps(record))
"""


def test_train_lm_under_torchrun_matches_one_process_on_the_same_global_batches(
    tmp_path, monkeypatch
):
    """Two gloo processes of 4 windows each train as one process does on batches of 8.

    DDP averages the processes' gradients; each is that of the mean token loss of an equal share
    (32 windows, global batch 8: every batch splits evenly), so the average is the gradient of the
    global batch's mean loss. It is summed in another order, so the weights and losses equal the
    single process's to float32 rounding (a tight tolerance), not bit for bit. The all-reduced
    gradients are the same on both ranks, so the ranks' weights and losses are identical.
    """
    (tmp_path / "ddp.py").write_text(LM_DDP_SCRIPT)
    script = [str(tmp_path / "ddp.py"), str(tmp_path), json.dumps(dataclasses.asdict(TINY_LM))]
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *torchrun, *script], env=env, timeout=300,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.setattr(sys, "argv", script)
    runpy.run_path(script[0], run_name="__main__")  # the single process, in this one
    first, second, alone = (
        json.loads((tmp_path / f"{name}.json").read_text()) for name in ("2-0", "2-1", "1-0")
    )
    states = [torch.load(tmp_path / f"{name}.pt") for name in ("1-0", "2-0", "2-1")]
    assert first["losses"] == second["losses"] and len(first["losses"]) == 6
    assert all(torch.equal(states[1][k], states[2][k]) for k in states[0])
    torch.testing.assert_close(states[1], states[0], rtol=1e-5, atol=1e-6)
    assert first["losses"] == pytest.approx(alone["losses"], rel=1e-6)
    mean = np.mean([first["batch_losses"], second["batch_losses"]], axis=0)
    assert mean == pytest.approx(alone["batch_losses"], rel=1e-6)


def test_train_lm_in_bfloat16_autocast_keeps_float32_weights(monkeypatch):
    """The CUDA mixed-precision path, run on the CPU: bfloat16 logits, finite float32 losses."""
    monkeypatch.setattr(distributed, "autocast", lambda _: torch.autocast("cpu", torch.bfloat16))
    model, start = TINY_LM.build(seed=0), TINY_LM.build(seed=0).state_dict()
    seen = []
    model.register_forward_hook(lambda _, __, out: seen.append((out.logits.dtype, out.loss)))
    windows = np.random.default_rng(0).integers(0, 64, (16, 16))
    lm.train_lm(model, windows, lm.LMTrainConfig(steps=4, batch_size=8))
    assert [dtype for dtype, _ in seen] == [torch.bfloat16] * 4
    assert all(loss.dtype == torch.float32 and torch.isfinite(loss) for _, loss in seen)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert not torch.equal(model.state_dict()["lm_head.weight"], start["lm_head.weight"])
