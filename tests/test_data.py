import os
import pickle

import numpy as np
import pytest

from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import load_cifar10, stratified_subset
from pairzoo.errors import PairzooError
from pairzoo.profiles import artifacts_dir

from . import fabricate


def test_cifar10_loader_reads_the_python_pickle_layout(tmp_path):
    folder = fabricate.cifar10(tmp_path)
    data = load_cifar10(folder.parent)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.classes[0] == "airplane" and len(data.classes) == 10
    raw = pickle.loads((folder / "test_batch").read_bytes())
    pixel = raw[b"data"][0].reshape(3, 32, 32)[1, 2, 3] / 255.0
    assert data.x_test[0, 1, 2, 3] == pytest.approx((pixel - 0.4822) / 0.2435, rel=1e-5)
    assert list(data.y_test) == raw[b"labels"]


def test_cifar10_missing_batch_names_the_file(tmp_path):
    folder = fabricate.cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(PairzooError, match="data_batch_3"):
        load_cifar10(folder.parent)


class _Hostile:
    """Unpickling it runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar10_refuses_a_pickle_that_runs_code(tmp_path):
    folder = fabricate.cifar10(tmp_path)
    marker = tmp_path / "ran"
    batch = pickle.loads((folder / "data_batch_2").read_bytes())
    (folder / "data_batch_2").write_bytes(pickle.dumps({**batch, b"x": _Hostile(marker)}))
    with pytest.raises(PairzooError, match=r"data_batch_2 is not a CIFAR.*refused global .*system"):
        load_cifar10(folder.parent)
    assert not marker.exists()
    pickle.loads((folder / "data_batch_2").read_bytes())  # the plain unpickler does run it
    assert marker.exists()


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b"not a pickle at all", lambda b: pickle.dumps([1])],
    ids=["truncated", "garbage", "not-a-dict"],
)
def test_cifar10_damaged_batch_is_one_error_naming_the_file(tmp_path, damage):
    folder = fabricate.cifar10(tmp_path)
    batch = folder / "test_batch"
    batch.write_bytes(damage(batch.read_bytes()))
    with pytest.raises(PairzooError, match="test_batch"):
        load_cifar10(folder.parent)


def test_cifar_unpickler_reads_arrays_of_every_pickle_protocol(tmp_path):
    from pairzoo.data.sets import _unpickle

    batch = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        path = tmp_path / f"p{protocol}"
        path.write_bytes(pickle.dumps(batch, protocol=protocol))
        loaded = _unpickle(path, "layout")
        np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])
        assert loaded[b"labels"] == [1, 2]


def test_full_profile_without_data_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.delenv("PAIRZOO_DATA", raising=False)
    with pytest.raises(PairzooError, match="PAIRZOO_DATA is not set.*cifar-10-batches-py"):
        load_dataset("full")
    monkeypatch.setenv("PAIRZOO_DATA", str(tmp_path))
    with pytest.raises(PairzooError, match="cifar10 not found at"):
        load_dataset("full")
    fabricate.cifar10(tmp_path)
    assert load_dataset("full").sizes == {"train": 20, "test": 4}


def test_unknown_profile_is_refused():
    with pytest.raises(PairzooError, match="unknown profile 'cii'"):
        load_dataset("cii")
    with pytest.raises(PairzooError, match="unknown profile"):
        artifacts_dir("cii")


def test_stratified_subsets_are_nested_and_balanced(digits):
    small = stratified_subset(digits.y_train, 0.3, 0)
    large = stratified_subset(digits.y_train, 0.6, 0)
    assert set(small) < set(large)
    counts = np.bincount(digits.y_train[small], minlength=10)
    assert counts.min() >= 0.25 * np.bincount(digits.y_train).min()
    assert len(stratified_subset(digits.y_train, 1.0, 5)) == len(digits.y_train)
    with pytest.raises(PairzooError, match="fraction"):
        stratified_subset(digits.y_train, 0.0, 0)


def test_select_classes_keeps_their_images_and_relabels_by_slot(digits):
    from pairzoo.data.sets import select_classes

    task = select_classes(digits, [3, 9, 0])
    assert task.classes == ("3", "9", "0")
    assert set(task.y_train) == {0, 1, 2} and set(task.y_test) == {0, 1, 2}
    assert len(task.y_test) == sum(np.isin(digits.y_test, [3, 9, 0]))
    nines = digits.x_test[digits.y_test == 9]
    np.testing.assert_array_equal(task.x_test[task.y_test == 1], nines)
    assert task.info == digits.info
    with pytest.raises(PairzooError, match="not in sklearn-digits"):
        select_classes(digits, [0, 10])
    with pytest.raises(PairzooError, match="distinct"):
        select_classes(digits, [1, 1])
