"""A recipe's output, written beside the previous one and swapped in only when the recipe finishes.

A recipe owns the subfolder `<folder>/<recipe>/`. A run writes into `<recipe>.unfinished/`; its
`commit` enters the new records in the manifest and replaces the old subfolder in one step, under
the manifest's lock. A failed or interrupted run leaves the previous files and manifest entries as
they were, plus at most the `.unfinished` folder, which the next run of the recipe removes.
Nothing outside the recipe's own subfolders is ever deleted.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.paths import inside
from pairzoo.record import manifest

UNFINISHED = ".unfinished"
REPLACED = ".replaced"


def _remove(path: Path) -> None:
    """Remove a folder of ours, or only the link if someone put a symbolic link in its place."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


class StagedOutput:
    """The files of one run of `recipe` in `folder`, staged until `commit`."""

    def __init__(self, folder: Path, recipe: str, profile: str) -> None:
        self.folder, self.recipe, self.profile = Path(folder), recipe, profile
        self.final = self.folder / recipe
        self.stage = self.folder / f"{recipe}{UNFINISHED}"
        self.replaced = self.folder / f"{recipe}{REPLACED}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = (self.folder / f".{recipe}.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PairzooError(
                f"another run of {recipe} is writing into {self.folder}; wait for it to finish"
            ) from None
        with manifest.editing(self.folder, profile) as entries:  # checks the manifest first
            self._recover(entries)
        _remove(self.stage)
        self.stage.mkdir()

    def _recover(self, entries: dict) -> None:
        """Finish or undo a swap that a killed commit left half done."""
        if not self.replaced.exists() and not self.replaced.is_symlink():
            return
        if not self.final.exists() or not self._manifest_describes(entries, self.final):
            _remove(self.final)
            os.rename(self.replaced, self.final)
        else:
            _remove(self.replaced)

    def _manifest_describes(self, entries: dict, folder: Path) -> bool:
        """Whether the manifest's files of this recipe are the ones in `folder`."""
        prefix = f"{self.recipe}/"
        for file in manifest.file_records(entries):
            if file["path"].startswith(prefix):
                path = inside(folder, file["path"][len(prefix) :])
                if not path.is_file() or manifest.sha256_file(path) != file["sha256"]:
                    return False
        return True

    def path(self, relative: str) -> Path:
        """Where to write now the file that will be `<folder>/<recipe>/<relative>`."""
        return self.stage / relative

    def record(self, path: Path) -> dict:
        """The manifest's file record of a staged file, under the path it will have."""
        record = manifest.file_record(path, self.stage)
        return {**record, "path": f"{self.recipe}/{record['path']}"}

    def local(self, file: dict) -> Path:
        """Where a file recorded by this run is now (staged, or in place after `commit`)."""
        relative = file["path"].removeprefix(f"{self.recipe}/")
        return inside(self.stage if self.stage.is_dir() else self.final, relative)

    def commit(self, update: Callable[[dict], None]) -> None:
        """Apply `update` to the manifest and swap the staged files in, together."""
        with manifest.editing(self.folder, self.profile) as entries:
            update(entries)
            manifest.check(entries, self.folder / manifest.MANIFEST)
            if self.final.exists() or self.final.is_symlink():
                os.rename(self.final, self.replaced)
            os.rename(self.stage, self.final)
        _remove(self.replaced)
        self._lock.close()
