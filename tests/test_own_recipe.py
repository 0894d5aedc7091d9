"""What book/own_recipe.md says: a recipe outside the project declares its own relation, runs,
validates and is scored; a relation it does not declare stops it before anything is written."""

import json
import os
import shutil
import subprocess
import sys

from matplotlib.text import Text

from pairzoo.cli import main
from pairzoo.profiles import ARTIFACTS_ENV, CI_THREAD_ENV
from pairzoo.views.lineage import lineage_figure

from .conftest import ROOT

RECIPE = ROOT / "book" / "own_recipe" / "my_recipe.py"
RELATION = "small-step-finetune"


def _pairzoo(folder, *arguments):
    env = {k: v for k, v in os.environ.items() if k != ARTIFACTS_ENV} | CI_THREAD_ENV
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pairzoo.cli", *arguments]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_own_recipe_runs_validates_and_is_scored(tmp_path, monkeypatch, capsys):
    shutil.copy(RECIPE, tmp_path)
    run = _pairzoo(tmp_path, "run", "my_recipe.py", "-p", "epochs", "3")
    assert run.returncode == 0, run.stderr
    entries = json.loads((tmp_path / "artifacts" / "ci" / "manifest.json").read_text())
    assert entries["pairs"]["my_recipe/base..tuned"]["relation"] == RELATION
    assert RELATION in entries["declared"]["my_recipe"]["relations"]
    monkeypatch.chdir(tmp_path)  # validate and evaluate in this process: as typed, but faster
    assert main(["validate", "artifacts/ci"]) == 0
    assert "OK (2 models, 1 pairs" in capsys.readouterr().out
    assert main(["evaluate", "zstd-delta-q", "artifacts/ci", "-p", "qp=-24,-32", "-o", "out"]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert rows and {row["relation"] for row in rows} == {RELATION}
    capsys.readouterr()
    assert main(["list", "artifacts/ci", "--relation", RELATION, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["pairs"]
    assert [pair["id"] for pair in listed] == ["my_recipe/base..tuned"]
    legend = [t.get_text() for t in lineage_figure(entries).findobj(Text)]
    assert any(text.startswith(f"{RELATION}: the base trained further") for text in legend)


def test_an_undeclared_relation_stops_the_recipe_before_anything_is_written(tmp_path):
    text = RECIPE.read_text().replace("relations=[finetune]", "relations=[finetune.name]")
    assert text != RECIPE.read_text()
    (tmp_path / "my_recipe.py").write_text(text)
    run = _pairzoo(tmp_path, "run", "my_recipe.py")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and f"unknown relation {RELATION!r}" in run.stderr
    assert "more-data" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_recipe.py"]


def test_the_page_shows_the_recipe_it_runs_short_with_one_parameters_cell():
    import jupytext

    cells = jupytext.read(RECIPE).cells
    assert len([c for c in cells if "parameters" in c.metadata.get("tags", [])]) == 1
    assert len(RECIPE.read_text().splitlines()) <= 30
    page = (ROOT / "book" / "own_recipe.md").read_text()
    assert "```{literalinclude} own_recipe/my_recipe.py" in page
