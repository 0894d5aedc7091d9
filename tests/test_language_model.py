"""The language-model plumbing on a tiny model: tokenizer, ONNX parity, LoRA, bfloat16, scoring."""

import copy

import numpy as np
import onnx
import pytest
import torch
from huggingface_hub import ModelCard

from pairzoo.archive import claims
from pairzoo.archive.validate import validate
from pairzoo.coding import coded_samples
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.data.loading import load_by_id
from pairzoo.data.sets import Subset
from pairzoo.data.text import load_text, pydoc_topics, stdlib_source, train_tokenizer
from pairzoo.export.exporters import SOURCE_METADATA, load_tensors, stored_dtypes
from pairzoo.record import manifest, view
from pairzoo.record.writer import PairMeasurement, PairWriter, Training
from pairzoo.steps import language_models as lm
from pairzoo.views.catalog import model_card

VOCAB, CONTEXT, RANK = 300, 16, 2
TINY = lm.LMConfig(VOCAB, 32, 64, 1, 2, CONTEXT)


def test_tokenizer_round_trip_and_determinism():
    tokenizer = train_tokenizer(VOCAB)
    for corpus in (pydoc_topics(), stdlib_source()):
        text = corpus.text("test")[:20000]
        assert tokenizer.decode(tokenizer.encode(text).ids) == text
    train_tokenizer.cache_clear()
    assert train_tokenizer(VOCAB).to_str() == tokenizer.to_str()


def test_splits_are_disjoint_and_rebuilt_by_id():
    corpus = pydoc_topics()
    train, test = corpus.split("train"), corpus.split("test")
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(corpus.documents)
    data = load_text("pydoc-topics", VOCAB, CONTEXT)
    again = load_by_id(data.info.id)
    assert np.array_equal(again.x_test, data.x_test) and data.x_test.dtype == np.int64
    assert data.input_shape == (CONTEXT,)


