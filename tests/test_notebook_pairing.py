"""Each recipe carries its jupytext pairing in its header: the one jupytext.toml gives it."""

import shutil

import jupytext
import pytest
from jupytext.config import load_jupytext_config, notebook_formats
from jupytext.paired_paths import paired_paths

from .conftest import ROOT

RECIPES = sorted((ROOT / "notebooks").glob("*.py"))


def _paired(path, notebook, config) -> list[str]:
    """The paths paired with `path`, from the notebook's metadata and `config` (None: none)."""
    formats = notebook_formats(notebook, config, str(path), fallback_on_current_fmt=False)
    return [alt for alt, _ in paired_paths(str(path), "py:percent", formats)]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_header_pairs_as_jupytext_toml_does(recipe, monkeypatch):
    monkeypatch.chdir(ROOT)
    path = recipe.relative_to(ROOT)
    notebook = jupytext.read(path)
    own = _paired(path, notebook, None)
    del notebook.metadata["jupytext"]["formats"]
    assert own == _paired(path, notebook, load_jupytext_config(str(path)))
    assert own == [f"notebooks/{recipe.stem}.py", f"ipynb/{recipe.stem}.ipynb"]


def test_a_copy_keeps_its_pairing_without_jupytext_toml(tmp_path):
    copy = tmp_path / "notebooks" / "retraining.py"
    copy.parent.mkdir()
    shutil.copy(ROOT / "notebooks" / "retraining.py", copy)
    assert load_jupytext_config(str(copy)) is None
    paired = _paired(copy, jupytext.read(copy), None)
    assert paired == [str(copy), str(tmp_path / "ipynb" / "retraining.ipynb")]
