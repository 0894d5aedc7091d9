import json
import multiprocessing
import re
from dataclasses import replace
from pathlib import Path

import pytest

from pairzoo.archive.validate import check, validate
from pairzoo.atomic import atomic_path
from pairzoo.data.sets import Subset, draw, select_classes
from pairzoo.errors import PairzooError
from pairzoo.models.build import build_model
from pairzoo.models.pretrained import Pretrained
from pairzoo.record import manifest
from pairzoo.record.declarations import Relation
from pairzoo.record.metrics import Metric
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy


def test_written_manifest_satisfies_schema_and_round_trips(built_folder):
    entries = manifest.load(built_folder)
    assert set(entries["models"]) == {"unit/base", "unit/updated", "unit/wide"}
    record = entries["models"]["unit/updated"]
    assert record["training"]["initialised_from"] == "unit/base"
    assert record["files"]["onnx"]["path"] == "unit/updated.onnx"
    assert record["onnx"]["max_abs_diff"] <= 1e-4
    assert json.loads(manifest.dumps(entries)) == entries
    assert manifest.check(json.loads(manifest.dumps(entries))) == entries


def test_schema_rejects_a_model_without_files(built_folder):
    entries = manifest.load(built_folder)
    del entries["models"]["unit/base"]["files"]
    with pytest.raises(PairzooError, match="models/unit/base"):
        manifest.check(entries)


def test_schema_admits_every_built_in_relation_name():
    pattern = manifest.schema()["$defs"]["pair"]["properties"]["relation"]["pattern"]
    assert all(re.match(pattern, name) for name in manifest.RELATIONS)


def test_profile_mismatch_is_refused(tmp_path):
    with manifest.editing(tmp_path, "ci"):
        pass
    with pytest.raises(PairzooError, match="profile 'ci'"):
        with manifest.editing(tmp_path, "full"):
            pass


def _add_metric(args):
    folder, name = args
    for index in range(20):
        with manifest.editing(folder, "ci") as entries:
            entries["metrics"][f"{name}-{index}"] = {
                "name": name,
                "definition": "d",
                "unit": "u",
                "higher_is_better": True,
            }


def test_concurrent_writers_do_not_clobber_each_other(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_add_metric, [(tmp_path, "a"), (tmp_path, "b")])
    metrics = manifest.load(tmp_path)["metrics"]
    assert len(metrics) == 40


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_drawn_subset_carries_its_training_record(digits):
    task = draw(select_classes(digits, [3, 9, 0]), 0.5, 7)
    training = Training.of(task, TrainConfig(epochs=0), start="base")
    assert training.subset == Subset(0.5, 7, len(task.y_train), ("3", "9", "0"))
    assert training.subset.record() == {"fraction": 0.5, "size": len(task.y_train), "seed": 7}
    assert training.start == "base"
    with pytest.raises(PairzooError, match="drawn subset"):
        Training.of(digits, TrainConfig(epochs=0))
    with pytest.raises(PairzooError, match="already a drawn subset"):
        draw(task, 0.5, 7)


def test_a_model_without_parent_gets_the_writers_pretrained_weights(digits, tmp_path, capsys):
    weights = Pretrained("torchvision X", Path("/cache/x.pth"), 70.0)
    writer = PairWriter("unit", "ci", digits, tmp_path / "ci", architecture="digits-cnn",
                        pretrained=weights)  # fmt: skip
    subset = draw(digits, 0.1, 0)
    model = build_model("digits-cnn", 10, 1, 0)
    for name, start in (("root", None), ("child", "root")):
        training = Training.of(subset, TrainConfig(epochs=0), start=start)
        writer.add_model(name, model, training=training, metrics={"top1": 50.0})
    root, child = writer.entries["models"]["unit/root"], writer.entries["models"]["unit/child"]
    assert root["training"]["pretrained"] == weights.record()
    assert "pretrained" not in child["training"]
    assert root["architecture"] == "digits-cnn"
    assert root["training"]["subset"] == {"fraction": 0.1, "size": len(subset.y_train), "seed": 0}
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines] == ["root", "child"]
    assert "top1 50%" in lines[0]


