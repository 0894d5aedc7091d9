"""A failed, interrupted or hostile re-run loses nothing and touches nothing outside the folder."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pairzoo.archive.validate import validate
from pairzoo.data.sets import Subset
from pairzoo.errors import PairzooError
from pairzoo.models.build import build_model
from pairzoo.record import manifest
from pairzoo.record.staged_output import StagedOutput
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig

from .conftest import ROOT

RETRAINING = {
    "base_epochs": "2",
    "retrain_epochs": "1",
    "ladder": "[1, 2]",
    "chain_fractions": "[1.0]",
}


def _pairzoo(*args, timeout=600):
    command = [sys.executable, "-m", "pairzoo.cli", *map(str, args)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _run_args(folder, **parameters):
    pairs = {**RETRAINING, "artifacts": str(folder), **parameters}
    return ["run", "notebooks/retraining.py", *[x for kv in pairs.items() for x in ("-p", *kv)]]


def _snapshot(folder):
    """Every file under `folder` with its sha256 (lock files aside)."""
    return {
        p.relative_to(folder).as_posix(): manifest.sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rerun") / "ci"
    done = _pairzoo(*_run_args(folder))
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture
def retrained_copy(retrained, tmp_path):
    target = tmp_path / "ci"
    shutil.copytree(retrained, target)
    return target


def _add(writer, name):
    training = Training(config=TrainConfig(epochs=0), subset=Subset(1.0, 0, 1))
    model = build_model("digits-cnn", 10, 1, 0)
    writer.add_model(name, model, architecture="digits-cnn", training=training, metrics={})


def test_a_run_that_fails_keeps_the_previous_outputs(folder_copy, digits):
    before = _snapshot(folder_copy)
    writer = PairWriter("unit", "ci", digits, folder_copy)
    _add(writer, "other")
    assert (folder_copy / "unit.unfinished" / "other.onnx").is_file()
    assert _snapshot(folder_copy) == {**before, **_snapshot_of_stage(folder_copy)}
    assert validate(folder_copy) == []
    del writer  # the run ends unfinished: its process is gone, and with it the recipe's lock
    again = PairWriter("unit", "ci", digits, folder_copy)  # the next run clears the leftover
    assert not any((folder_copy / "unit.unfinished").iterdir())
    _add(again, "other")
    again.finish()
    entries = manifest.load(folder_copy)
    assert [m for m in entries["models"] if m.startswith("unit/")] == ["unit/other"]
    assert entries["finished"]["unit"] == {"models": ["unit/other"], "pairs": [], "codings": []}
    assert not (folder_copy / "unit.unfinished").exists()
    assert sorted(p.name for p in (folder_copy / "unit").iterdir()) == [
        "other.onnx",
        "other.safetensors",
    ]
    assert validate(folder_copy) == []


def _snapshot_of_stage(folder):
    stage = folder / "unit.unfinished"
    return {f"unit.unfinished/{k}": v for k, v in _snapshot(stage).items()}


def test_a_second_writer_of_the_same_recipe_is_refused(folder_copy, digits):
    first = PairWriter("unit", "ci", digits, folder_copy)
    with pytest.raises(PairzooError, match="another run of unit"):
        PairWriter("unit", "ci", digits, folder_copy)
    first.finish()


@pytest.mark.parametrize("hostile", ["../victim.txt", "/ABSOLUTE"])
def test_a_hostile_manifest_is_refused_before_any_work(folder_copy, digits, tmp_path, hostile):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    path = str(victim) if hostile == "/ABSOLUTE" else hostile
    entries = manifest.load(folder_copy)
    entries["models"]["unit/base"]["files"]["onnx"]["path"] = path
    (folder_copy / "manifest.json").write_text(manifest.dumps(entries))
    with pytest.raises(PairzooError, match="invalid manifest"):
        PairWriter("unit", "ci", digits, folder_copy)
    assert victim.read_text() == "keep me"
    assert not (folder_copy / "unit.unfinished").exists()


def test_a_killed_swap_is_undone_or_finished_by_the_next_run(folder_copy, digits):
    before = _snapshot(folder_copy)
    (folder_copy / "unit").rename(folder_copy / "unit.replaced")  # killed between the renames
    StagedOutput(folder_copy, "unit", "ci")
    assert not (folder_copy / "unit.replaced").exists()
    assert {k: v for k, v in _snapshot(folder_copy).items() if k in before} == before
    assert validate(folder_copy) == []
    # killed after the new files moved in, before the manifest was written
    shutil.copytree(folder_copy / "unit", folder_copy / "unit.replaced")
    (folder_copy / "unit" / "base.safetensors").write_bytes(b"new, unrecorded")
    StagedOutput(folder_copy, "unit", "ci")
    assert validate(folder_copy) == []
    # killed after the manifest was written: the new files stay, the old ones go
    shutil.copytree(folder_copy / "unit", folder_copy / "unit.replaced")
    (folder_copy / "unit.replaced" / "base.safetensors").write_bytes(b"old")
    StagedOutput(folder_copy, "unit", "ci")
    assert not (folder_copy / "unit.replaced").exists() and validate(folder_copy) == []


def test_bad_parameters_are_refused_before_any_work(retrained_copy):
    before = _snapshot(retrained_copy)
    for parameters, message in [
        ({"base_epochs": "abc"}, "base_epochs must be an int like its default 30, not 'abc'"),
        ({"profile": "nope"}, "unknown profile 'nope'"),
        ({"ladder": "3"}, "parameter ladder must be a list like its default"),
        ({"no_such": "1"}, "has no parameters ['no_such']"),
    ]:
        done = _pairzoo(*_run_args(retrained_copy, **parameters), timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert _snapshot(retrained_copy) == before


def test_a_killed_rerun_keeps_every_previous_output(retrained_copy):
    before = _snapshot(retrained_copy)
    command = [sys.executable, "-m", "pairzoo.cli", *_run_args(retrained_copy)]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    staged = retrained_copy / "retraining.unfinished" / "more-data.safetensors"
    deadline = time.monotonic() + 300
    while not staged.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert staged.exists()
    after = _snapshot(retrained_copy)
    assert {k: v for k, v in after.items() if not k.startswith("retraining.unfinished/")} == before
    assert validate(retrained_copy) == []
    done = _pairzoo(*_run_args(retrained_copy))
    assert done.returncode == 0, done.stderr
    timing = "timings/retraining.json"
    after = _snapshot(retrained_copy)
    assert after.keys() == before.keys()  # the leftover is gone
    assert {k: v for k, v in after.items() if k != timing} == {  # the same bytes again
        k: v for k, v in before.items() if k != timing
    }


def test_a_recipe_traceback_names_the_recipes_own_lines(tmp_path):
    recipe = tmp_path / "broken.py"
    recipe.write_text(
        '# %% tags=["parameters"]\nprofile = "ci"\nartifacts = ""\nsteps = 1\n\n'
        '# %%\nprint(steps)\nraise RuntimeError("boom")\n'
    )
    done = _pairzoo("run", recipe, "-p", "steps", "3", "-p", "artifacts", "x", timeout=120)
    assert done.returncode == 1 and done.stdout == "3\n"
    assert f'File "{recipe}", line 8' in done.stderr and "boom" in done.stderr
