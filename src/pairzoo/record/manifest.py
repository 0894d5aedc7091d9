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
# Limits on a manifest read: the full set's manifest is far below both (a 45 MB one took 85 s).
MAX_BYTES = 16 * 2**20
MAX_DEPTH = 64

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
    text = resources.files("pairzoo.record").joinpath("manifest.schema.json").read_text("utf-8")
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
    try:
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema()).iter_errors(manifest)
        )
    except RecursionError as exc:
        raise PairzooError(f"{where}: nested too deeply to check") from exc
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PairzooError(f"{where}: invalid manifest at {location}: {error.message}")
    return manifest


def _depth(node: object) -> int:
    """How deeply objects and arrays nest in `node` (without recursion)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in node]
    return deepest


def loads(data: bytes, where: Path | str = MANIFEST) -> dict:
    """Parse manifest bytes, within MAX_BYTES and MAX_DEPTH, without checking the schema."""
    if len(data) > MAX_BYTES:
        raise PairzooError(f"{where}: larger than the limit of {MAX_BYTES:,} bytes")
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PairzooError(f"{where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise PairzooError(f"{where} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PairzooError(f"{where}: nested more than {MAX_DEPTH} levels deep") from exc
    if _depth(parsed) > MAX_DEPTH:
        raise PairzooError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if not isinstance(parsed, dict):
        raise PairzooError(f"{where}: not a JSON object")
    return parsed


def read(folder: Path) -> dict:
    """Read `folder`/manifest.json without checking it against the schema."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise PairzooError(f"no {MANIFEST} in {path.parent}")
    with path.open("rb") as handle:
        return loads(handle.read(MAX_BYTES + 1), path)


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
    """Every file record of the manifest: models' files, coded samples' bitstreams, the ladder."""
    records = [file for model in entries["models"].values() for file in model["files"].values()]
    for coding in entries.get("codings", {}).values():
        records += [f for sample in coding["samples"].values() for f in sample["files"].values()]
    if "coding_ladder" in entries:
        records.append(entries["coding_ladder"]["file"])
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
