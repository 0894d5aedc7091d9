import numpy as np
import pytest

from pairzoo.coding import codec
from pairzoo.coding.coded_samples import load_pair
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import load_tensors
from pairzoo.record import manifest, view

PAIR = "unit/base..updated"


@pytest.fixture(scope="module")
def loaded(built_folder):
    return load_pair(view.open(built_folder).pair(PAIR))


@pytest.fixture(scope="module")
def pair(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def evaluate(loaded):
    return loaded[1]


def _max_error(a, b):
    return {k: float(np.max(np.abs(a[k] - b[k]))) for k in a}


def test_full_coding_round_trips_real_tensors_within_the_step(pair, evaluate):
    settings = codec.NncSettings(-38)
    coding = codec.nnc_full(pair.updated, settings)
    assert set(coding.reconstruction) == set(pair.updated)
    for name, error in _max_error(pair.updated, coding.reconstruction).items():
        assert error <= 2 * settings.step(pair.updated[name].shape), name  # DQ: two grids
    again = codec.decode(coding.parts["full"], {k: v.shape for k, v in pair.updated.items()})
    assert codec.tensors_sha256(again) == codec.tensors_sha256(coding.reconstruction)
    assert coding.size < 0.25 * codec.float32(pair.updated).size
    assert abs(evaluate(coding.reconstruction) - pair.reference) <= 2.0


def test_incremental_coding_of_a_small_update_is_smaller_than_full(pair):
    rng = np.random.default_rng(0)
    small = {
        k: (v + 1e-3 * rng.standard_normal(v.shape) * (rng.random(v.shape) < 0.1)).astype(
            np.float32
        )
        for k, v in pair.base.items()
    }
    settings = codec.NncSettings(-38, tca=True)
    full = codec.nnc_full(small, settings)
    update = codec.nnc_update(pair.base, small, settings)
    assert update.size < 0.2 * full.size
    assert set(update.parts) == {"base", "update"}
    for name, error in _max_error(small, update.reconstruction).items():
        assert error <= 2 * settings.step(small[name].shape), name


def test_tensors_without_a_base_counterpart_are_coded_whole(pair):
    updated = dict(pair.base)
    updated["classifier.weight"] = np.ones((7, 128), np.float32)
    updated["extra"] = np.full((4, 4), 0.5, np.float32)
    coding = codec.nnc_update(pair.base, updated, codec.NncSettings(-38))
    assert set(coding.parts) == {"base", "update", "new"}
    assert coding.size == len(coding.parts["update"]) + len(coding.parts["new"])
    assert coding.reconstruction["classifier.weight"].shape == (7, 128)
    np.testing.assert_allclose(coding.reconstruction["extra"], 0.5, atol=2 * 1.5 * 2.0**-10)


def test_all_zero_tensors_are_restored_as_zeros(pair):
    context = codec.new_context()
    settings = codec.NncSettings(-38)
    codec.encode({"w": pair.base["classifier.weight"]}, settings, context)
    delta = {"w": np.zeros((10, 128), np.float32)}
    bitstream = codec.encode(delta, settings, context, differences=True)
    decoded = codec.decode(bitstream, {"w": (10, 128)}, _decoder_context(pair, settings))
    assert decoded["w"].shape == (10, 128) and not decoded["w"].any()

    unchanged = dict(pair.updated)
    unchanged["classifier.bias"] = pair.base["classifier.bias"].copy()
    coding = codec.nnc_update(pair.base, unchanged, settings)
    np.testing.assert_array_equal(
        coding.reconstruction["classifier.bias"], pair.base["classifier.bias"]
    )


def _decoder_context(pair, settings):
    context = codec.new_context()
    bitstream = codec.encode({"w": pair.base["classifier.weight"]}, settings)
    codec.decode(bitstream, {"w": (10, 128)}, context)
    return context


def test_nncodec_system_exit_becomes_a_pairzoo_error():
    with pytest.raises(PairzooError, match="nncodec failed while reading.*SystemExit"):
        codec.run_nnc("reading", lambda nnc: nnc.decompress("/nonexistent/bitstream.nnc"))
    with pytest.raises(PairzooError, match="does not decode|decoding a bitstream"):
        codec.decode(b"not a bitstream", {"w": (3, 3)})


def test_bad_input_is_refused_with_the_tensor_named(built_folder):
    tensors = load_tensors(built_folder / "unit" / "base.safetensors")
    settings = codec.NncSettings(-38)
    as_double = {k: v.astype(np.float64) for k, v in tensors.items()}
    with pytest.raises(PairzooError, match="float32 arrays only; tensor '.*' is float64"):
        codec.encode(as_double, settings)
    with pytest.raises(PairzooError, match="'w' holds NaN"):
        codec.encode({"w": np.full((2, 2), np.nan, np.float32)}, settings)
    with pytest.raises(PairzooError, match="empty"):
        codec.encode({}, settings)


def test_quantised_baseline_uses_nnc_step(pair):
    settings = codec.NncSettings(-30)
    gzipped, coding = codec.delta_quantised(pair.base, pair.updated, settings)
    assert (gzipped.method, coding.method) == ("gzip-delta-q", "zstd-delta-q")
    assert gzipped.reconstruction is coding.reconstruction
    for name, error in _max_error(pair.updated, coding.reconstruction).items():
        assert error <= 0.5 * settings.step(pair.updated[name].shape) + 1e-6, name
    lossless = codec.delta_lossless(pair.base, pair.updated, "gzip")
    assert _max_error(pair.updated, lossless.reconstruction) == pytest.approx(
        {k: 0.0 for k in pair.updated}, abs=1e-6
    )
    assert settings.step((3, 3)) == 1.5 * 2.0**-8 and settings.step((3,)) == 2.0**-19 * 1.25


def test_onnx_scoring_matches_the_framework_metric(built_folder, pair, evaluate):
    recorded = manifest.load(built_folder)["models"]["unit/updated"]["metrics"]["top1"]["value"]
    assert abs(pair.reference - recorded) <= 100.0 / len(evaluate.y) + 1e-9
    with pytest.raises(PairzooError, match="not float initializers"):
        evaluate({"no-such-tensor": np.zeros(3, np.float32)})


@pytest.mark.parametrize("tca", [False, True])
def test_a_base_coded_once_per_qp_gives_the_updates_fresh_coding_gives(pair, tca):
    base, updated = pair.base, pair.updated
    settings = codec.NncSettings(qp=-24, tca=tca)
    shared = codec.encode_base(base, updated, settings)
    for _ in range(2):  # the shared context is not changed by the updates coded from it
        reused = codec.nnc_update(base, updated, settings, shared)
        fresh = codec.nnc_update(base, updated, settings)
        assert reused.parts == fresh.parts
    with pytest.raises(PairzooError, match="QP"):
        codec.nnc_update(base, updated, codec.NncSettings(qp=-30), shared)


def test_scoring_sessions_take_the_threads_the_process_was_given(built_folder, monkeypatch):
    outputs = {}
    for threads in ("1", "2", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        _, evaluate = load_pair(view.open(built_folder).pair(PAIR))
        given = evaluate.session.get_session_options().intra_op_num_threads
        assert given == (int(threads) if threads else 0)  # 0: onnxruntime's own choice
        outputs[threads] = evaluate.outputs()
    assert all(np.array_equal(out, outputs["1"]) for out in outputs.values())
