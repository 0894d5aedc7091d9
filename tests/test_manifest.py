import json
import multiprocessing

import pytest

from pairzoo import manifest
from pairzoo.atomic import atomic_path
from pairzoo.errors import PairzooError


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


def test_schema_relations_are_the_documented_ones():
    relation = manifest.schema()["$defs"]["pair"]["properties"]["relation"]["enum"]
    assert relation == list(manifest.RELATIONS)


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
