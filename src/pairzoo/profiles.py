"""Profiles (`ci`, `full`) and where their outputs and inputs live."""

from __future__ import annotations

import os
from pathlib import Path

from pairzoo.errors import PairzooError

PROFILES = ("ci", "full")
ARTIFACTS_ENV = "PAIRZOO_ARTIFACTS"
DATA_ENV = "PAIRZOO_DATA"


def check_profile(profile: str) -> str:
    """Return `profile` if it is known, else raise a clear error."""
    if profile not in PROFILES:
        raise PairzooError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` holding pairzoo's pyproject.toml, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "pairzoo"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def artifacts_dir(profile: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Output folder of a profile.

    `override` if given, else $PAIRZOO_ARTIFACTS/<profile>, else the project's
    `artifacts/<profile>` (or `./artifacts/<profile>` outside the project).
    """
    check_profile(profile)
    if override:
        return Path(override).resolve()
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV]).resolve() / profile
    root = project_root() or Path.cwd()
    return root / "artifacts" / profile


def data_dir(name: str, layout: str) -> Path:
    """The local folder $PAIRZOO_DATA/<name>; a clear error naming `layout` when it is absent."""
    base = os.environ.get(DATA_ENV)
    if not base:
        raise PairzooError(
            f"the full profile reads {name} from ${DATA_ENV}/{name}, but ${DATA_ENV} is not set; "
            f"expected layout: {layout}"
        )
    folder = Path(base) / name
    if not folder.is_dir():
        raise PairzooError(f"{name} not found at {folder} (from ${DATA_ENV}); expected: {layout}")
    return folder
