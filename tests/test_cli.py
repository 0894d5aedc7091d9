"""The command line: --version, --profile on either side, pipes, `list`, and `run`'s last line."""

import csv
import io
import json
import re
import shutil
import subprocess
import sys

import pytest

from pairzoo import __version__
from pairzoo.cli import main
from pairzoo.data.sets import draw, unit_pixels
from pairzoo.export.exporters import OnnxExporter
from pairzoo.models.build import build_model
from pairzoo.record.metrics import psnr
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import predict
from pairzoo.views.run_summary import summary

from .conftest import ROOT


@pytest.fixture(scope="module")
def two_recipes(built_folder, digits, tmp_path_factory):
    """`built_folder` (recipe `unit`: classifiers, top-1) and recipe `codec`: an autoencoder."""
    folder = tmp_path_factory.mktemp("two") / "ci"
    shutil.copytree(built_folder, folder)
    writer = PairWriter("codec", "ci", digits, folder, architecture="digits-ae")
    model = build_model("digits-ae", 0, 1, 0)
    value = psnr(
        *(unit_pixels(digits.info.id, x) for x in (predict(model, digits.x_test), digits.x_test))
    )
    writer.add_model(
        "ae",
        model,
        exporter=OnnxExporter(digits.x_test[:16], output_name="reconstruction"),
        training=Training.of(draw(digits, 0.2, 0), TrainConfig(epochs=0, seed=0), start=None),
        metrics={"psnr": value},
    )
    writer.finish()
    return folder, value


def _list(capsys, *args: str) -> str:
    assert main(["list", *args]) == 0
    return capsys.readouterr().out


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"pairzoo {__version__}\n"


