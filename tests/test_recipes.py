"""Smoke runs of the recipes: through papermill (twice, for determinism) and as plain python."""

import os
import subprocess
import sys

import jupytext
import papermill
import pytest
import yaml

from pairzoo import manifest
from pairzoo.validate import validate

from .conftest import ROOT
from .network import STRACE, outside_addresses, traced

RECIPES = sorted((ROOT / "notebooks").glob("*.py"))
# Minimal parameters per recipe; None for recipes that only read what others wrote (own tests).
SMOKE = {
    "catalog": None,
    "retraining": {
        "base_epochs": 2,
        "retrain_epochs": 1,
        "ladder": [1, 2],
        "chain_fractions": [1.0],
    },
    "update_coding": {"qps": [-24, -36, -48]},
    "detection_backbone": {
        "canvases": 64,
        "base_epochs": 1,
        "detector_steps": 3,
        "batch_size": 8,
        "parity_count": 2,
    },
    "compression_variants": {
        "epochs": 2,
        "finetune_epochs": 1,
        "bits": [2, 8],
        "sparsities": [0.9, 0.5],
        "qps": [-16, -32],
    },
    "autoencoder_lstm": {
        "ae_epochs": 2,
        "lstm_epochs": 2,
        "retrain_epochs": 1,
        "ladder": [1, 2],
        "chain_fractions": [1.0],
    },
    "transfer_classes": {"base_epochs": 2, "finetune_epochs": 1, "exchanges": [[9]]},
    "federated_rounds": {
        "clients": 3,
        "rounds": 2,
        "client_round": 2,
        "local_epochs": 1,
        "warm_start_epochs": 2,
    },
    "keras_transfer": {"base_epochs": 2, "finetune_epochs": 1, "exchanges": [[9]]},
    "language_model": {
        "base_epochs": 1,
        "ladder": [1],
        "chain_fractions": [1.0],
        "chain_steps": 2,
        "finetune_steps": 2,
        "lora_ranks": [4],
        "vit_epochs": 1,
        "vit_tune_epochs": 1,
    },
}
# Recipes that read what others made: those run first, with their smoke parameters, into the folder.
NEEDS = {"update_coding": ["retraining"]}


def _execute(recipe, parameters, tmp_path, name):
    source = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(recipe), source)
    return papermill.execute_notebook(
        str(source),
        str(tmp_path / f"{name}-out.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(recipe.parent),
        progress_bar=False,
    )


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {entry["file"] for part in toc["parts"] for entry in part["chapters"]}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_has_one_parameters_cell_and_is_in_the_book(recipe):
    cells = jupytext.read(recipe).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "profile" in tagged[0].source and "artifacts" in tagged[0].source
    assert f"notebooks/{recipe.stem}" in _toc_files()
    assert recipe.stem in SMOKE


@pytest.mark.parametrize(
    "recipe", [r for r in RECIPES if SMOKE.get(r.stem) is not None], ids=lambda p: p.stem
)
def test_recipe_runs_under_papermill_and_is_deterministic(recipe, tmp_path):
    folders = [tmp_path / "first", tmp_path / "second"]
    for run, folder in enumerate(folders):
        for needed in NEEDS.get(recipe.stem, []):
            params = {**SMOKE[needed], "artifacts": str(folder)}
            _execute(ROOT / "notebooks" / f"{needed}.py", params, tmp_path, f"{needed}{run}")
        params = {**SMOKE[recipe.stem], "artifacts": str(folder)}
        _execute(recipe, params, tmp_path, f"run{run}")
        assert validate(folder) == []
    first, second = (manifest.load(folder) for folder in folders)
    assert first["pairs"] and first["models"]
    if recipe.stem == "update_coding":
        assert set(first["codings"]) == set(first["pairs"])
    assert first == second


def test_retraining_runs_as_plain_python_on_loopback_only(tmp_path):
    """Plain python; under strace where installed, every socket call must stay on loopback."""
    env = {**os.environ, "PAIRZOO_ARTIFACTS": str(tmp_path), "MPLBACKEND": "Agg"}
    command = [sys.executable, "notebooks/retraining.py"]
    log = tmp_path / "strace.log"
    subprocess.run(
        traced(command, log) if STRACE else command, cwd=ROOT, env=env, check=True, timeout=600
    )
    if STRACE:
        assert outside_addresses(log.read_text()) == set()
    entries = manifest.load(tmp_path / "ci")
    assert validate(tmp_path / "ci") == []
    assert len(entries["models"]) == 10
    relations = {p["relation"] for p in entries["pairs"].values()}
    assert relations == {"more-data", "more-epochs", "other-hyperparameters"}
    chain = entries["pairs"]["retraining/chain-1..chain-2"]
    assert chain["base"] == "retraining/chain-1" and not chain["structure_change"]["changed"]


def test_update_coding_without_pairs_says_so(tmp_path):
    env = {**os.environ, "PAIRZOO_ARTIFACTS": str(tmp_path), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "notebooks/update_coding.py"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert "No pairs in" in done.stdout and "run a model recipe" in done.stdout
    assert not (tmp_path / "ci" / "manifest.json").exists()
