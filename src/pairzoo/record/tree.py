"""An output folder or a packaged archive, read in place: names, sizes, bytes and hashes.

Every name comes from untrusted input (a manifest, a sums file, an archive's member list), so a
folder resolves it through `paths.inside` and an archive refuses hostile or linked members.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pairzoo.errors import PairzooError
from pairzoo.export.exporters import read_tensors
from pairzoo.paths import inside, path_problem


class Tree(ABC):
    """Files under one root, named by relative POSIX path."""

    label: str

    @abstractmethod
    def names(self) -> list[str]:
        """Every regular file, sorted."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether `name` is a regular file of the tree (a hostile name raises PairzooError)."""

    @abstractmethod
    def size(self, name: str) -> int:
        """The file's size in bytes."""

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """The file, opened for reading bytes."""

    def where(self, name: str) -> str:
        """How messages name the file."""
        return f"{self.label}/{name}"

    def read(self, name: str) -> bytes:
        """The file's bytes."""
        with self.open(name) as handle:
            return handle.read()

    def sha256(self, name: str) -> str:
        """Hex sha256 of the file's bytes."""
        digest = hashlib.sha256()
        with self.open(name) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def tensors(self, name: str) -> dict[str, np.ndarray]:
        """A safetensors file's tensors in name order (bfloat16 widened, as `load_tensors` does).

        A file that does not parse raises PairzooError.
        """
        try:
            return dict(sorted(read_tensors(self.read(name)).items()))
        except Exception as exc:  # safetensors raises its own error types for malformed headers
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PairzooError(
                f"{self.where(name)}: not a readable safetensors file: {first}"
            ) from exc

    def problems(self) -> list[str]:
        """Problems of the tree itself: links, hostile or duplicate member names."""
        return []

    def file_problems(self, file: dict, what: str) -> list[str]:
        """A manifest file record checked: the path, that the file exists, its bytes and sha256."""
        try:
            if not self.exists(file["path"]):
                return [f"{self.where(file['path'])}: missing ({what})"]
        except PairzooError as exc:
            return [f"{exc} ({what})"]
        where = self.where(file["path"])
        size = self.size(file["path"])
        if size != file["bytes"]:
            return [f"{where}: {size} bytes, the manifest says {file['bytes']} ({what})"]
        digest = self.sha256(file["path"])
        if digest != file["sha256"]:
            return [
                f"{where}: sha256 {digest[:12]}… does not match the manifest's "
                f"{file['sha256'][:12]}… ({what})"
            ]
        return []

    def close(self) -> None:  # noqa: B027 (a folder holds nothing open)
        """Release what the tree holds open."""


class FolderTree(Tree):
    """A folder on disk; symbolic links anywhere in it are problems, never followed."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.label = str(self.folder)

    @cached_property
    def _walk(self) -> tuple[list[str], list[str]]:
        names, links = [], []
        for root, dirs, files in os.walk(self.folder):
            for name in dirs + files:
                path = Path(root) / name
                if path.is_symlink():
                    links.append(f"{path}: a symbolic link (refused)")
                elif path.is_file():
                    names.append(path.relative_to(self.folder).as_posix())
            dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]
        return sorted(names), sorted(links)

    def problems(self) -> list[str]:
        """Every symbolic link in the folder."""
        return self._walk[1]

    def _path(self, name: str) -> Path:
        return inside(self.folder, name, self.label)

    def names(self) -> list[str]:
        """Every regular file, sorted."""
        return list(self._walk[0])

    def exists(self, name: str) -> bool:
        """Whether `name` is a regular file here."""
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        """The file's size in bytes."""
        return self._path(name).stat().st_size

    def open(self, name: str) -> BinaryIO:
        """The file, opened for reading bytes."""
        fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file"
    return path_problem(info.filename.removesuffix("/") if info.is_dir() else info.filename)


class ZipTree(Tree):
    """A .zip read in place: its files lie under one top folder; links and hostile names refused."""

    def __init__(self, archive: Path, label: str | None = None):
        self.archive = Path(archive)
        self.label = label or str(self.archive)
        self._problems: list[str] = []
        try:
            self.zip = zipfile.ZipFile(self.archive)
        except (OSError, zipfile.BadZipFile) as exc:
            raise PairzooError(f"{self.archive}: not a readable .zip: {exc}") from exc
        self.members: dict[str, zipfile.ZipInfo] = {}
        tops = {info.filename.split("/")[0] for info in self.zip.infolist()}
        self.top = sorted(tops)[0] if len(tops) == 1 else ""
        if not self.top:
            self._problems.append(f"{self.archive}: not one top folder but {len(tops)}")
        for info in self.zip.infolist():
            problem = _member_problem(info)
            if problem:
                self._problems.append(f"{self.archive}: member {info.filename!r} {problem}")
            elif not info.is_dir() and info.filename.startswith(f"{self.top}/"):
                name = info.filename.removeprefix(f"{self.top}/")
                if name in self.members:
                    self._problems.append(f"{self.archive}: member {info.filename!r} twice")
                self.members[name] = info
        if self.top and label is None:
            self.label = f"{self.archive}:{self.top}"

    def _info(self, name: str) -> zipfile.ZipInfo:
        if not self.exists(name):
            raise PairzooError(f"{self.where(name)}: no such member")
        return self.members[name]

    def problems(self) -> list[str]:
        """Links, hostile names, duplicates, members outside the one top folder."""
        return list(self._problems)

    def names(self) -> list[str]:
        """Every regular file, sorted."""
        return sorted(self.members)

    def exists(self, name: str) -> bool:
        """Whether `name` is a regular file here."""
        problem = path_problem(name)
        if problem:
            raise PairzooError(f"{self.label}: path {name!r} refused: it {problem}")
        return name in self.members

    def size(self, name: str) -> int:
        """The file's size in bytes."""
        return self._info(name).file_size

    def open(self, name: str) -> BinaryIO:
        """The file, opened for reading bytes."""
        return self.zip.open(self._info(name))

    def close(self) -> None:
        """Release what the tree holds open."""
        self.zip.close()


def open_tree(target: Path, label: str | None = None) -> Tree:
    """A folder, or a .zip archive read in place."""
    target = Path(target)
    if target.is_file() and zipfile.is_zipfile(target):
        return ZipTree(target, label)
    if target.is_file():
        raise PairzooError(f"{target}: neither a folder nor a .zip archive")
    return FolderTree(target)