@pytest.mark.parametrize(
    "command",
    [["list"], ["show", "unit/base"], ["validate"], ["package", "-o", "out.zip"],
     ["evaluate", "nnc-incremental"]],
)  # fmt: skip
def test_profile_is_taken_before_and_after_the_subcommand(
    command, built_folder, monkeypatch, tmp_path, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAIRZOO_ARTIFACTS", str(built_folder.parent))  # holds ci/, not full/
    for argv in ([*command, "--profile", "full"], ["--profile", "full", *command]):
        assert main(argv) == 2, argv
        assert f"{built_folder.parent / 'full'}" in capsys.readouterr().err, argv
    if command[0] in ("list", "show"):
        after = main([*command, "--profile", "ci"]), capsys.readouterr().out
        before = main(["--profile", "ci", *command]), capsys.readouterr().out
        assert after == before and after[0] == 0 and "unit/base" in after[1]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pairzoo.cli", *args]


def test_list_into_head_prints_the_first_lines(two_recipes, capsys):
    folder, _ = two_recipes
    lines = _list(capsys, str(folder)).splitlines()
    piped = subprocess.run(
        f"{' '.join(_command('list', str(folder)))} | head -3",
        shell=True, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert piped.stdout.splitlines() == lines[:3]
    assert piped.stderr == ""


def test_list_into_a_pipe_whose_reader_has_gone_ends_quietly(two_recipes):
    head = subprocess.Popen(["head", "-3"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    head.stdin.write(b"1\n2\n3\n")
    head.stdin.flush()
    assert head.wait(timeout=30) == 0  # head took its three lines and left: the pipe has no reader
    listing = subprocess.run(
        _command("list", str(two_recipes[0])),
        stdout=head.stdin, stderr=subprocess.PIPE, cwd=ROOT, text=True, timeout=120,
    )  # fmt: skip
    head.stdin.close()
    assert listing.stderr == ""
    assert listing.returncode == 141  # 128 + SIGPIPE, as the shell reports for coreutils


def test_list_shows_each_models_own_metric_in_aligned_columns(two_recipes, capsys):
    folder, value = two_recipes
    lines = _list(capsys, str(folder)).splitlines()
    models = {line.split()[1]: line for line in lines if line.startswith("model")}
    assert models["codec/ae"].split()[-3:] == ["psnr", f"{value:.2f}", "dB"]
    assert models["unit/base"].split()[-3] == "top1" and models["unit/base"].endswith("%")
    assert len(lines) == 6  # four models, two pairs
    for word in ("digits-", "psnr", "top1"):  # architectures and metrics each start one column
        assert len({line.index(word) for line in models.values() if word in line}) == 1
    pairs = [line for line in lines if line.startswith("pair")]
    assert {line.index("unit/base ->") for line in pairs} == {pairs[0].index("unit/base ->")}
    third = {re.match(r"\S+\s+\S+\s+", line).end() for line in lines}
    assert len(third) == 1  # past the ids, models and pairs go on in one column


def test_list_as_json_and_csv_hold_the_same_records(two_recipes, capsys):
    folder, value = two_recipes
    listed = json.loads(_list(capsys, str(folder), "--json"))
    ae = next(m for m in listed["models"] if m["id"] == "codec/ae")
    assert (ae["metric"], ae["value"], ae["unit"], ae["recipe"]) == ("psnr", value, "dB", "codec")
    assert {p["id"]: p["relation"] for p in listed["pairs"]} == {
        "unit/base..updated": "more-data", "unit/base..wide": "transfer-add-classes"
    }  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(_list(capsys, str(folder), "--csv"))))
    assert [r["id"] for r in rows] == [m["id"] for m in listed["models"]] + [
        p["id"] for p in listed["pairs"]
    ]
    by_id = {r["id"]: r for r in rows}
    assert float(by_id["codec/ae"]["value"]) == value and by_id["codec/ae"]["kind"] == "model"
    assert (
        by_id["unit/base..wide"]["base"] == "unit/base" and by_id["unit/base..wide"]["unit"] == ""
    )


def _ids(capsys, folder, *args: str) -> list[str]:
    return [line.split()[1] for line in _list(capsys, str(folder), *args).splitlines()]


def test_list_filters_by_recipe_and_relation(two_recipes, capsys):
    folder = two_recipes[0]
    assert _ids(capsys, folder, "--recipe", "codec") == ["codec/ae"]
    unit = ["unit/base", "unit/updated", "unit/wide", "unit/base..updated", "unit/base..wide"]
    assert _ids(capsys, folder, "--recipe", "unit") == unit
    added = ["unit/base", "unit/wide", "unit/base..wide"]
    assert _ids(capsys, folder, "--relation", "transfer-add-classes") == added
    nothing = _list(capsys, str(folder), "--recipe", "codec", "--relation", "more-data")
    assert nothing == "(no models or pairs)\n"
    markdown = _list(capsys, str(folder), "--markdown", "--relation", "more-data").splitlines()
    assert markdown[0].startswith("| pair | relation |") and len(markdown) == 3
    assert markdown[2].startswith("| unit/base..updated | more-data |")


@pytest.mark.parametrize(
    ("option", "known"), [("--recipe", "codec, unit"), ("--relation", "more-data, other-data")]
)
def test_list_refuses_an_unknown_recipe_or_relation(option, known, two_recipes, capsys):
    assert main(["list", str(two_recipes[0]), option, "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err and known in err


RECIPE = """# %% tags=["parameters"]
bits = [2, 4, 6, 8]
out = ""

# %%
import pathlib

pathlib.Path(out).write_text(repr(bits))
"""


def test_run_reads_a_list_where_papermill_p_reads_text_and_y_a_list(tmp_path, capsys):
    """What book/running.md says of `pairzoo run -p`, papermill's `-p` and papermill's `-y`."""
    recipe, out = tmp_path / "recipe.py", tmp_path / "bits.txt"
    recipe.write_text(RECIPE)
    assert main(["run", str(recipe), "-p", "bits", "[3, 5]", "-p", "out", str(out)]) == 0
    assert out.read_text() == "[3, 5]"
    notebook = tmp_path / "recipe.ipynb"
    jupytext = [sys.executable, "-m", "jupytext", "--to", "ipynb", str(recipe)]
    subprocess.run(jupytext, check=True, capture_output=True, timeout=120)
    injected = []
    for option in (["-p", "bits", "[3, 5]"], ["-y", "bits: [3, 5]"]):
        prepared = tmp_path / f"prepared{len(injected)}.ipynb"
        subprocess.run(
            [sys.executable, "-m", "papermill", str(notebook), str(prepared), *option,
             "--prepare-only", "-k", "python3", "--language", "python"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        cells = json.loads(prepared.read_text())["cells"]
        injected += [
            "".join(c["source"]) for c in cells if "injected-parameters" in c["metadata"]["tags"]
        ]
    assert [source.splitlines()[-1] for source in injected] == ['bits = "[3, 5]"', "bits = [3, 5]"]


QUIET_RECIPE = """# %% tags=["parameters"]
profile = "ci"
artifacts = ""
"""


def test_run_ends_with_the_recipes_models_pairs_folder_and_time(folder_copy, tmp_path, capsys):
    recipe = tmp_path / "unit.py"  # the recipe that wrote `built_folder`
    recipe.write_text(QUIET_RECIPE)
    assert main(["run", str(recipe), "-p", "artifacts", str(folder_copy)]) == 0
    written = capsys.readouterr()
    assert written.out == ""
    assert re.fullmatch(
        rf"unit: 3 models, 2 pairs written to {re.escape(str(folder_copy))} in \d+ s\n", written.err
    )
    (tmp_path / "other.py").write_text(QUIET_RECIPE)
    assert main(["run", str(tmp_path / "other.py"), "-p", "artifacts", str(folder_copy)]) == 0
    assert re.fullmatch(
        rf"other: done in \d+ s; output in {re.escape(str(folder_copy))}\n", capsys.readouterr().err
    )
    assert summary("other", {}, 65.4) == "other: done in 1 min 5 s"
    assert summary("other", {}, 7290) == "other: done in 2 h 1 min"
