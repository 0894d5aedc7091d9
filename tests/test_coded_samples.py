import shutil

import pytest

from pairzoo.archive.validate import validate
from pairzoo.bench import reference_ladder, testset
from pairzoo.cli import main
from pairzoo.coding import codec, coded_samples
from pairzoo.record import manifest, view
from pairzoo.record.staged_output import StagedOutput

PAIRS = ("unit/base..updated", "unit/base..wide")


@pytest.fixture(scope="module")
def coded_folder(built_folder, tmp_path_factory):
    """The built folder with both pairs coded and their samples stored, as update_coding does."""
    folder = tmp_path_factory.mktemp("coded") / "ci"
    shutil.copytree(built_folder, folder)
    zoo = view.open(folder)
    output = StagedOutput(folder, coded_samples.RECIPE, "ci")
    codings = {}
    for pair_id in PAIRS:
        pair, evaluate = coded_samples.load_pair(zoo.pair(pair_id))
        codings_made = {
            "full": codec.nnc_full(pair.updated, codec.NncSettings(-30)),
            "incremental": codec.nnc_update(
                pair.base, pair.updated, codec.NncSettings(-40, tca=True)
            ),
        }
        chosen = {
            name: coded_samples.ScoredCoding(coding, evaluate(coding.reconstruction))
            for name, coding in codings_made.items()
        }
        codings[pair_id] = coded_samples.record(output, zoo, pair, chosen, "fixed QPs")
    output.commit(lambda current: coded_samples.enter(current, codings))
    return folder


@pytest.fixture
def coded_copy(coded_folder, tmp_path):
    target = tmp_path / "ci"
    shutil.copytree(coded_folder, target)
    return target


def test_stored_samples_validate(coded_folder, capsys):
    assert validate(coded_folder) == []
    assert main(["validate", str(coded_folder)]) == 0
    assert "4 compressed samples decoded" in capsys.readouterr().out
    coding = manifest.load(coded_folder)["codings"]["unit/base..wide"]
    assert set(coding["samples"]["incremental"]["files"]) == {"base", "update", "new"}
    assert coding["samples"]["incremental"]["settings"]["compress_differences"] is True
    assert coding["codec"] == "nncodec" and coding["codec_version"] == codec.codec_version()


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_corrupted_bitstream_is_caught(coded_copy):
    path = coded_copy / "update_coding" / "unit" / "base..updated" / "incremental" / "update.nnc"
    _flip(path)
    problems = validate(coded_copy)
    assert any("update bitstream" in p and "sha256" in p for p in problems)

    entries = manifest.load(coded_copy)
    sample = entries["codings"]["unit/base..updated"]["samples"]["incremental"]
    sample["files"]["update"] = manifest.file_record(path, coded_copy)
    (coded_copy / "manifest.json").write_text(manifest.dumps(entries))
    problems = validate(coded_copy)
    assert any(
        "unit/base..updated (incremental)" in p
        and ("does not decode" in p or "decodes to other tensors" in p)
        for p in problems
    ), problems


def test_recorded_metric_is_checked(coded_copy):
    entries = manifest.load(coded_copy)
    entries["codings"]["unit/base..updated"]["samples"]["full"]["value"] += 1.0
    (coded_copy / "manifest.json").write_text(manifest.dumps(entries))
    assert any("(full): decoded model scores" in p for p in validate(coded_copy))


def test_coding_of_changed_models_is_flagged(coded_copy):
    entries = manifest.load(coded_copy)
    entries["codings"]["unit/base..wide"]["base"]["sha256"] = "0" * 64
    (coded_copy / "manifest.json").write_text(manifest.dumps(entries))
    problems = validate(coded_copy)
    assert any("unit/base..wide: the base model's tensors changed since" in p for p in problems)


def test_model_recipes_rerunning_keep_the_codings(coded_copy, digits):
    from pairzoo.record.writer import PairWriter

    PairWriter("other", "ci", digits, coded_copy).finish()
    assert set(manifest.load(coded_copy)["codings"]) == set(PAIRS)
    assert validate(coded_copy) == []


def test_ladder_in_two_processes_equals_one_process(built_folder):
    test_set = testset.open(built_folder)
    one = reference_ladder.code(test_set, PAIRS, [-24, -40], 0.5, workers=1)
    two = reference_ladder.code(testset.open(built_folder), PAIRS, [-24, -40], 0.5, workers=2)
    assert list(two) == list(PAIRS)
    for pair_id in PAIRS:
        drop = ["encode_s", "decode_s"]
        assert [{k: v for k, v in r.items() if k not in drop} for r in one[pair_id].rows] == [
            {k: v for k, v in r.items() if k not in drop} for r in two[pair_id].rows
        ]
        assert not [r["error"] for r in one[pair_id].rows if r["error"]]
        assert set(two[pair_id].chosen) == {"full", "incremental"}
        sample = two[pair_id].chosen["incremental"]
        assert codec.tensors_sha256(sample.coding.reconstruction) == codec.tensors_sha256(
            one[pair_id].chosen["incremental"].coding.reconstruction
        )
        assert sample.value == one[pair_id].chosen["incremental"].value
        assert two[pair_id].pair.reference == one[pair_id].pair.reference
    rows = one[PAIRS[0]].rows
    assert {r["codec"] for r in rows} == {*reference_ladder.LOSSLESS, *reference_ladder.QUANTISED}
    chosen = one[PAIRS[0]].chosen["incremental"]
    row = next(
        r
        for r in rows
        if r["codec"] == "nnc-incremental-tca" and r["params"]["qp"] == chosen.coding.settings["qp"]
    )
    assert row["value"] == chosen.value  # the harness scored the same tensors as the sample holds
