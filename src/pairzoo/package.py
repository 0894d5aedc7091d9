"""One archive of an output folder: files, manifest, SHA256SUMS, description, cards, licences."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from pairzoo import manifest
from pairzoo.atomic import atomic_path
from pairzoo.catalog import description_md, licence_notice, model_card
from pairzoo.errors import PairzooError
from pairzoo.validate import SUMS, validate


def manifest_files(entries: dict) -> list[str]:
    """Every file path the manifest names (any entry with `path` and `sha256`), sorted."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("path"), str) and "sha256" in node:
                found.add(node["path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(entries)
    return sorted(found)


def _generated(entries: dict) -> dict[str, str]:
    texts = {
        "DESCRIPTION.md": description_md(entries),
        "LICENCE-NOTICE.md": licence_notice(entries),
    }
    for model_id in sorted(entries["models"]):
        texts[f"cards/{model_id}.md"] = model_card(entries, model_id)
    return texts


def package(folder: Path, archive: Path) -> Path:
    """Write `archive` (.zip) of `folder`, after checking that its unpacked copy validates."""
    folder, archive = Path(folder), Path(archive)
    problems = validate(folder)
    if problems:
        raise PairzooError(f"{folder} does not validate: {problems[0]}")
    entries = manifest.load(folder)
    top = f"pairzoo-{entries['profile']}"
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / top
        staging.mkdir()
        for relative in [manifest.MANIFEST, *manifest_files(entries)]:
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((folder / relative).read_bytes())
        for relative, text in _generated(entries).items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_text(text, encoding="utf-8")
        members = sorted(
            p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()
        )
        sums = "".join(f"{manifest.sha256_file(staging / m)}  {m}\n" for m in members)
        (staging / SUMS).write_text(sums, encoding="utf-8")
        with atomic_path(archive) as partial:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zipped:
                for member in [*members, SUMS]:
                    zipped.write(staging / member, f"{top}/{member}")
            check = Path(tmp) / "check"
            with zipfile.ZipFile(partial) as zipped:
                zipped.extractall(check)
            problems = validate(check / top)
            if problems:
                raise PairzooError(f"the unpacked archive does not validate: {problems[0]}")
    return archive