def test_the_writer_refuses_unknown_and_colliding_names_before_it_writes(digits, tmp_path):
    folder = tmp_path / "ci"
    refused = {
        "unknown relation 'lora-finetune': neither built-in nor declared; known are more-data, ": {
            "relations": ["lora-finetune"]
        },
        "relation 'more-data' is built-in": {"relations": [Relation("more-data", "other text")]},
        "describe it in one line": {"relations": [Relation("mine", "two\nlines")]},
        "metric 'top1' is built-in": {"metrics": {"top1": Metric("t", "d", "%", True)}},
        f"dataset {digits.info.id!r} is built-in": {"datasets": [digits.info]},
    }
    for message, declared in refused.items():
        with pytest.raises(PairzooError, match=re.escape(message)):
            PairWriter("own", "ci", digits, folder, architecture="digits-cnn", **declared)
    assert not folder.exists()
    same = Relation("more-data", manifest.RELATIONS["more-data"])
    assert PairWriter("own", "ci", digits, folder, relations=[same]).declared.record() == {}


def test_declared_names_are_entered_and_validated_and_unknown_ones_write_nothing(digits, tmp_path):
    mine = Metric("my score", "a score of my own", "", True)
    relations = ["more-data", Relation("my-relation", "my own relation")]
    writer = PairWriter("own", "ci", digits, tmp_path, architecture="digits-cnn",
                        relations=relations, metrics={"my-score": mine})  # fmt: skip
    model = build_model("digits-cnn", 10, 1, 0)
    training = Training.of(draw(digits, 0.2, 0), TrainConfig(epochs=0, seed=0))
    with pytest.raises(PairzooError, match=re.escape("unknown metrics ['other']")):
        writer.add_model("base", model, training=training, metrics={"other": 1.0})
    assert list(writer.output.stage.iterdir()) == []
    metrics = {"top1": accuracy(model, digits.x_test, digits.y_test), "my-score": 1.0}
    for name in ("base", "updated"):
        writer.add_model(name, model, training=training, metrics=metrics)
    with pytest.raises(PairzooError, match="'lora-adapter': this writer's are"):
        writer.add_pair("base", "updated", "lora-adapter")
    writer.add_pair("base", "updated", "my-relation")
    writer.finish()
    entries = manifest.load(tmp_path)
    own = {"relations": {"my-relation": "my own relation"}, "metrics": ["my-score"]}
    assert entries["declared"] == {"own": own}
    assert entries["metrics"]["my-score"] == mine.record()
    assert entries["pairs"]["own/base..updated"]["use_case"] == "my own relation"
    assert validate(tmp_path) == []
    PairWriter("own", "ci", digits, tmp_path).finish()  # a rerun without declarations
    assert "declared" not in manifest.load(tmp_path)


def test_a_name_another_recipe_declared_otherwise_is_refused(digits, tmp_path):
    PairWriter("first", "ci", digits, tmp_path, relations=[Relation("mine", "one thing")]).finish()
    with pytest.raises(PairzooError, match="relation 'mine' is declared by first as 'one thing'"):
        PairWriter("second", "ci", digits, tmp_path, relations=[Relation("mine", "another")])
    PairWriter("second", "ci", digits, tmp_path, relations=[Relation("mine", "one thing")]).finish()
    assert set(manifest.load(tmp_path)["declared"]) == {"first", "second"}


def test_a_declared_dataset_is_recorded_and_an_undeclared_one_refused(digits, tmp_path):
    mine = replace(digits, info=replace(digits.info, id="my-digits", name="my digits"))
    other = replace(digits, info=replace(digits.info, id="other-digits"))
    with pytest.raises(PairzooError, match="unknown dataset 'other-digits': neither built-in nor"):
        PairWriter("own", "ci", other, tmp_path, datasets=[mine.info])
    assert list(tmp_path.iterdir()) == []
    writer = PairWriter("own", "ci", mine, tmp_path, architecture="digits-cnn",
                        datasets=[mine.info])  # fmt: skip
    model = build_model("digits-cnn", 10, 1, 0)
    training = Training.of(draw(mine, 0.2, 0), TrainConfig(epochs=0, seed=0))
    metrics = {"top1": accuracy(model, mine.x_test, mine.y_test)}
    with pytest.raises(PairzooError, match="'other-digits'"):
        writer.add_model("base", model, training=training, metrics=metrics, data=other)
    assert list(writer.output.stage.iterdir()) == []
    writer.add_model("base", model, training=training, metrics=metrics)
    writer.finish()
    entries = manifest.load(tmp_path)
    assert entries["declared"] == {"own": {"datasets": ["my-digits"]}}
    assert entries["datasets"]["my-digits"]["name"] == "my digits"
    report = check(tmp_path)
    assert report.problems == [] and "no loader for dataset 'my-digits'" in report.warnings[0]
