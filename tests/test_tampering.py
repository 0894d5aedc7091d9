"""Each named tampering of a real coded folder, or of its packaged archive, must be reported."""

import os
import shutil
import zipfile

import onnx
import pytest
from onnx import helper

from pairzoo.archive.pack import package
from pairzoo.archive.validate import validate
from pairzoo.record import manifest

from .test_coded_samples import coded_folder  # noqa: F401 (a fixture)

BASE, UPDATED = "unit/base", "unit/updated"
PAIR = "unit/base..updated"
BITSTREAM = "update_coding/unit/base..updated/incremental/update.nnc"


def _edit(folder, change):
    entries = manifest.read(folder)
    change(entries)
    (folder / manifest.MANIFEST).write_text(manifest.dumps(entries))


def _rerecord(folder, model_id, kind):
    """Record a replaced file's sha256 and bytes, as a tamperer covering their tracks would."""
    path = folder / f"{model_id}.{kind}"

    def change(entries):
        entries["models"][model_id]["files"][kind] = manifest.file_record(path, folder)

    _edit(folder, change)


def _flip(folder, name):
    path = folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _flip_manifest_hash(folder):
    """A byte flip that lands in a file's sha256 (one in free text needs SHA256SUMS: archive)."""
    path = folder / manifest.MANIFEST
    data = bytearray(path.read_bytes())
    at = data.index(b'"sha256": "', data.index(b'"models": {')) + len(b'"sha256": "')
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    path.write_bytes(bytes(data))


def _truncate(folder, name):
    path = folder / name
    path.write_bytes(path.read_bytes()[:-7])


def _delete(folder, name):
    (folder / name).unlink()


def _stats(field, factor):
    def change(entries):
        total = entries["pairs"][PAIR]["stats"]["total"]
        total[field] = total[field] * factor if factor else 0.5

    return lambda folder: _edit(folder, change)


def _sample(field, value):
    def change(entries):
        entries["codings"][PAIR]["samples"]["incremental"][field] = value

    return lambda folder: _edit(folder, change)


def _metric(folder):
    def change(entries):
        entries["models"][UPDATED]["metrics"]["top1"]["value"] = 12.5

    _edit(folder, change)


def _swap(kind):
    def tamper(folder):
        shutil.copyfile(folder / f"{BASE}.{kind}", folder / f"{UPDATED}.{kind}")
        _rerecord(folder, UPDATED, kind)

    return tamper


def _bytes_claim(folder):
    def change(entries):
        entries["models"][BASE]["files"]["onnx"]["bytes"] += 1

    _edit(folder, change)


def _qp(folder):
    def change(entries):
        entries["codings"][PAIR]["samples"]["incremental"]["settings"]["qp"] = -36

    _edit(folder, change)


def _method(folder):
    _sample("method", "nnc-incremental")(folder)


def _external_data(folder):
    path = folder / f"{UPDATED}.onnx"
    proto = onnx.load(str(path))
    onnx.save(proto, str(path), save_as_external_data=True, location="hidden.bin", size_threshold=0)
    _rerecord(folder, UPDATED, "onnx")


def _two_inputs(folder):
    path = folder / f"{UPDATED}.onnx"
    proto = onnx.load(str(path))
    extra = helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1])
    proto.graph.input.append(extra)
    onnx.save(proto, str(path))
    _rerecord(folder, UPDATED, "onnx")


def _corrupt_safetensors(folder):
    path = folder / f"{UPDATED}.safetensors"
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
    _rerecord(folder, UPDATED, "safetensors")


def _structure(folder):
    def change(entries):
        entries["pairs"]["unit/base..wide"]["structure_change"]["changed"] = False

    _edit(folder, change)


def _hostile_path(folder):
    def change(entries):
        entries["models"][BASE]["files"]["onnx"]["path"] = "../../../../x/PWNED.txt"

    _edit(folder, change)


def _symlink(folder):
    path = folder / f"{BASE}.onnx"
    outside = folder.parent / "outside.onnx"
    path.rename(outside)
    os.symlink(outside, path)


def _sums_line(name):
    def tamper(folder):
        digest = manifest.sha256_file(folder / manifest.MANIFEST)
        text = f"{digest}  {manifest.MANIFEST}\n{'0' * 64}  {name}\n"
        (folder / "SHA256SUMS").write_text(text)

    return tamper


def _unfinished(folder):
    """A model entered by hand, as a half run of the old code would have left it."""

    def change(entries):
        entries["finished"]["unit"]["models"].remove(UPDATED)

    _edit(folder, change)


def _entry_removed(folder):
    def change(entries):
        del entries["models"]["unit/wide"]
        del entries["pairs"]["unit/base..wide"]
        del entries["codings"]["unit/base..wide"]

    _edit(folder, change)


