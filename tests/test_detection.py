import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pairzoo.archive.validate import validate
from pairzoo.coding import coded_samples
from pairzoo.data.detection import (
    VOC_CLASSES,
    digit_canvases,
    load_detection_task,
    load_voc,
    object_crops,
)
from pairzoo.data.sets import Subset
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import DetectorExporter, float_state
from pairzoo.models.build import build_model
from pairzoo.record import manifest, view
from pairzoo.record.writer import PairWriter, Training
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

from . import fabricate


@pytest.fixture(scope="module")
def canvases(digits):
    return digit_canvases(digits, train=48, test=12, seed=3)


def test_digit_canvases_are_deterministic_and_boxes_fit(digits, canvases):
    again = digit_canvases(digits, train=48, test=12, seed=3)
    other = digit_canvases(digits, train=48, test=12, seed=4)
    for a, b in zip(canvases.train, again.train, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(canvases.train[0].image, other.train[0].image)
    for sample in [*canvases.train, *canvases.test]:
        assert sample.image.shape == (1, 32, 32) and sample.image.dtype == np.float32
        assert 1 <= len(sample.labels) <= 3 and sample.boxes.shape == (len(sample.labels), 4)
        assert np.all(sample.boxes[:, :2] >= 0) and np.all(sample.boxes[:, 2:] <= 32)
        assert np.all(sample.boxes[:, 2:] > sample.boxes[:, :2])
        for x0, y0, x1, y1 in sample.boxes:  # ink inside the box, background just outside
            patch = sample.image[0, int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
            assert patch.max() > 0
    assert canvases.sizes == {"train": 48, "test": 12}


def test_voc_reads_the_devkit_layout(tmp_path):
    voc = load_voc(fabricate.voc(tmp_path).parents[1])
    assert voc.sizes == {"train": 2, "test": 1} and voc.classes == VOC_CLASSES
    sample = voc.train[1]
    assert sample.image.shape == (3, 70, 80) and 0 <= sample.image.min() <= sample.image.max() <= 1
    np.testing.assert_array_equal(sample.boxes, [[10, 5, 50, 40], [29, 19, 79, 59]])
    assert [VOC_CLASSES[i] for i in sample.labels] == ["dog", "car"]  # the difficult one left out
    crops = object_crops(voc, side=16)
    assert crops.x_train.shape == (4, 3, 16, 16) and crops.y_test.tolist() == [11, 6]


def test_missing_or_broken_voc_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("PAIRZOO_DATA", raising=False)
    with pytest.raises(PairzooError, match="VOCdevkit/VOC2012/ with JPEGImages"):
        load_detection_task("full")
    monkeypatch.setenv("PAIRZOO_DATA", str(tmp_path))
    with pytest.raises(PairzooError, match="voc2012 not found.*VOCdevkit"):
        load_detection_task("full")
    root = fabricate.voc(tmp_path).parents[2]
    (root / "voc2012/VOCdevkit/VOC2012/Annotations/2008_000003.xml").write_text("<annotation>")
    with pytest.raises(PairzooError, match="2008_000003.xml is not a VOC annotation"):
        load_voc(root / "voc2012")


def test_detector_backbone_is_the_classifier_and_freezing_keeps_it(canvases):
    base = build_model("digits-cnn", 10, 1, 0)
    detector = build_detector(base, canvases, seed=0)
    tensor_map = reused_tensors(detector, base)
    assert tensor_map["backbone.body.0.0.weight"] == "features.0.0.weight"
    assert tensor_map["backbone.body.3.1.running_var"] == "features.3.1.running_var"
    assert set(tensor_map.values()) == {k for k in float_state(base) if k.startswith("features")}
    before = {k: v.clone() for k, v in float_state(detector).items()}
    freeze(detector, tensor_map)
    train_detector(detector, canvases.train, DetectorConfig(steps=2, batch_size=4))
    after = float_state(detector)
    for name, tensor in after.items():
        assert torch.equal(tensor, before[name]) == (name in tensor_map), name
    found = detect(detector, canvases.test[:3])
    assert len(found) == 3 and set(found[0]) == {"boxes", "scores", "labels"}


def test_map_comes_from_torchmetrics(canvases):
    truth = canvases.test
    perfect = [{"boxes": s.boxes, "scores": np.ones(len(s.labels), np.float32),
                "labels": s.labels} for s in truth]  # fmt: skip
    assert mean_average_precision(perfect, truth) == {"map50": 100.0, "map": 100.0}
    shifted = [{**d, "boxes": d["boxes"] + 1.0} for d in perfect]  # IoU > 0.6 left
    worse = mean_average_precision(shifted, truth)
    assert 0 < worse["map"] < worse["map50"] == 100.0


@pytest.fixture(scope="module")
def detector_files(canvases, tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("det") / "ci"
    writer = PairWriter("det", "ci", digits, folder)
    base = build_model("digits-cnn", 10, 1, 0)
    everything = Subset(1.0, 0, 1)
    training = Training(config={}, subset=everything)
    writer.add_model("base", base, architecture="digits-cnn", training=training,
                     metrics={"top1": 10.0})  # fmt: skip
    detector = build_detector(base, canvases, seed=0)
    tensor_map = reused_tensors(detector, base)
    train_detector(detector, canvases.train, DetectorConfig(steps=2, batch_size=4))
    exporter = DetectorExporter(parity_images(canvases.test, 3))
    training = Training(config={}, subset=everything, start="base")
    writer.add_model("det", detector, architecture="fcos", training=training,
                     metrics={"map": 1.0}, data=canvases, exporter=exporter)  # fmt: skip
    writer.add_pair("base", "det", "backbone-reuse", tensor_map=tensor_map)
    writer.finish()
    return folder, detector, tensor_map


def test_detector_onnx_keeps_names_and_matches_pytorch(detector_files, canvases):
    folder, detector, _ = detector_files
    record = manifest.load(folder)["models"]["det/det"]
    assert record["onnx"]["opset"] == 17 and record["onnx"]["parity"]["sizes"] == [
        [32, 32],
        [48, 64],
    ]
    graph = onnx.load(str(folder / record["files"]["onnx"]["path"])).graph
    initializers = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    for name, tensor in float_state(detector).items():
        np.testing.assert_array_equal(initializers[name], tensor.numpy())
    assert sum(node.op_type == "BatchNormalization" for node in graph.node) == 4
    session = ort.InferenceSession(str(folder / record["files"]["onnx"]["path"]))
    image = np.pad(canvases.test[5].image, ((0, 0), (8, 0), (0, 24)), constant_values=-1.0)
    boxes, scores, labels = session.run(None, {"input": image})
    with torch.no_grad():
        expected = detector.eval()([torch.from_numpy(image)])[0]
    np.testing.assert_array_equal(labels, expected["labels"].numpy())
    assert np.max(np.abs(scores - expected["scores"].numpy()), initial=0) <= 1e-4
    assert np.max(np.abs(boxes - expected["boxes"].numpy()), initial=0) <= 1e-3


def test_pair_records_copied_changed_new_and_validates(detector_files):
    folder, detector, tensor_map = detector_files
    pair = manifest.load(folder)["pairs"]["det/base..det"]
    assert pair["tensor_map"] == dict(sorted(tensor_map.items()))
    reuse = pair["reuse"]
    assert set(reuse["copied"]["tensors"]) | set(reuse["changed"]["tensors"]) == set(tensor_map)
    assert reuse["dropped"]["tensors"] == ["classifier.bias", "classifier.weight"]
    assert reuse["dropped"]["numel"] == 128 * 10 + 10
    new = {k: v for k, v in float_state(detector).items() if k not in tensor_map}
    assert set(reuse["new"]["tensors"]) == set(new)
    assert reuse["new"]["numel"] == sum(v.numel() for v in new.values())
    assert set(pair["stats"]["tensors"]) == set(tensor_map)
    assert pair["structure_change"]["removed"] == ["classifier.bias", "classifier.weight"]
    assert validate(folder) == []


def test_canvases_made_otherwise_are_not_scored_as_the_loaders(detector_files):
    pair = view.open(detector_files[0]).pair("det/base..det")
    assert coded_samples.unscoreable(pair) is None
    with pytest.raises(PairzooError, match="digit-canvases splits .* not those its loader makes"):
        coded_samples.load_pair(pair)


def test_validate_catches_a_false_reuse_claim(detector_files, tmp_path):
    import shutil

    folder = tmp_path / "ci"
    shutil.copytree(detector_files[0], folder)
    entries = manifest.read(folder)
    pair = entries["pairs"]["det/base..det"]
    moved = pair["reuse"]["new"]["tensors"].pop()
    pair["reuse"]["copied"]["tensors"].append(moved)
    (folder / "manifest.json").write_text(json.dumps(entries))
    assert any("reuse groups do not match the files (mapped, new)" in p for p in validate(folder))
    pair["tensor_map"]["backbone.body.9.weight"] = "features.9.weight"
    (folder / "manifest.json").write_text(json.dumps(entries))
    assert any("tensor map names tensors the files lack" in p for p in validate(folder))


def test_resnet_classifier_becomes_an_fpn_backbone(tmp_path):
    classification, voc = None, load_voc(fabricate.voc(tmp_path).parents[1])
    classification = object_crops(voc, side=32)
    base = build_model("resnet18", len(VOC_CLASSES), 3, 0)
    detector = build_detector(base, voc, seed=0)
    tensor_map = reused_tensors(detector, base)
    assert tensor_map["backbone.body.conv1.weight"] == "conv1.weight"
    assert tensor_map["backbone.body.layer4.1.bn2.bias"] == "layer4.1.bn2.bias"
    assert "fc.weight" not in tensor_map.values() and classification.input_shape == (3, 32, 32)
    train_detector(detector, voc.train, DetectorConfig(steps=1, batch_size=2))
    assert len(detect(detector, voc.test)) == 1
