"""`pairzoo package` and `pairzoo validate ARCHIVE.zip`: reproducible, streamed, read in place."""

import json
import os
import zipfile

import pytest

from pairzoo.archive.pack import PARTIAL, package
from pairzoo.archive.validate import check, validate
from pairzoo.cli import main
from pairzoo.record import manifest


def test_archive_is_byte_reproducible_and_validates_in_place(folder_copy, tmp_path, capsys):
    first, second = (
        package(folder_copy, tmp_path / "a.zip"),
        package(folder_copy, tmp_path / "b.zip"),
    )
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zipped:
        infos = zipped.infolist()
    names = [i.filename for i in infos]
    assert names[-1] == "pairzoo-ci/SHA256SUMS" and names[:-1] == sorted(names[:-1])
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert main(["validate", str(first)]) == 0
    assert "3 models, 2 pairs, 6 files verified, 3 metrics re-scored" in capsys.readouterr().out
    assert not list(tmp_path.glob(f"*{PARTIAL}"))


def test_a_stale_partial_is_replaced_and_a_failed_run_leaves_nothing(folder_copy, tmp_path):
    target = tmp_path / "set.zip"
    stale = tmp_path / f"set.zip{PARTIAL}"
    stale.write_bytes(b"left by a killed run")
    package(folder_copy, target)
    assert not stale.exists() and validate(target) == []
    (folder_copy / "unit" / "wide.onnx").write_bytes(b"changed")
    with pytest.raises(Exception, match="does not validate"):
        package(folder_copy, tmp_path / "other.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ci", "set.zip"]


def test_package_names_a_directory_or_an_invalid_folder(folder_copy, tmp_path, capsys):
    assert main(["package", str(folder_copy), "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    (folder_copy / "unit" / "base.onnx").unlink()
    assert main(["package", str(folder_copy), "-o", str(tmp_path / "x.zip")]) == 1
    assert "base.onnx: missing" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "absent")]) == 2


def test_package_writes_only_manifest_files_inside_its_folder(folder_copy, tmp_path):
    """A free-form dataset entry with a hostile path is not a file record: never read or written."""
    entries = manifest.load(folder_copy)
    entries["datasets"]["sklearn-digits"]["extra"] = {"path": "../../../../x/P.txt", "sha256": "0"}
    (folder_copy / manifest.MANIFEST).write_text(manifest.dumps(entries))
    archive = package(folder_copy, tmp_path / "out" / "deep" / "set.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert not [n for n in zipped.namelist() if "P.txt" in n or ".." in n]
    assert not list(tmp_path.rglob("P.txt"))


def test_package_refuses_a_symbolic_link(folder_copy, tmp_path):
    path = folder_copy / "unit" / "base.onnx"
    path.rename(tmp_path / "outside.onnx")
    os.symlink(tmp_path / "outside.onnx", path)
    with pytest.raises(Exception, match="symbolic link"):
        package(folder_copy, tmp_path / "set.zip")
    assert not (tmp_path / "set.zip").exists()


def test_a_file_the_manifest_does_not_name_is_a_warning(folder_copy, capsys):
    (folder_copy / "unit" / "notes.txt").write_text("hello")
    report = check(folder_copy)
    assert report.problems == []
    assert report.warnings == [f"{folder_copy}/unit/notes.txt: a file the manifest does not name"]
    assert main(["validate", str(folder_copy)]) == 0
    assert "warning:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 64 levels deep"),
        (b'{"schema": "\xff"}', "is not UTF-8 text"),
        (b" " * (manifest.MAX_BYTES + 1), "larger than the limit"),
    ],
)
def test_an_unreadable_manifest_is_one_line(folder_copy, capsys, content, expected):
    (folder_copy / manifest.MANIFEST).write_bytes(content)
    assert main(["validate", str(folder_copy)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_model_without_safetensors_is_refused_by_the_schema(folder_copy):
    entries = json.loads((folder_copy / manifest.MANIFEST).read_text())
    del entries["models"]["unit/base"]["files"]["safetensors"]
    (folder_copy / manifest.MANIFEST).write_text(json.dumps(entries))
    assert any("'safetensors' is a required property" in p for p in validate(folder_copy))
