"""The transfer-learning recipes run as plain python; their pairs and the checks on them."""

import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from pairzoo.archive.validate import validate
from pairzoo.coding import coded_samples
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import load_tensors
from pairzoo.export.initializer_map import placed
from pairzoo.record import manifest, view

from .conftest import ROOT

HEADS = {"transfer_classes": "classifier.weight", "keras_transfer": "head/kernel"}


def _run(recipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp(recipe)
    env = {**os.environ, "PAIRZOO_ARTIFACTS": str(folder), "MPLBACKEND": "Agg"}
    subprocess.run(
        [sys.executable, f"notebooks/{recipe}.py"], cwd=ROOT, env=env, check=True, timeout=600
    )
    return folder / "ci"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Output folder of a recipe run as plain python with its defaults (each run once)."""
    folders = {}

    def folder(recipe):
        if recipe not in folders:
            folders[recipe] = _run(recipe, tmp_path_factory)
        return folders[recipe]

    return folder


@pytest.fixture(params=sorted(HEADS))
def transfer(request, outputs):
    return request.param, outputs(request.param)


def _tampered(folder, tmp_path, entries):
    copy = shutil.copytree(folder, tmp_path / "ci")
    (copy / "manifest.json").write_text(manifest.dumps(entries))
    return copy


def test_pairs_record_structure_change_and_forgetting(transfer):
    recipe, folder = transfer
    assert validate(folder) == []
    entries = manifest.load(folder)
    pairs = {k.split("..")[1]: v for k, v in entries["pairs"].items()}
    assert set(pairs) == {"exchange-1", "exchange-2", "add-head", "add-whole"}
    assert all(p["base"] == f"{recipe}/base" for p in pairs.values())
    for name in ("exchange-1", "exchange-2"):
        assert pairs[name]["relation"] == "transfer-exchange-classes"
        assert not pairs[name]["structure_change"]["changed"]
    head = HEADS[recipe]
    for name in ("add-head", "add-whole"):
        pair = pairs[name]
        assert pair["relation"] == "transfer-add-classes"
        assert set(pair["structure_change"]["reshaped"]) == set(pair["correspondence"])
        assert head in pair["correspondence"]
        known = pair["metrics"]["top1-known-classes"]
        assert known["classes"] == [str(c) for c in range(8)]
        assert 0 <= known["updated"] <= 100
    assert pairs["exchange-2"]["metrics"]["top1-known-classes"]["classes"] == list("012345")
    head_only = pairs["add-head"]["stats"]["tensors"]
    whole = pairs["add-whole"]["stats"]["tensors"]
    assert head_only and all(change["changed"] == 0 for change in head_only.values())
    assert any(change["changed"] > 0 for change in whole.values())
    models = entries["models"]
    assert len(models[f"{recipe}/add-whole"]["classes"]) == 10
    assert models[f"{recipe}/exchange-1"]["classes"][-1] == "9"


def test_correspondence_is_the_base_tensor_before_fine_tuning(transfer):
    """The recorded block and its change statistics agree with the safetensors files."""
    recipe, folder = transfer
    entries = manifest.load(folder)
    head = HEADS[recipe]
    pair = entries["pairs"][f"{recipe}/base..add-head"]
    block = pair["correspondence"][head]
    files = {name: entries["models"][f"{recipe}/{name}"]["files"] for name in ("base", "add-head")}
    tensors = {name: load_tensors(folder / f["safetensors"]["path"]) for name, f in files.items()}
    region = tensors["add-head"][head][tuple(slice(a, b) for a, b in block["slices"])]
    assert region.shape == tensors["base"][head].shape
    delta = np.linalg.norm(region.astype(np.float64) - tensors["base"][head])
    assert block["change"]["l2_delta"] == pytest.approx(delta, rel=1e-6)


def test_false_no_structure_change_claim_is_caught(transfer, tmp_path):
    recipe, folder = transfer
    entries = manifest.load(folder)
    pair = entries["pairs"][f"{recipe}/base..add-whole"]
    pair["structure_change"] = {"changed": False, "added": [], "removed": [], "reshaped": {}}
    problems = validate(_tampered(folder, tmp_path, entries))
    assert any(f"{recipe}/base..add-whole: structure change claim is false" in p for p in problems)


def test_wrong_correspondence_is_caught(transfer, tmp_path):
    recipe, folder = transfer
    entries = manifest.load(folder)
    block = entries["pairs"][f"{recipe}/base..add-head"]["correspondence"][HEADS[recipe]]
    block["slices"] = [[a + 3, b + 3] for a, b in block["slices"]]
    problems = validate(_tampered(folder, tmp_path, entries))
    assert any(f"correspondence of {HEADS[recipe]}" in p for p in problems)


def test_keras_files_agree(outputs, digits):
    """The `.keras` model reloads, matches its ONNX in onnxruntime and its safetensors by name."""
    folder = outputs("keras_transfer")
    from pairzoo.keras.export import keras_state
    from pairzoo.keras.models import load_keras

    keras = load_keras()
    record = manifest.load(folder)["models"]["keras_transfer/add-whole"]
    assert record["framework"] == "keras" and record["onnx"]["initializer_names"] == "mapped"
    model = keras.saving.load_model(folder / record["files"]["keras"]["path"])
    stored = load_tensors(folder / record["files"]["safetensors"]["path"])
    state = keras_state(model)
    assert set(state) == set(stored)
    for name, array in state.items():
        np.testing.assert_array_equal(array, stored[name])
    session = ort.InferenceSession(str(folder / record["files"]["onnx"]["path"]))
    x = digits.x_test[:50]
    ours = session.run(None, {"input": x})[0]
    assert ours.shape == (50, 10)
    assert np.max(np.abs(ours - np.asarray(model(x, training=False)))) <= 1e-4


KERAS_UPDATES = ("exchange-1", "exchange-2", "add-head", "add-whole")


@pytest.fixture(scope="module")
def keras_zoo(outputs):
    return view.open(outputs("keras_transfer"))


@pytest.mark.parametrize("name", KERAS_UPDATES)
def test_keras_update_scores_through_its_initializer_map(keras_zoo, name):
    """The map places every safetensors tensor; fed by it, the ONNX gives the recorded top-1."""
    pair = keras_zoo.pair(f"keras_transfer/base..{name}")
    model = pair.updated
    record, tensors = model.record, model.tensors()
    initializer_map = record["onnx"]["initializer_map"]
    assert record["onnx"]["initializer_names"] == "mapped" and set(initializer_map) == set(tensors)
    assert initializer_map["block3_conv/kernel"]["perm"] == [3, 2, 0, 1]
    assert coded_samples.unscoreable(pair) is None
    measurement = record["metrics"]["top1"]
    split = coded_samples.measured_split(measurement)
    evaluate = OnnxEvaluator(model.read("onnx"), split, "top1", initializer_map=initializer_map)
    # the same images right; Keras and the scorer only round the percentage differently
    assert evaluate(tensors) == pytest.approx(measurement["value"], abs=1e-9)
    assert evaluate() == evaluate(tensors)
    zeroed = {**tensors, "block3_conv/kernel": np.zeros_like(tensors["block3_conv/kernel"])}
    assert evaluate(zeroed) < measurement["value"] - 50  # every image gets the same logits


def test_wrong_perm_in_the_initializer_map_is_caught(outputs, tmp_path):
    folder = outputs("keras_transfer")
    entries = manifest.load(folder)
    initializer_map = entries["models"]["keras_transfer/add-whole"]["onnx"]["initializer_map"]
    initializer_map["block2_conv/kernel"]["perm"] = [3, 2, 1, 0]  # the kernel's 3 × 3 transposed
    initializer_map["block3_conv/kernel"]["perm"] = [0, 1]
    problems = validate(_tampered(folder, tmp_path, entries))
    wrong = [p for p in problems if "initializers differ from the safetensors" in p]
    assert len(wrong) == 1 and "block2_conv/kernel" in wrong[0] and "block3_conv/kernel" in wrong[0]


def test_mapped_initializers_need_their_map(outputs):
    entries = manifest.load(outputs("keras_transfer"))
    del entries["models"]["keras_transfer/base"]["onnx"]["initializer_map"]
    with pytest.raises(PairzooError, match="initializer_map"):
        manifest.check(entries)


def test_initializer_map_follows_the_graph_not_equal_values(digits):
    """A fresh model's BatchNorm has gamma = variance = 1 and beta = mean = 0: values cannot tell
    them apart, the map can. New values placed by it give what Keras gives with them."""
    from pairzoo.keras.export import keras_parity, keras_state, keras_to_onnx
    from pairzoo.keras.models import build_model

    model = build_model("keras-digits-cnn", 10, digits.input_shape, 0)
    proto, initializer_map = keras_to_onnx(model)
    assert len({entry["initializer"] for entry in initializer_map.values()}) == len(model.weights)
    rng = np.random.default_rng(0)
    new = {
        n: rng.uniform(0.5, 1.5, t.shape).astype(np.float32) for n, t in keras_state(model).items()
    }
    for weight in model.weights:
        weight.assign(new[weight.path])
    initializers = {init.name: init for init in proto.graph.initializer}
    for name, entry in initializer_map.items():
        held = initializers[entry["initializer"]]
        held.CopyFrom(onnx.numpy_helper.from_array(placed(new[name], entry), held.name))
    parity = keras_parity(proto, model, digits.x_test[:64])
    assert parity.max_abs_diff <= 1e-5 * max(parity.output_scale, 10.0)
