"""The benchmark: the public API on real output folders and archives, the harness and the CLI."""

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pairzoo
from pairzoo.archive.pack import package
from pairzoo.archive.validate import validate
from pairzoo.atomic import write_text
from pairzoo.bench import bdrate, reference_ladder, results, summary, testset
from pairzoo.bench.harness import evaluate
from pairzoo.bench.plugin import load_codec
from pairzoo.cli import main
from pairzoo.coding import coded_samples
from pairzoo.errors import PairzooError
from pairzoo.record import manifest
from pairzoo.record.staged_output import StagedOutput

from . import sample_codecs
from .conftest import ROOT

CODECS = Path(sample_codecs.__file__)


def test_every_pair_scores_and_the_uncoded_tensors_reproduce_the_manifest(built_folder):
    with pairzoo.open(built_folder) as test_set:
        pairs = test_set.pairs()
        assert [p.id for p in pairs] == ["unit/base..updated", "unit/base..wide"]
        for pair in pairs:
            assert pair.score().value == pytest.approx(pair.reference, abs=1e-9)
            assert pair.score(pair.updated_tensors()).agreement == 100.0
            assert pair.parameters == sum(v.size for v in pair.updated_tensors().values())
        assert [p.id for p in test_set.pairs(structure="reshaped")] == ["unit/base..wide"]
        assert [p.id for p in test_set.pairs(pattern="*updated")] == ["unit/base..updated"]


def test_a_reconstruction_changes_the_score_and_its_fidelity(built_folder):
    pair = pairzoo.open(built_folder).pair("unit/base..updated")
    assert pair.task == "classifier" and pair.structure == {"matched"}
    base_score = pair.score(pair.base_tensors())
    assert base_score.agreement < 100.0 and base_score.nll != pair.score().nll
    broken = {**pair.updated_tensors()}
    name = next(iter(broken))
    broken[name] = broken[name].astype(np.float64)
    with pytest.raises(PairzooError, match="float64"):
        pair.score(broken)


def test_the_zip_archive_scores_as_the_folder(built_folder, tmp_path):
    archive = package(built_folder, tmp_path / "set.zip")
    folder = evaluate(sample_codecs.Exact(), built_folder, progress=False)
    zipped = evaluate(sample_codecs.Exact(), archive, progress=False)
    assert [r["value"] for r in zipped.rows] == [r["value"] for r in folder.rows]
    assert not zipped.errors and len(zipped.rows) == 2


@pytest.mark.parametrize(
    ("codec", "error"),
    [
        ("Raises", "RuntimeError: this codec cannot code that"),
        ("Missing", "tensor names differ: missing"),
        ("Extra", "extra ['surplus']"),
        ("Reshaped", "has shape"),
        ("Float64", "is float64, not float32"),
        ("NotFinite", "NaN or infinite"),
        ("Unstable", "another reconstruction from the same payload"),
        ("NotBytes", "returned a list, not bytes"),
        ("Stash", "AttributeError"),  # its decoder never saw what the encoder was given
    ],
)
def test_a_faulty_codec_gets_an_error_per_row_and_the_run_goes_on(
    built_folder, tmp_path, capsys, codec, error
):
    output = tmp_path / "out"
    code = main(["evaluate", f"{CODECS}:{codec}", str(built_folder), "-o", str(output)])
    assert code == 1
    document = json.loads((output / results.RESULTS_JSON).read_text())
    assert len(document["rows"]) == 2 and all(error in r["error"] for r in document["rows"])
    assert (output / results.RESULTS_CSV).read_text().count("\n") == 3
    assert "2 errors" in capsys.readouterr().out


def test_a_good_codec_scores_every_point_and_writes_every_output(built_folder, tmp_path, capsys):
    output = tmp_path / "out"
    code = main(
        ["evaluate", f"{CODECS}:Exact", str(built_folder), "-p", "gain=1.0,0.0", "-o", str(output)]
    )
    assert code == 0
    rows = json.loads((output / results.RESULTS_JSON).read_text())["rows"]
    assert [(r["pair"], r["params"]["gain"]) for r in rows] == [
        ("unit/base..updated", 0.0), ("unit/base..updated", 1.0),
        ("unit/base..wide", 0.0), ("unit/base..wide", 1.0),
    ]  # fmt: skip
    exact = [r for r in rows if r["params"]["gain"] == 1.0]
    assert all(r["delta"] == pytest.approx(0.0, abs=1e-9) and r["agreement"] == 100 for r in exact)
    zeroed = [r for r in rows if r["params"]["gain"] == 0.0]
    assert all(r["agreement"] < 100 for r in zeroed)
    assert {p.name for p in output.iterdir()} == {
        "results.json", "results.csv", "summary.md", "bdrate.csv", "figures"
    }  # fmt: skip
    assert not [p for p in output.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]


