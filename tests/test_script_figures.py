"""A recipe run as a script saves its figures in the output folder; in a kernel it saves none."""

import os
import subprocess
import sys
import zipfile

import jupytext
import papermill

from pairzoo.archive.pack import package
from pairzoo.archive.validate import check
from pairzoo.profiles import ARTIFACTS_ENV
from pairzoo.record import manifest
from pairzoo.script_figures import FIGURES

from .conftest import ROOT

SRC = str(ROOT / "src")

RECIPE = """\
# %% tags=["parameters"]
profile = "ci"
artifacts = ""  # output folder; empty: artifacts/<profile> of the project

# %%
import matplotlib.pyplot as plt

from pairzoo.profiles import artifacts_dir

folder = artifacts_dir(profile, artifacts)
plt.plot([0, 1])
plt.figure("accuracy vs bytes").gca().plot([1, 0])
"""


def _recipe(tmp_path):
    """The tiny recipe's file and its output folder, with an empty manifest."""
    recipe, folder = tmp_path / "tiny.py", tmp_path / "out" / "ci"
    recipe.write_text(RECIPE)
    with manifest.editing(folder, "ci"):
        pass
    return recipe, folder


def test_a_script_saves_its_figures_which_validate_accepts_and_package_leaves_out(tmp_path):
    recipe, folder = _recipe(tmp_path)
    env = os.environ | {"PYTHONPATH": SRC, "MPLBACKEND": "Agg", ARTIFACTS_ENV: str(folder.parent)}
    done = subprocess.run(
        [sys.executable, str(recipe)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"2 figures saved in {folder / FIGURES / 'tiny'}" in done.stdout
    saved = sorted(p.name for p in (folder / FIGURES / "tiny").iterdir())
    assert saved == ["1.png", "accuracy-vs-bytes.png"]
    for name in saved:
        assert (folder / FIGURES / "tiny" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = check(folder)
    assert report.problems == [] and report.warnings == []
    archive = package(folder, tmp_path / "out.zip")
    assert not [n for n in zipfile.ZipFile(archive).namelist() if f"/{FIGURES}/" in n]


def test_a_kernel_saves_no_figures(tmp_path, monkeypatch):
    recipe, folder = _recipe(tmp_path)
    monkeypatch.setenv("PYTHONPATH", SRC)  # the kernel imports this checkout's pairzoo
    notebook = tmp_path / "tiny.ipynb"
    jupytext.write(jupytext.read(recipe), notebook)
    papermill.execute_notebook(
        str(notebook),
        str(tmp_path / "tiny-out.ipynb"),
        parameters={"artifacts": str(folder)},
        kernel_name="python3",
        language="python",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    assert not (folder / FIGURES).exists()
