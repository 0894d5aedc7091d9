"""The manifest alone scores a model: preprocessing, test rows, class slots, parameter count."""

import json

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.numpy import load_file
from sklearn.datasets import load_digits as sklearn_digits

from pairzoo.architectures import IMAGENET_SIDE
from pairzoo.data.detection import VOC2012, digit_canvases, object_crops
from pairzoo.data.image_files import evaluation_preprocessing
from pairzoo.data.imagenet import IMAGENET
from pairzoo.data.sets import CIFAR10, CIFAR100, unit_pixels
from pairzoo.data.text import load_text
from pairzoo.export.exporters import float_state
from pairzoo.models.build import build_model
from pairzoo.record import manifest


def _check_dataset(record):
    schema = manifest.schema()
    jsonschema.validate(record, {"$ref": "#/$defs/dataset", "$defs": schema["$defs"]})


def test_every_dataset_records_its_preprocessing_by_the_schema(digits):
    canvases = digit_canvases(digits, train=4, test=4)
    crops = object_crops(canvases, side=16)
    text = load_text("pydoc-topics", 300, 16)
    for data in (digits, canvases, crops, text):
        record = data.info.record(data.sizes, data.classes)
        _check_dataset(record)
        assert record["preprocessing"]["layout"] and record["preprocessing"]["description"]
    for info in (CIFAR10, CIFAR100, IMAGENET, VOC2012):
        _check_dataset(info.record({"train": 1, "test": 1}, ["a"]))
    assert text.info.record(text.sizes, ())["preprocessing"]["layout"].startswith("int64")
    imagenet = IMAGENET.preprocessing.record()
    assert imagenet == evaluation_preprocessing(IMAGENET_SIDE).record()
    assert (imagenet["resize"], imagenet["crop"]) == (256, 224)
    # canvases are digits in the digits' units; their crops are normalised as the detector does
    assert crops.info.preprocessing.normalisation == digits.info.preprocessing.normalisation


def test_the_recorded_normalisation_is_what_the_loaders_apply(digits):
    raw = sklearn_digits().images[list(digits.info.rows["test"])]
    normalisation = digits.info.preprocessing.normalisation
    assert np.array_equal(normalisation.apply(raw[:, None]), digits.x_test)
    assert np.array_equal(digits.x_test, (raw[:, None].astype(np.float32) / 8 - 1))
    np.testing.assert_allclose(unit_pixels(digits.info.id, digits.x_test), raw[:, None] / 16)


def _top1_from_the_manifest(entries, folder, model_id):
    """Top-1 of a model's ONNX on sklearn's raw digits, with nothing but the manifest's words."""
    model = entries["models"][model_id]
    measured = model["metrics"]["top1"]
    dataset = entries["datasets"][measured["dataset"]]
    assert dataset["preprocessing"]["layout"] == "NCHW float32"
    norm = dataset["preprocessing"]["normalisation"]
    rows = dataset["splits"][measured["split"]]["rows"]
    bunch = sklearn_digits()
    stored = bunch.images[rows][:, None].astype(np.float32)
    mean = np.array(norm["mean"], np.float32)[:, None, None]
    std = np.array(norm["std"], np.float32)[:, None, None]
    x = (stored / np.float32(norm["divisor"]) - mean) / std
    names = [dataset["classes"][label] for label in bunch.target[rows]]
    counted = np.array([n in measured.get("classes", dataset["classes"]) for n in names])
    slots = np.array([model["classes"].index(n) for n in np.array(names)[counted]])
    session = ort.InferenceSession(folder / model["files"]["onnx"]["path"])
    logits = session.run(None, {session.get_inputs()[0].name: x[counted]})[0]
    return 100.0 * float(np.mean(logits.argmax(1) == slots)), measured["value"]


@pytest.mark.parametrize("model_id", ["unit/base", "unit/updated"])
def test_a_model_is_scored_from_the_manifest_alone(built_folder, model_id):
    entries = json.loads((built_folder / "manifest.json").read_text())
    ours, recorded = _top1_from_the_manifest(entries, built_folder, model_id)
    assert ours == pytest.approx(recorded, abs=1e-9)


def test_classes_name_every_output_slot(built_folder):
    entries = manifest.load(built_folder)
    for model_id, record in entries["models"].items():
        proto = onnx.load(built_folder / record["files"]["onnx"]["path"])
        slots = proto.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
        assert slots == len(record["classes"]), model_id
        assert set(record["classes"]) <= set(entries["datasets"]["sklearn-digits"]["classes"])


def test_parameters_are_the_values_in_the_safetensors(built_folder):
    entries = manifest.load(built_folder)
    for record in entries["models"].values():
        tensors = load_file(built_folder / record["files"]["safetensors"]["path"])
        assert record["parameters"] == sum(t.size for t in tensors.values())
    model = build_model("digits-cnn", 10, 1, 0)
    trainable = sum(p.numel() for p in model.parameters())
    stored = sum(t.numel() for t in float_state(model).values())
    assert entries["models"]["unit/base"]["parameters"] == stored > trainable
    integers = [n for n, t in model.state_dict().items() if t.dtype == torch.int64]
    assert integers and not set(integers) & set(load_file(built_folder / "unit/base.safetensors"))