FOLDER_CASES = {
    "flip safetensors": (lambda f: _flip(f, f"{BASE}.safetensors"), "sha256"),
    "truncate safetensors": (lambda f: _truncate(f, f"{BASE}.safetensors"), "bytes, the manifest"),
    "delete safetensors": (lambda f: _delete(f, f"{BASE}.safetensors"), "missing"),
    "flip onnx": (lambda f: _flip(f, f"{UPDATED}.onnx"), "sha256"),
    "truncate onnx": (lambda f: _truncate(f, f"{UPDATED}.onnx"), "bytes, the manifest"),
    "delete onnx": (lambda f: _delete(f, f"{UPDATED}.onnx"), "missing"),
    "flip bitstream": (lambda f: _flip(f, BITSTREAM), "sha256"),
    "truncate bitstream": (lambda f: _truncate(f, BITSTREAM), "bytes, the manifest"),
    "delete bitstream": (lambda f: _delete(f, BITSTREAM), "missing"),
    "flip a hash in the manifest": (_flip_manifest_hash, "does not match the manifest's"),
    "truncate manifest": (lambda f: _truncate(f, "manifest.json"), "not valid JSON"),
    "delete manifest": (lambda f: _delete(f, "manifest.json"), "no manifest.json"),
    "metric changed": (_metric, "top1 re-scored from its ONNX is"),
    "rel_l2 x10": (_stats("rel_l2", 10), "stats differ from the files at total.rel_l2"),
    "changed_fraction": (_stats("changed_fraction", 0), "total.changed_fraction"),
    "max_abs_delta": (_stats("max_abs_delta", 2), "total.max_abs_delta"),
    "onnx swapped": (_swap("onnx"), "initializers differ from the safetensors"),
    "safetensors swapped": (_swap("safetensors"), "initializers differ from the safetensors"),
    "file bytes claim": (_bytes_claim, "bytes, the manifest says"),
    "coding bytes": (_sample("bytes", 17), "(incremental): bytes 17"),
    "coding bits per parameter": (_sample("bits_per_parameter", 0.5), "bits per parameter 0.5"),
    "coding QP": (_qp, "base bitstream has classifier.weight at QP -40, not -36"),
    "coding method": (_method, "tca=True for method nnc-incremental"),
    "coding score": (_sample("value", 1.0), "decoded model scores"),
    "onnx external data": (_external_data, "is not one of the files of model"),
    "onnx two inputs": (_two_inputs, "2 graph inputs"),
    "corrupt safetensors, hash matches": (_corrupt_safetensors, "not a readable safetensors"),
    "false structure claim": (_structure, "structure change claim is false"),
    "hostile path in manifest": (_hostile_path, "invalid manifest at models/unit/base/files"),
    "symbolic link": (_symlink, "a symbolic link"),
    "sums line naming /etc/passwd": (_sums_line("/etc/passwd"), "'/etc/passwd' refused"),
    "sums line leaving the folder": (_sums_line("../ci/manifest.json"), "refused"),
    "entry of an unfinished run": (_unfinished, "model unit/updated: not from a finished run"),
    "entry of a finished run removed": (_entry_removed, "finished run's models ['unit/wide']"),
}


@pytest.fixture(scope="module")
def archive(coded_folder, tmp_path_factory):  # noqa: F811
    return package(coded_folder, tmp_path_factory.mktemp("archive") / "set.zip")


@pytest.fixture
def tampered(coded_folder, tmp_path):  # noqa: F811
    folder = tmp_path / "ci"
    shutil.copytree(coded_folder, folder)
    return folder


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_tampered_folder_is_caught(tampered, case):
    tamper, expected = FOLDER_CASES[case]
    tamper(tampered)
    problems = validate(tampered)
    assert any(expected in p for p in problems), problems


def _rezip(source, target, members):
    """Write `target` with the members of `source`, changed by `members(name, data)` pairs."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            for name, data in members(info.filename, old.read(info)):
                if isinstance(name, zipfile.ZipInfo):
                    new.writestr(name, data)
                else:
                    new.writestr(name, data, zipfile.ZIP_DEFLATED)


def _drop_sums_line(name, data):
    if name.endswith("SHA256SUMS"):
        data = b"".join(line for line in data.splitlines(True) if b"unit/base.onnx" not in line)
    return [(name, data)]


def _link(name, data):
    if not name.endswith("unit/base.onnx"):
        return [(name, data)]
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16
    return [(info, b"/etc/passwd")]


def _flip_member(member):
    def members(name, data):
        if name.endswith(member):
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :]
        return [(name, data)]

    return members


def _flip_licence_text(name, data):
    """A byte flip in free text that nothing recomputes (a letter of a licence): SUMS catches it."""
    if name.endswith("manifest.json"):
        at = data.index(b"Apache-2.0 for the weights") + len(b"Apache-2.0 for the w")
        data = data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]
    return [(name, data)]


def _extra(member):
    def members(name, data):
        return [(name, data)] + ([(member, b"x")] if name.endswith("SHA256SUMS") else [])

    return members


ARCHIVE_CASES = {
    "stray member": (_extra("pairzoo-ci/stray.txt"), "stray.txt: a member SHA256SUMS does not"),
    "missing sums line": (_drop_sums_line, "unit/base.onnx: a member SHA256SUMS does not list"),
    "missing sums": (
        lambda name, data: [] if name.endswith("SHA256SUMS") else [(name, data)],
        "SHA256SUMS: missing",
    ),
    "member leaving the archive": (_extra("pairzoo-ci/../x"), "'..' part"),
    "symbolic link member": (_link, "is a symbolic link"),
    "flipped member": (_flip_member("unit/base.onnx"), "sha256"),
    "flipped manifest (free text)": (_flip_licence_text, "manifest.json: sha256"),
}


@pytest.mark.parametrize("case", ARCHIVE_CASES)
def test_tampered_archive_is_caught(archive, tmp_path, case):
    members, expected = ARCHIVE_CASES[case]
    target = tmp_path / "set.zip"
    _rezip(archive, target, members)
    problems = validate(target)
    assert any(expected in p for p in problems), problems
