import json

from pairzoo.archive.validate import validate
from pairzoo.cli import main
from pairzoo.record import manifest


def test_built_folder_validates(built_folder, capsys):
    assert validate(built_folder) == []
    assert main(["validate", str(built_folder)]) == 0
    assert "3 models, 2 pairs, 6 files verified" in capsys.readouterr().out


def test_flipped_byte_is_caught(folder_copy, capsys):
    path = folder_copy / "unit" / "updated.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    problems = validate(folder_copy)
    assert any("updated.safetensors: sha256" in p for p in problems)
    assert main(["validate", str(folder_copy)]) == 1
    assert "updated.safetensors" in capsys.readouterr().err


def test_missing_file_is_caught(folder_copy):
    (folder_copy / "unit" / "base.onnx").unlink()
    assert any("base.onnx: missing" in p for p in validate(folder_copy))


def test_false_structure_claim_is_caught(folder_copy):
    entries = manifest.load(folder_copy)
    pair = entries["pairs"]["unit/base..wide"]
    assert pair["structure_change"]["changed"]
    pair["structure_change"] = {"changed": False, "added": [], "removed": [], "reshaped": {}}
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    problems = validate(folder_copy)
    assert any("unit/base..wide: structure change claim is false" in p for p in problems)


def test_onnx_that_does_not_load_is_caught(folder_copy):
    path = folder_copy / "unit" / "wide.onnx"
    path.write_bytes(b"not an onnx file")
    entries = manifest.load(folder_copy)
    entries["models"]["unit/wide"]["files"]["onnx"] = manifest.file_record(path, folder_copy)
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    assert any("wide.onnx: not an ONNX model" in p for p in validate(folder_copy))


def test_cli_reports_user_errors(tmp_path, built_folder, capsys):
    assert main(["show", "nope", str(built_folder)]) == 2
    assert "no model, pair, dataset or metric with id 'nope'" in capsys.readouterr().err
    assert main(["validate", str(tmp_path)]) == 1
    assert "no manifest.json" in capsys.readouterr().err
    assert main(["show", "unit/base..updated", str(built_folder)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["relation"] == "more-data"


def test_onnx_without_framework_names_is_caught_unless_declared(folder_copy):
    import onnx

    path = folder_copy / "unit" / "base.onnx"
    proto = onnx.load(str(path))
    old = proto.graph.initializer[0].name
    for node in proto.graph.node:
        node.input[:] = ["renamed" if name == old else name for name in node.input]
    proto.graph.initializer[0].name = "renamed"
    onnx.save(proto, str(path))
    entries = manifest.load(folder_copy)
    record = entries["models"]["unit/base"]
    record["files"]["onnx"] = manifest.file_record(path, folder_copy)
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    assert any("framework tensors not initializers" in p for p in validate(folder_copy))
    record["onnx"]["initializer_names"] = "exporter"
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    assert validate(folder_copy) == []


def test_a_relation_neither_built_in_nor_declared_and_a_redefined_name_are_problems(folder_copy):
    entries = manifest.load(folder_copy)
    pair = entries["pairs"]["unit/base..updated"]
    pair["relation"], pair["use_case"] = "lora-finetune", "fine-tuned with a LoRA adapter, merged"
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    expected = "pair unit/base..updated: relation 'lora-finetune' neither built-in nor declared"
    assert validate(folder_copy) == [expected]
    entries["declared"] = {"unit": {"relations": {"lora-finetune": pair["use_case"]}}}
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    assert validate(folder_copy) == []
    entries["declared"]["unit"]["relations"]["more-data"] = "more of the same"
    entries["declared"]["unit"]["metrics"] = ["top1"]
    entries["metrics"]["top1"]["unit"] = "fraction"
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    problems = validate(folder_copy)
    assert any(p.startswith("recipe unit: relation 'more-data' is built-in as") for p in problems)
    assert "recipe unit: metric 'top1' is built-in, defined otherwise" in problems
    assert len(problems) == 2
