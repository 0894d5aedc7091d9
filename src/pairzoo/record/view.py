"""A typed view of an output folder (or an archive read in place): its models and pairs.

Every lookup of a file record and every path a manifest gives goes through here; paths are
resolved by the folder's tree, which checks each one (`paths.inside`) before it is read.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.export.exporters import stored_dtypes
from pairzoo.paths import path_problem
from pairzoo.record import manifest
from pairzoo.record.tree import FolderTree, Tree, open_tree

# Largest safetensors header read for its dtypes (the format's own limit is 100 MB).
MAX_HEADER = 100 * 2**20


@dataclass(frozen=True)
class _Entry:
    """One entry of the manifest: the folder it belongs to, its id and its record."""

    folder: Folder = field(repr=False, compare=False)
    id: str
    record: dict = field(repr=False, compare=False)

    @property
    def recipe(self) -> str:
        """The recipe that made it."""
        return self.record["recipe"]


@dataclass(frozen=True)
class Model(_Entry):
    """One model of the manifest: its record, files and tensors."""

    @property
    def name(self) -> str:
        """The id without its recipe's prefix."""
        return self.id.split("/", 1)[-1]

    @property
    def metrics(self) -> dict:
        """Measurements by metric id."""
        return self.record["metrics"]

    def file(self, kind: str) -> dict:
        """The file record of `kind` (onnx, safetensors or the framework's own file)."""
        files = self.record["files"]
        if kind not in files:
            raise PairzooError(f"model {self.id}: no {kind} file (it has {sorted(files)})")
        return files[kind]

    def path(self, kind: str) -> Path:
        """Where the file of `kind` lies on disk (checked); only for a folder, not an archive."""
        if not isinstance(self.folder.tree, FolderTree):
            raise PairzooError(f"{self.folder.tree.label}: an archive has no file paths")
        return manifest.file_path(self.folder.tree.folder, self.file(kind))

    def read(self, kind: str) -> bytes:
        """The bytes of the file of `kind`."""
        return self.folder.tree.read(self.file(kind)["path"])

    def read_external(self, location: str) -> bytes:
        """The external data its ONNX file names at `location`, if that is one of its files."""
        problem = path_problem(location)
        if problem:
            raise PairzooError(f"external data location {location!r} refused: it {problem}")
        path = posixpath.join(posixpath.dirname(self.file("onnx")["path"]), location)
        if path not in {file["path"] for file in self.record["files"].values()}:
            raise PairzooError(f"external data {path} is not one of the files of model {self.id}")
        return self.folder.tree.read(path)

    def tensors(self) -> dict[str, np.ndarray]:
        """The safetensors file's tensors in name order; bfloat16 widened to float32."""
        return self.folder.tree.tensors(self.file("safetensors")["path"])

    def stored_dtypes(self) -> set[str]:
        """The dtypes the safetensors file stores, read from its header alone."""
        name = self.file("safetensors")["path"]
        with self.folder.tree.open(name) as handle:
            head = handle.read(8)
            header = handle.read(min(int.from_bytes(head, "little"), MAX_HEADER))
        try:
            return stored_dtypes(head + header)
        except ValueError as exc:
            raise PairzooError(f"{self.folder.tree.where(name)}: unreadable header") from exc


@dataclass(frozen=True)
class Pair(_Entry):
    """One base/updated pair of the manifest."""

    @property
    def relation(self) -> str:
        """How the updated model relates to the base (built-in, or declared by its recipe)."""
        return self.record["relation"]

    @property
    def base(self) -> Model:
        """The base model."""
        return self.folder.model(self.record["base"])

    @property
    def updated(self) -> Model:
        """The updated model."""
        return self.folder.model(self.record["updated"])

    @property
    def structure_change(self) -> dict:
        """The structure change as the manifest records it."""
        return self.record["structure_change"]


class Folder:
    """An output folder or an archive, read through its schema-checked manifest."""

    pair_type: type[Pair] = Pair  # what `pair` and `pairs` make of each entry

    def __init__(self, tree: Tree, entries: dict):
        self.tree, self.entries = tree, entries

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *_: object) -> None:
        self.tree.close()

    @property
    def profile(self) -> str:
        """The profile the folder was made with."""
        return self.entries["profile"]

    def model(self, model_id: str) -> Model:
        """The model `model_id`; PairzooError if the manifest has none."""
        if model_id not in self.entries["models"]:
            raise PairzooError(f"{self.tree.label}: no model {model_id!r} in the manifest")
        return Model(self, model_id, self.entries["models"][model_id])

    def pair(self, pair_id: str) -> Pair:
        """The pair `pair_id`; PairzooError if the manifest has none."""
        if pair_id not in self.entries["pairs"]:
            raise PairzooError(f"{self.tree.label}: no pair {pair_id!r} in the manifest")
        return self.pair_type(self, pair_id, self.entries["pairs"][pair_id])

    def models(self, recipe: str | None = None) -> list[Model]:
        """The models in id order, only `recipe`'s if given."""
        return [
            Model(self, model_id, record)
            for model_id, record in sorted(self.entries["models"].items())
            if recipe in (None, record["recipe"])
        ]

    def pairs(self, recipe: str | None = None, relation: str | None = None) -> list[Pair]:
        """The pairs in id order, only those of `recipe` and `relation` where given."""
        return [
            self.pair_type(self, pair_id, record)
            for pair_id, record in sorted(self.entries["pairs"].items())
            if recipe in (None, record["recipe"]) and relation in (None, record["relation"])
        ]

    def close(self) -> None:
        """Release what the tree holds open (an archive)."""
        self.tree.close()


def read_manifest(tree: Tree) -> tuple[bytes, dict]:
    """The manifest's bytes and its schema-checked entries."""
    where = tree.where(manifest.MANIFEST)
    if not tree.exists(manifest.MANIFEST):
        raise PairzooError(f"no {manifest.MANIFEST} in {tree.label}")
    if tree.size(manifest.MANIFEST) > manifest.MAX_BYTES:
        raise PairzooError(f"{where}: larger than the limit of {manifest.MAX_BYTES:,} bytes")
    data = tree.read(manifest.MANIFEST)
    return data, manifest.check(manifest.loads(data, where), where)


def read(tree: Tree) -> Folder:
    """The view of a tree, its manifest read within the limits and checked against the schema."""
    return Folder(tree, read_manifest(tree)[1])


def of(folder: Path, entries: dict) -> Folder:
    """The view of an output folder whose manifest a recipe has just read or written."""
    return Folder(FolderTree(Path(folder)), entries)


def open(target: Path | str) -> Folder:  # noqa: A001 (pairzoo.open, as the issue names it)
    """The view of an output folder or a .zip archive (read in place, never unpacked)."""
    tree = open_tree(Path(target))
    try:
        return read(tree)
    except BaseException:
        tree.close()
        raise
