import shutil
from pathlib import Path

import pytest

from pairzoo.data.sets import draw, load_digits
from pairzoo.models.build import build_model
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def built_folder(tmp_path_factory, digits):
    """An output folder with three models (two of them sharing a base) and two pairs."""
    folder = tmp_path_factory.mktemp("artifacts") / "ci"
    writer = PairWriter("unit", "ci", digits, folder, architecture="digits-cnn")
    subset = draw(digits, 0.2, 0)
    config = TrainConfig(epochs=1, seed=0)
    base = build_model("digits-cnn", 10, 1, 0)
    train(base, subset.x_train, subset.y_train, config)

    def add(name, model, start, classes=None):
        top1 = accuracy(model, digits.x_test, digits.y_test)
        training = Training.of(subset, config, start=start)
        writer.add_model(name, model, training=training, metrics={"top1": top1}, classes=classes)

    add("base", base, None)
    updated = build_model("digits-cnn", 10, 1, 0)
    updated.load_state_dict(base.state_dict())
    train(updated, digits.x_train, digits.y_train, config)
    add("updated", updated, "base")
    add("wide", build_model("digits-cnn", 7, 1, 1), None, digits.classes[:7])
    writer.add_pair("base", "updated", "more-data")
    writer.add_pair("base", "wide", "transfer-add-classes")
    writer.finish()
    return folder


@pytest.fixture
def folder_copy(built_folder, tmp_path):
    target = tmp_path / "ci"
    shutil.copytree(built_folder, target)
    return target
