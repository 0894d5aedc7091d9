import numpy as np
import pytest

from pairzoo.record.stats import TensorChange, pair_stats, structure_change


def test_tensor_change_on_hand_made_tensors():
    base = np.array([3.0, 0.0, 4.0, 1.0], dtype=np.float32)
    updated = np.array([3.0, 0.0, 4.0, 1.0], dtype=np.float32)
    updated[3] = 1.0 + 5.0
    change = TensorChange.between(base, updated)
    assert change.numel == 4
    assert change.changed == 1
    assert change.changed_fraction == 0.25
    assert change.l2_delta == pytest.approx(5.0)
    assert change.l2_base == pytest.approx(np.sqrt(26.0))
    assert change.rel_l2 == pytest.approx(5.0 / np.sqrt(26.0))
    assert change.max_abs_delta == pytest.approx(5.0)


def test_zero_base_has_no_relative_change():
    zero = np.zeros(3, dtype=np.float32)
    assert TensorChange.between(zero, zero).rel_l2 == 0.0
    assert TensorChange.between(zero, np.ones(3, dtype=np.float32)).rel_l2 is None


def test_total_is_the_concatenated_vector():
    base = {"a": np.array([1.0, 2.0], np.float32), "b": np.array([[2.0]], np.float32)}
    updated = {"a": np.array([1.0, 0.0], np.float32), "b": np.array([[0.0]], np.float32)}
    stats = pair_stats(base, updated)
    flat = TensorChange.between(np.array([1.0, 2.0, 2.0]), np.array([1.0, 0.0, 0.0]))
    assert stats.total.numel == 3 and stats.total.changed == 2
    assert stats.total.rel_l2 == pytest.approx(flat.rel_l2)
    assert stats.total.l2_delta == pytest.approx(flat.l2_delta)
    assert not stats.structure.changed


def test_structure_change_lists_added_removed_reshaped():
    change = structure_change(
        {"w": (8, 4), "old": (2,), "b": (8,)}, {"w": (10, 4), "b": (8,), "new": (3,)}
    )
    assert change.changed
    assert change.added == ["new"] and change.removed == ["old"]
    assert change.reshaped == {"w": {"old": [8, 4], "new": [10, 4]}}


def test_pair_stats_skips_reshaped_tensors():
    base = {"w": np.ones((8, 4), np.float32), "b": np.ones(8, np.float32)}
    updated = {"w": np.ones((10, 4), np.float32), "b": np.zeros(8, np.float32)}
    stats = pair_stats(base, updated)
    assert list(stats.tensors) == ["b"]
    assert stats.tensors["b"].changed == 8
