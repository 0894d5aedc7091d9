"""One archive of an output folder: files, manifest, SHA256SUMS, description, cards, licences.

The archive is byte-reproducible: members sorted (SHA256SUMS last), fixed timestamps and modes.
The folder's files are streamed into `<archive>.partial` and hashed on the way (no staging copy),
the partial archive is validated in place, then made durable and renamed to `<archive>`.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from pairzoo.archive.validate import SUMS, check
from pairzoo.atomic import commit
from pairzoo.errors import PairzooError
from pairzoo.record import manifest
from pairzoo.record.tree import FolderTree
from pairzoo.record.view import read_manifest
from pairzoo.views.catalog import description_md, licence_notice, model_card

EPOCH = (1980, 1, 1, 0, 0, 0)
MODE = stat.S_IFREG | 0o644
PARTIAL = ".partial"


class NotValid(PairzooError):
    """The folder, or the archive written from it, does not validate."""


def _generated(entries: dict) -> dict[str, bytes]:
    texts = {
        "DESCRIPTION.md": description_md(entries),
        "LICENCE-NOTICE.md": licence_notice(entries),
    }
    for model_id in sorted(entries["models"]):
        texts[f"cards/{model_id}.md"] = model_card(entries, model_id)
    return {name: text.encode("utf-8") for name, text in texts.items()}


def _add(zipped: zipfile.ZipFile, name: str, source: BinaryIO) -> tuple[str, int]:
    """Stream `source` into the member `name`; its sha256 and size."""
    info = zipfile.ZipInfo(name, EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = MODE << 16
    digest, size = hashlib.sha256(), 0
    with zipped.open(info, "w", force_zip64=True) as out:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            out.write(block)
            size += len(block)
    return digest.hexdigest(), size


def _write(zipped: zipfile.ZipFile, tree: FolderTree, entries: dict, data: bytes) -> None:
    top = f"pairzoo-{entries['profile']}"
    records = {f["path"]: f for f in manifest.file_records(entries)}
    generated = {manifest.MANIFEST: data, **_generated(entries)}
    sums = []
    for name in sorted([*generated, *records]):
        if name in generated:
            digest, _ = _add(zipped, f"{top}/{name}", io.BytesIO(generated[name]))
        else:
            problems = tree.file_problems(records[name], "named by the manifest")
            if problems:
                raise NotValid(f"{tree.label} does not validate: {problems[0]}")
            with tree.open(name) as source:
                digest, size = _add(zipped, f"{top}/{name}", source)
            if (digest, size) != (records[name]["sha256"], records[name]["bytes"]):
                raise NotValid(f"{tree.where(name)}: changed while it was packaged")
        sums.append(f"{digest}  {name}\n")
    _add(zipped, f"{top}/{SUMS}", io.BytesIO("".join(sums).encode("utf-8")))


def package(folder: Path, archive: Path) -> Path:
    """Write `archive` (.zip) of `folder`'s manifest and the files it names; validate it in place.

    Nothing is left at `archive` or beside it when the folder or the archive does not validate.
    """
    folder, archive = Path(folder), Path(archive)
    if archive.is_dir():
        raise PairzooError(f"{archive}: is a directory; -o names the .zip file to write")
    if not folder.is_dir():
        raise PairzooError(f"{folder}: no such folder")
    tree = FolderTree(folder)
    data, entries = read_manifest(tree)
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + PARTIAL)
    partial.unlink(missing_ok=True)  # a stale one, from a run that was killed
    try:
        with partial.open("wb") as out, zipfile.ZipFile(out, "w") as zipped:
            _write(zipped, tree, entries, data)
        problems = check(partial, label=str(folder)).problems
        if problems:
            raise NotValid(f"{folder} does not validate: {problems[0]}")
        commit(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive
