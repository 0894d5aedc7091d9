import zipfile

import jupytext
import papermill
import pytest
from huggingface_hub import ModelCard

from pairzoo.archive.pack import package
from pairzoo.archive.validate import validate
from pairzoo.cli import main
from pairzoo.errors import PairzooError
from pairzoo.record import manifest
from pairzoo.views.catalog import description_md, model_card, pair_rows
from pairzoo.views.lineage import lineage

from .conftest import ROOT


def _execute(recipe, parameters, tmp_path, name):
    """`recipe` executed in the book's kind of kernel (papermill), its output notebook returned."""
    source = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(recipe), source)
    return papermill.execute_notebook(
        str(source),
        str(tmp_path / f"{name}-out.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(recipe.parent),
        progress_bar=False,
    )


def _rename_dataset(folder, name):
    entries = manifest.load(folder)
    entries["datasets"]["sklearn-digits"]["name"] = name
    (folder / manifest.MANIFEST).write_text(manifest.dumps(entries))
    return entries


def test_catalog_page_and_description_follow_the_manifest(folder_copy, tmp_path):
    entries = _rename_dataset(folder_copy, "Digits-Renamed-In-Manifest")
    assert "Digits-Renamed-In-Manifest" in description_md(entries)
    params = {"artifacts": str(folder_copy)}
    out = _execute(ROOT / "notebooks" / "catalog.py", params, tmp_path, "catalog")
    outputs = [o for cell in out.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    texts = [str(o.get("data", {}).get("text/markdown", "")) for o in outputs]
    assert any("Digits-Renamed-In-Manifest" in text for text in texts)
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_lineage_shows_shared_base(built_folder):
    graph = lineage(manifest.load(built_folder))
    assert graph.out_degree("unit/base") == 2
    assert graph.edges["unit/base", "unit/wide"]["relation"] == "transfer-add-classes"
    rows = {row["pair"]: row for row in pair_rows(manifest.load(built_folder))}
    assert rows["unit/base..wide"]["structure"] == "changed"


def test_model_card_names_files_and_training(built_folder):
    card = model_card(manifest.load(built_folder), "unit/updated")
    assert "Trained from unit/base" in card and "unit/updated.onnx" in card


def test_model_card_states_input_slots_test_split_and_parameter_count(built_folder):
    entries = manifest.load(built_folder)
    card = model_card(entries, "unit/wide")
    record, digits = entries["models"]["unit/wide"], entries["datasets"]["sklearn-digits"]
    assert f"{record['parameters']:,} parameters (the number of values in the model's" in card
    assert f"Input: NCHW float32, each [1, 8, 8]: {digits['preprocessing']['description']}" in card
    assert "x / 8 − 1" in card and "Output slots in order: 0, 1, 2, 3, 4, 5, 6 (" in card
    assert f"({digits['splits']['test']['size']} samples): " in card and "random_state=0" in card


def test_model_card_carries_the_hub_metadata(built_folder):
    entries = manifest.load(built_folder)
    data = ModelCard(model_card(entries, "unit/wide")).data
    assert data.base_model == "unit/base" and data.base_model_relation == "finetune"
    assert data.license == "apache-2.0" and data.pipeline_tag == "image-classification"
    assert data.datasets == ["sklearn-digits"]
    assert ModelCard(model_card(entries, "unit/base")).data.base_model is None


def test_package_unpacks_to_a_valid_folder(folder_copy, tmp_path, capsys):
    archive = tmp_path / "set.zip"
    assert main(["package", str(folder_copy), "-o", str(archive)]) == 0
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
        zipped.extractall(tmp_path / "out")
    unpacked = tmp_path / "out" / "pairzoo-ci"
    for name in (
        "manifest.json",
        "SHA256SUMS",
        "DESCRIPTION.md",
        "LICENCE-NOTICE.md",
        "cards/unit/base.md",
        "unit/base.onnx",
        "unit/base.safetensors",
    ):
        assert f"pairzoo-ci/{name}" in names
    assert validate(unpacked) == []
    description = unpacked / "DESCRIPTION.md"
    description.write_text(description.read_text() + "tampered\n")
    assert any("DESCRIPTION.md: sha256 does not match SHA256SUMS" in p for p in validate(unpacked))


def test_package_refuses_an_invalid_folder_and_writes_nothing(folder_copy, tmp_path):
    (folder_copy / "unit" / "base.onnx").unlink()
    with pytest.raises(PairzooError, match="does not validate"):
        package(folder_copy, tmp_path / "set.zip")
    assert not (tmp_path / "set.zip").exists()
