"""The manifest: one JSON file per output folder, validated by the schema shipped here."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema

from pairzoo.atomic import write_text
from pairzoo.errors import PairzooError
from pairzoo.paths import inside
from pairzoo.timing import timed

MANIFEST = "manifest.json"
SCHEMA_ID = "pairzoo-manifest/1"

RELATIONS = {
    "more-data": "retraining with more data",
    "other-data": "retraining with other data",
    "more-epochs": "training for more epochs",
    "other-hyperparameters": "retraining with other hyper-parameters",
    "transfer-exchange-classes": "transfer learning, classes exchanged (no structure change)",
    "transfer-add-classes": "transfer learning, classes added (structure change)",
    "backbone-reuse": "updated network uses (part of) the base network in its structure",
    "compression-rate": "same network at a different compression rate",
    "federated-round": "federated learning, global model after one more round",
    "federated-client-update": "federated learning, a client's local update",
    "lora-adapter": "parameter-efficient fine-tuning: a LoRA adapter's tensors added to the base "
    "(structure change)",
    "lora-merged": "parameter-efficient fine-tuning: a LoRA adapter merged into the base's weights "
    "(same structure, low-rank delta)",
}


@cache
def schema() -> dict:
    """The manifest's JSON Schema."""
    text = resources.files("pairzoo").joinpath("manifest.schema.json").read_text("utf-8")
    return json.loads(text)


def empty(profile: str) -> dict:
    """A manifest with no entries."""
    return {
        "schema": SCHEMA_ID,
        "profile": profile,
        "datasets": {},
        "metrics": {},
        "models": {},
        "pairs": {},
    }


def check(manifest: dict, where: Path | str = MANIFEST) -> dict:
    """Return `manifest` if it satisfies the schema, else raise a clear error."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema()).iter_errors(manifest)
    )
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PairzooError(f"{where}: invalid manifest at {location}: {error.message}")
    return manifest


def read(folder: Path) -> dict:
    """Read `folder`/manifest.json without checking it against the schema."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PairzooError(f"no {MANIFEST} in {path.parent}")
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise PairzooError(f"{path} is not valid JSON: {exc}") from exc


def load(folder: Path) -> dict:
    """Read and check `folder`/manifest.json."""
    return check(read(folder), Path(folder) / MANIFEST)


def dumps(manifest: dict) -> str:
    """Stable text form: sorted keys, two-space indent."""
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


@contextmanager
def editing(folder: Path, profile: str) -> Iterator[dict]:
    """Lock the folder's manifest, yield it for changes, then check and write it atomically.

    Concurrent recipes writing into one folder serialise on the lock; none clobbers another.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with timed("manifest"), (folder / f".{MANIFEST}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / MANIFEST
        manifest = load(folder) if path.exists() else empty(profile)
        if manifest["profile"] != profile:
            raise PairzooError(
                f"{path} belongs to profile {manifest['profile']!r}, not {profile!r}"
            )
        yield manifest
        write_text(path, dumps(check(manifest, path)))


def file_records(entries: dict) -> list[dict]:
    """Every file record of the manifest: the models' files and the coded samples' bitstreams."""
    records = [file for model in entries["models"].values() for file in model["files"].values()]
    for coding in entries.get("codings", {}).values():
        records += [f for sample in coding["samples"].values() for f in sample["files"].values()]
    return records


def file_path(folder: Path, file: dict) -> Path:
    """Where a manifest's file record points inside `folder` (the path checked, never trusted)."""
    return inside(folder, file["path"], f"{Path(folder) / MANIFEST}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path, folder: Path) -> dict:
    """Path relative to `folder`, sha256 and size of a file."""
    path = Path(path)
    return {
        "path": path.resolve().relative_to(Path(folder).resolve()).as_posix(),
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }
