"""The line `pairzoo run` ends with: what a recipe wrote, where, and how long it took."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.profiles import artifacts_dir
from pairzoo.record import manifest


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def summary(recipe: str, namespace: Mapping[str, object], seconds: float) -> str:
    """One closing line: how many models and pairs `recipe` has in its output folder, and where."""
    took = f"in {_duration(seconds)}"
    profile, override = namespace.get("profile"), namespace.get("artifacts")
    if not isinstance(profile, str) or not isinstance(override, str):
        return f"{recipe}: done {took}"
    folder = artifacts_dir(profile, override)
    if folder.is_relative_to(Path.cwd()):
        folder = folder.relative_to(Path.cwd())
    try:
        entries = manifest.read(folder)
    except PairzooError:  # no manifest (yet), or an archive
        return f"{recipe}: done {took}; output in {folder}"
    models, pairs = (
        sum(1 for entry in entries.get(kind, {}).values() if entry.get("recipe") == recipe)
        for kind in ("models", "pairs")
    )
    if not models and not pairs:
        return f"{recipe}: done {took}; output in {folder}"
    return f"{recipe}: {models} models, {pairs} pairs written to {folder} {took}"
