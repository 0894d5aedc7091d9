import copy

import numpy as np
import pytest

from pairzoo.bench import builtin_codecs, payload
from pairzoo.bench.builtin_codecs import BASE_CONTEXTS, BUILTIN
from pairzoo.bench.plugin import Codec, call_parameters, codec_name, load_codec, supported
from pairzoo.coding import codec
from pairzoo.errors import PairzooError

QP = -40
LOSSLESS = ("float32", "gzip-delta", "zstd-delta", "zipnn-delta")
QUANTISED = ("gzip-delta-q", "zstd-delta-q")
NNC = ("nnc-full", "nnc-incremental", "nnc-incremental-tca")
# NNC's payload beyond its bitstreams on the fabricated pair: the layout (runs of base tensors,
# one run of the new tensors that NNC's bitstream names, the 0-d one spelt out: 23 bytes) and one
# or two bytes for each part's length but the last
NNC_OVERHEAD = 23 + 3


def _random(rng, *shape):
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    base = {
        "conv.weight": _random(rng, 8, 4, 3, 3),
        "conv.bias": _random(rng, 8),
        "frozen.weight": _random(rng, 6, 5),
        "head.weight": _random(rng, 10, 16),
        "gone.bias": _random(rng, 5),
        "temperature": np.array(1.5, np.float32),
    }
    base["conv.weight"][1, 0, 0, 0] = 3e4  # far above its update: float32's delta misses it
    updated = {
        "conv.weight": base["conv.weight"] + _random(rng, 8, 4, 3, 3) / 50,
        "conv.bias": base["conv.bias"] + _random(rng, 8) / 50,
        "frozen.weight": base["frozen.weight"].copy(),  # an all-zero delta: NNC leaves it out
        "head.weight": _random(rng, 12, 16),  # reshaped
        "added.bias": _random(rng, 12),
        "added.zero": np.zeros((3, 3), np.float32),
        "added.scale": np.array(0.3, np.float32),
        "temperature": np.array(1.25, np.float32),
    }
    updated["conv.weight"][0, 0, 0, 0] = 7e4  # beyond float16, within bfloat16's range
    updated["conv.weight"][1, 0, 0, 0] = 1e-3
    return base, updated


def _params(builtin, **params):
    return call_parameters(builtin.encode, params), call_parameters(builtin.decode, params)


@pytest.fixture(scope="module")
def coded(pair):
    base, updated = pair
    found = {}
    for name, builtin in BUILTIN.items():
        encode_params, decode_params = _params(builtin, qp=QP)
        data = builtin.encode(base, updated, **encode_params)
        found[name] = data, builtin.decode(data, base, **decode_params)
    return found


@pytest.mark.parametrize("name", BUILTIN)
def test_decode_gives_the_updated_names_shapes_and_dtype(pair, coded, name):
    _, updated = pair
    decoded = coded[name][1]
    assert list(decoded) == list(updated)
    assert {k: v.shape for k, v in decoded.items()} == {k: v.shape for k, v in updated.items()}
    assert {v.dtype for v in decoded.values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_codecs_reproduce_every_bit(pair, coded, name):
    base, updated = pair
    inexact = codec.delta_lossless(base, updated, "zstd").reconstruction["conv.weight"]
    assert not np.array_equal(inexact, updated["conv.weight"])  # the case the fixes are for
    for key, array in coded[name][1].items():
        assert array.tobytes() == updated[key].tobytes(), key


@pytest.mark.parametrize("name", QUANTISED)
def test_quantised_codecs_round_within_half_a_step(pair, coded, name):
    base, updated = pair
    settings = codec.NncSettings(QP)
    for key, array in coded[name][1].items():
        under = base[key] if key in base and base[key].shape == array.shape else 0
        rounding = 2 * np.spacing(np.maximum(np.abs(updated[key]), np.abs(under)))
        error = np.abs(array - updated[key])
        assert np.all(error <= settings.step(array.shape) / 2 + rounding), key
    reference = {c.method: c for c in codec.delta_quantised(base, updated, settings)}[name]
    assert _same(coded[name][1], reference.reconstruction)
    layout, _ = payload.unpack(coded[name][0], 2)
    assert len(coded[name][0]) - reference.size == len(layout) + 1  # and its length


def _same(a, b):
    return list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_nnc_codecs_reconstruct_what_codec_py_reconstructs(pair, coded):
    base, updated = pair
    references = {
        "nnc-full": codec.nnc_full(updated, codec.NncSettings(QP)),
        "nnc-incremental": codec.nnc_update(base, updated, codec.NncSettings(QP)),
        "nnc-incremental-tca": codec.nnc_update(base, updated, codec.NncSettings(QP, tca=True)),
    }
    for name, reference in references.items():
        data, decoded = coded[name]
        assert _same(decoded, reference.reconstruction), name
        assert 0 < len(data) - reference.size <= NNC_OVERHEAD, name


def test_a_pair_that_keeps_every_name_and_shape_costs_a_few_bytes(pair):
    base, _ = pair
    updated = {k: base[k] + np.float32(0.01) for k in sorted(base)}  # in name order
    assert len(payload.write_layout(base, updated)) == 2
    reference = codec.nnc_update(base, updated, codec.NncSettings(QP))
    data = BUILTIN["nnc-incremental"].encode(base, updated, qp=QP)
    assert len(data) - reference.size == 2 + 2  # the layout and two part lengths


@pytest.mark.parametrize("name", BUILTIN)
def test_decode_is_deterministic_and_needs_only_payload_and_base(pair, coded, name):
    base, _ = pair
    data, decoded = coded[name]
    fresh = copy.deepcopy(BUILTIN[name])
    BASE_CONTEXTS.held.clear()
    _, decode_params = _params(fresh, qp=QP)
    own_base = {k: v.copy() for k, v in reversed(base.items())}
    assert _same(fresh.decode(data, own_base, **decode_params), decoded)


def test_the_base_is_coded_once_for_both_incremental_codecs(pair, monkeypatch):
    base, updated = pair
    calls = []
    encode_base = codec.encode_base
    monkeypatch.setattr(codec, "encode_base", lambda *a: calls.append(1) or encode_base(*a))
    BASE_CONTEXTS.held.clear()
    for name in NNC[1:]:
        BUILTIN[name].decode(BUILTIN[name].encode(base, updated, qp=QP), base, qp=QP)
    assert len(calls) == 1


def test_every_builtin_is_a_plugin_codec_found_by_its_name():
    assert load_codec("zstd-delta-q") is BUILTIN["zstd-delta-q"]
    for name, builtin in BUILTIN.items():
        assert isinstance(builtin, Codec) and codec_name(builtin) == name
        assert supported(builtin) == {"matched", "reshaped", "added", "removed"}


def test_levels_beyond_int32_are_refused(pair):
    base, updated = pair
    far = {**updated, "conv.bias": np.full(8, 1e30, np.float32)}
    with pytest.raises(PairzooError, match="overflows int32"):
        builtin_codecs.DeltaQuantised("zstd").encode(base, far, qp=QP)
