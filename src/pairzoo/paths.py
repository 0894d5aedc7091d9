"""The one check for paths read from a manifest, a sums file or an archive: untrusted input.

A path is accepted only as a plain relative POSIX path (no `..`, `.` or empty part, no backslash,
no NUL) that reaches a place inside its folder through no symbolic link.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.errors import PairzooError


def path_problem(relative: object) -> str | None:
    """Why `relative` is not a plain relative POSIX path; None when it is one."""
    if not isinstance(relative, str) or not relative:
        return "not a non-empty string"
    if "\\" in relative or "\x00" in relative:
        return "contains a backslash or NUL"
    if relative.startswith("/"):
        return "is absolute"
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return "has an empty, '.' or '..' part"
    return None


def inside(folder: Path, relative: object, source: str = "manifest") -> Path:
    """`folder`/`relative`, if that is a plain relative path to a place inside `folder` via no link.

    `source` names where the path came from, for the error message.
    """
    problem = path_problem(relative)
    if problem:
        raise PairzooError(f"{source}: path {relative!r} refused: it {problem}")
    folder = Path(folder)
    path = folder
    for part in str(relative).split("/"):
        path = path / part
        if path.is_symlink():
            raise PairzooError(f"{source}: path {relative!r} refused: {path} is a symbolic link")
    if not path.resolve().is_relative_to(folder.resolve()):
        raise PairzooError(f"{source}: path {relative!r} refused: it leads outside {folder}")
    return path