def test_a_rerun_skips_finished_rows_and_retries_failed_ones(built_folder, tmp_path):
    output = tmp_path / "out"
    first = evaluate(sample_codecs.Exact(), built_folder, {"gain": [1.0]}, output=output)
    document = json.loads((output / results.RESULTS_JSON).read_text())
    document["rows"][0]["error"] = "RuntimeError: lost"
    (output / results.RESULTS_JSON).write_text(json.dumps(document))
    before = sample_codecs.CALLS["encode"]
    again = evaluate(sample_codecs.Exact(), built_folder, {"gain": [1.0]}, output=output)
    assert sample_codecs.CALLS["encode"] - before == 1  # only the failed row ran again
    assert again.resumed == 1 and not again.errors
    assert [r["value"] for r in again.rows] == [r["value"] for r in first.rows]
    with pytest.raises(PairzooError, match="holds results of codec 'exact'"):
        evaluate(sample_codecs.Raises(), built_folder, output=output)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["no_such_module:Codec"], "cannot import it"),
        ([f"{CODECS.parent}/absent.py:Codec"], "no such file"),
        ([f"{CODECS}:Nothing"], "has no 'Nothing'"),
        ([f"{CODECS}:Exact", "-p", "speed=1"], "takes no parameter speed"),
        ([f"{CODECS}:Exact", "-p", "gain"], "write NAME=V1,V2"),
        ([f"{CODECS}:Exact", "--pairs", "nothing*"], "no pair of"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_work(
    built_folder, tmp_path, capsys, arguments, message
):
    output = tmp_path / "out"
    code = main(["evaluate", arguments[0], str(built_folder), *arguments[1:], "-o", str(output)])
    error = capsys.readouterr().err
    assert code == 2 and message in error and error.count("\n") == 1
    assert not output.exists()


def test_a_codec_declares_the_structure_changes_it_codes(built_folder):
    class MatchedOnly(sample_codecs.Exact):
        supports = ()

    evaluation = evaluate(MatchedOnly(), built_folder, progress=False)
    assert [r["pair"] for r in evaluation.rows] == ["unit/base..updated"]
    assert "reshaped" in evaluation.skipped["unit/base..wide"]


def test_the_example_codec_is_a_plug_in():
    codec = load_codec("pairzoo.bench.example_codec:TopKDelta")
    base = {"w": np.zeros((4, 5), np.float32)}
    updated = {
        "w": np.arange(20, dtype=np.float32).reshape(4, 5) / 100,
        "new": np.ones(3, np.float32),
    }
    decoded = codec.decode(codec.encode(base, updated, keep=1.0, step=0.01), base, step=0.01)
    assert {k: v.dtype for k, v in decoded.items()} == {"w": np.float32, "new": np.float32}
    assert np.allclose(decoded["w"], updated["w"], atol=0.005) and np.allclose(decoded["new"], 1)


def test_bd_rate_of_a_curve_at_half_the_rate_is_minus_half():
    anchor = [(1.0, 90.0), (2.0, 95.0), (4.0, 97.0), (8.0, 98.0)]
    half = [(rate / 2, value) for rate, value in anchor]
    assert bdrate.bd_rate(anchor, half, "top1") == pytest.approx(-50.0, abs=1e-6)
    assert bdrate.bd_rate(anchor, [(1.0, 99.5), (2.0, 99.9)], "top1") is None  # no overlap
    assert bdrate.front([(1, 90), (2, 89), (3, 95)], True) == [(1, 90), (3, 95)]


BUILT = ROOT / "artifacts" / "ci"


@pytest.mark.skipif(
    not (BUILT / "manifest.json").exists() and not os.environ.get("PAIRZOO_REQUIRE_BOOK"),
    reason="needs the ci set the book builds (make book)",
)
def test_every_pair_of_the_built_ci_set_scores_as_its_manifest_says():
    with pairzoo.open(BUILT) as test_set:
        pairs = test_set.pairs()
        assert pairs
        for pair in pairs:
            assert pair.score().value == pytest.approx(pair.reference, abs=1e-6), pair.id


@pytest.fixture(scope="module")
def laddered(built_folder, tmp_path_factory):
    """The built folder with the reference ladder stored as update_coding stores it."""
    folder = tmp_path_factory.mktemp("laddered") / "ci"
    shutil.copytree(built_folder, folder)
    entries = manifest.load(folder)
    test_set = testset.of(folder, entries)
    ladders = reference_ladder.code(test_set, ["unit/base..updated"], [-24, -40], 0.5, workers=1)
    output = StagedOutput(folder, coded_samples.RECIPE, "ci")
    rows = ladders["unit/base..updated"].rows
    write_text(output.path("results.csv"), results.csv_text(rows))
    ladder = output.record(output.path("results.csv"))
    output.commit(lambda current: coded_samples.enter(current, {}, ladder))
    return folder


def test_the_ladder_is_named_packed_and_read_as_the_anchor(laddered, tmp_path):
    assert validate(laddered) == []
    archive = package(laddered, tmp_path / "set.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert "pairzoo-ci/update_coding/results.csv" in zipped.namelist()
    with pairzoo.open(archive) as test_set:
        curve = bdrate.anchors(test_set)["unit/base..updated"]
        assert (
            len(curve) == 2
            and len(bdrate.anchors(test_set, measure="nll")["unit/base..updated"]) == 2
        )
        evaluation = evaluate("nnc-incremental", test_set, {"qp": [-24, -40]}, progress=False)
        table = summary.pair_bd_rates(evaluation, test_set)
    # the built-in codec is the anchor itself: no rate difference at equal cross-entropy
    assert table.set_index("pair").loc["unit/base..updated", "BD-rate NLL %"] == pytest.approx(
        0.0, abs=1e-6
    )


def test_a_flipped_byte_in_the_ladder_is_caught(laddered, tmp_path):
    target = tmp_path / "ci"
    shutil.copytree(laddered, target)
    path = target / "update_coding" / "results.csv"
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    assert any("results.csv" in problem for problem in validate(target))