@pytest.fixture(scope="module")
def lm_folder(tmp_path_factory):
    """A folder with a tiny base, a LoRA adapter, its merged model and a bfloat16 pair."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("lm") / "ci"
    prose = load_text("pydoc-topics", VOCAB, CONTEXT)
    code = load_text("python-stdlib-source", VOCAB, CONTEXT)
    writer = PairWriter("lm", "ci", prose, folder, architecture="tiny")
    exporter = lm.CausalLMExporter(prose.x_test[:4])
    config = lm.LMTrainConfig(steps=3, seed=0)
    models = {}

    def add(name, model, data, start=None):
        models[name] = model
        subset = Subset(1.0, 0, len(data.x_train))
        training = Training(config=config.record(), subset=subset, start=start)
        lm.add_language_model(
            writer,
            name,
            model,
            exporter,
            training=training,
            metrics=lm.lm_metrics(model, data.x_test),
            data=data,
        )

    base = lm.train_lm(TINY.build(0), prose.x_train[:64], config)
    add("base", base, prose)
    adapted = lm.train_lm(lm.add_lora(base, RANK, 1), code.x_train[:64], config)
    add("lora", adapted, code, "base")
    writer.add_pair("base", "lora", "lora-adapter")
    add("merged", copy.deepcopy(adapted).merge_and_unload(), code, "base")
    forgetting = PairMeasurement(1.0, 2.0, None)
    writer.add_pair("base", "merged", "lora-merged", metrics={"perplexity-base-domain": forgetting})
    add("base-bf16", lm.to_bfloat16(base), prose, "base")
    add("merged-bf16", lm.to_bfloat16(models["merged"]), code, "merged")
    writer.add_pair("base-bf16", "merged-bf16", "other-data")
    writer.finish()
    return folder, models


def test_folder_validates_and_onnx_matches_pytorch(lm_folder):
    folder, _ = lm_folder
    assert validate(folder) == []
    entries = manifest.load(folder)
    for record in entries["models"].values():
        assert record["onnx"]["max_abs_diff"] <= 1e-5 * max(record["onnx"]["output_scale"], 10)
        nodes = onnx.load(folder / record["files"]["onnx"]["path"]).graph.node
        assert all(p.key != SOURCE_METADATA for n in nodes for p in n.metadata_props)  # no paths


def test_adapter_adds_its_tensors_and_the_merged_delta_is_low_rank(lm_folder):
    folder, _ = lm_folder
    entries = manifest.load(folder)
    adapter = entries["pairs"]["lm/base..lora"]["structure_change"]
    base = load_tensors(folder / entries["models"]["lm/base"]["files"]["safetensors"]["path"])
    lora = load_tensors(folder / entries["models"]["lm/lora"]["files"]["safetensors"]["path"])
    assert adapter["changed"] and not adapter["removed"] and not adapter["reshaped"]
    assert adapter["added"] == lm.adapter_tensors(lora) and len(adapter["added"]) == 14
    assert all(np.array_equal(base[k], lora[k]) for k in base)  # the base is untouched
    merged_pair = entries["pairs"]["lm/base..merged"]
    assert not merged_pair["structure_change"]["changed"]
    assert "classes" not in merged_pair["metrics"]["perplexity-base-domain"]
    merged = load_tensors(folder / entries["models"]["lm/merged"]["files"]["safetensors"]["path"])
    ranks = {k: lm.delta_rank(base[k], merged[k]) for k in base if base[k].ndim == 2}
    targets = [k for k in ranks if any(layer in k for layer in lm.LINEAR_LAYERS)]
    assert targets and all(1 <= ranks[k] <= RANK for k in targets)
    assert all(ranks[k] == 0 for k in ranks if k not in targets)  # embeddings and head


def test_bfloat16_is_stored_as_such_and_widened_exactly(lm_folder):
    folder, models = lm_folder
    entries = manifest.load(folder)
    record = entries["models"]["lm/base-bf16"]
    path = folder / record["files"]["safetensors"]["path"]
    assert stored_dtypes(path) == {"BF16"} and record["dtype"] == "bfloat16"
    widened = load_tensors(path)
    expected = lm.model_tensors(lm.to_bfloat16(models["base"]))
    assert all(widened[k].dtype == np.float32 for k in widened)
    assert all(np.array_equal(widened[k], expected[k].float().numpy()) for k in expected)
    pair, _ = coded_samples.load_pair(view.of(folder, entries).pair("lm/base-bf16..merged-bf16"))
    assert pair.widened == ("lm/base-bf16", "lm/merged-bf16")


@pytest.mark.parametrize("model", ["base", "lora", "merged-bf16"])
def test_framework_free_scorer_reproduces_the_recorded_metrics(lm_folder, model):
    folder, _ = lm_folder
    record = manifest.load(folder)["models"][f"lm/{model}"]
    data = load_by_id(record["metrics"]["perplexity"]["dataset"])
    for metric in ("perplexity", "next-token-top1"):
        score = OnnxEvaluator(folder / record["files"]["onnx"]["path"], data, metric)
        assert score() == pytest.approx(record["metrics"][metric]["value"], rel=1e-5, abs=1e-4)


def test_cards_name_the_base_and_the_relation_for_the_hub(lm_folder):
    folder, _ = lm_folder
    entries = manifest.load(folder)
    relations = {
        "lm/lora": ("adapter", "peft"),
        "lm/merged": ("finetune", "pytorch"),
        "lm/base-bf16": ("quantized", "pytorch"),
    }
    for model_id, (relation, library) in relations.items():
        data = ModelCard(model_card(entries, model_id)).data
        assert data.base_model_relation == relation and data.library_name == library
        assert data.pipeline_tag == "text-generation" and data.base_model


def test_a_rescored_perplexity_may_differ_in_its_last_digits_only(lm_folder):
    folder, _ = lm_folder
    record = copy.deepcopy(manifest.load(folder)["models"]["lm/base"])
    onnx_bytes = (folder / record["files"]["onnx"]["path"]).read_bytes()
    claimed = record["metrics"]["perplexity"]["value"]
    found = {}
    for change in (3e-6, 1e-3):  # rounding on another device; a model that is not this one
        record["metrics"]["perplexity"]["value"] = claimed * (1 + change)
        found[change] = claims.metric_problems("lm/base", record, onnx_bytes)[0]
    assert found[3e-6] == []
    assert [p.split(" re-scored")[0] for p in found[1e-3]] == ["model lm/base: perplexity"]
