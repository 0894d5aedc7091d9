import numpy as np
import pytest

import pairzoo
from pairzoo.archive.pack import package
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import load_tensors, stored_dtypes
from pairzoo.record import manifest, view


def test_open_lists_models_and_pairs_by_recipe_and_relation(built_folder):
    zoo = pairzoo.open(built_folder)
    assert [m.id for m in zoo.models()] == ["unit/base", "unit/updated", "unit/wide"]
    assert zoo.models(recipe="other") == []
    assert [p.id for p in zoo.pairs(recipe="unit")] == ["unit/base..updated", "unit/base..wide"]
    (pair,) = zoo.pairs(relation="transfer-add-classes")
    assert (pair.base.id, pair.updated.id) == ("unit/base", "unit/wide")
    assert pair.structure_change["changed"] is True
    assert zoo.pairs(recipe="unit", relation="more-data")[0].structure_change["changed"] is False


def test_a_models_files_and_tensors(built_folder):
    model = pairzoo.open(built_folder).model("unit/updated")
    path = model.path("safetensors")
    assert path == built_folder / model.file("safetensors")["path"]
    assert model.name == "updated" and model.recipe == "unit"
    tensors = model.tensors()
    expected = load_tensors(path)
    assert list(tensors) == sorted(expected)
    assert all(np.array_equal(tensors[k], expected[k]) for k in expected)
    assert model.stored_dtypes() == stored_dtypes(path) == {"F32"}
    assert model.read("onnx") == model.path("onnx").read_bytes()
    with pytest.raises(PairzooError, match="no keras file"):
        model.file("keras")


def test_unknown_ids_are_errors(built_folder):
    zoo = pairzoo.open(built_folder)
    with pytest.raises(PairzooError, match="no model 'unit/none'"):
        zoo.model("unit/none")
    with pytest.raises(PairzooError, match="no pair"):
        zoo.pair("unit/a..b")


@pytest.mark.parametrize("hostile", ["../outside.safetensors", "/etc/passwd", "a/./b"])
def test_a_hostile_path_is_refused_through_the_view(folder_copy, hostile):
    entries = manifest.load(folder_copy)
    entries["models"]["unit/base"]["files"]["safetensors"]["path"] = hostile
    (folder_copy / manifest.MANIFEST).write_text(manifest.dumps(entries))
    with pytest.raises(PairzooError, match="invalid manifest"):
        pairzoo.open(folder_copy)
    base = view.of(folder_copy, entries).pair("unit/base..updated").base  # unchecked entries
    for read in (base.tensors, base.stored_dtypes, lambda: base.path("safetensors")):
        with pytest.raises(PairzooError, match="refused"):
            read()


def test_a_linked_file_is_refused_through_the_view(folder_copy, tmp_path):
    entries = manifest.load(folder_copy)
    target = folder_copy / entries["models"]["unit/base"]["files"]["safetensors"]["path"]
    outside = tmp_path / "outside.safetensors"
    target.rename(outside)
    target.symlink_to(outside)
    with pytest.raises(PairzooError, match="symbolic link"):
        pairzoo.open(folder_copy).model("unit/base").tensors()


def test_an_invalid_manifest_is_refused(folder_copy):
    entries = manifest.load(folder_copy)
    del entries["models"]["unit/base"]["files"]
    (folder_copy / manifest.MANIFEST).write_text(manifest.dumps(entries))
    with pytest.raises(PairzooError, match="invalid manifest"):
        pairzoo.open(folder_copy)


def test_an_archive_is_read_in_place(built_folder, tmp_path):
    archive = package(built_folder, tmp_path / "set.zip")
    with pairzoo.open(archive) as zoo:
        model = zoo.pair("unit/base..updated").updated
        expected = pairzoo.open(built_folder).model(model.id).tensors()
        tensors = model.tensors()
        assert all(np.array_equal(tensors[k], expected[k]) for k in expected)
        with pytest.raises(PairzooError, match="an archive has no file paths"):
            model.path("onnx")


def test_of_wraps_entries_a_recipe_holds(built_folder):
    zoo = view.of(built_folder, manifest.load(built_folder))
    assert zoo.profile == "ci" and len(zoo.models()) == 3
