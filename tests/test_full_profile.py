"""The full profile on `tiny-real` data: miniatures of the real datasets and weight caches."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pairzoo.archive.validate import validate
from pairzoo.data.detection import load_detection_task
from pairzoo.data.image_files import ImageFiles
from pairzoo.data.loading import load_dataset
from pairzoo.errors import PairzooError
from pairzoo.models.build import HEADS, build_model
from pairzoo.models.pretrained import keras_mobilenet_v2, torch_checkpoint
from pairzoo.record import manifest

from . import fabricate
from .conftest import ROOT


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRZOO_DATA", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("val", ["folders", "devkit", "loc"])
def test_imagenet_reads_train_folders_and_each_validation_layout(data_root, val):
    fabricate.imagenet(data_root, val)
    data = load_dataset("full", "imagenet")
    assert data.classes == fabricate.WNIDS and data.info.id == "imagenet"
    assert data.sizes == {"train": 12, "test": 6} and data.input_shape == (3, 224, 224)
    assert data.y_train.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.y_test.tolist() == ([0, 0, 1, 1, 2, 2] if val == "folders" else [0, 1, 2] * 2)
    assert isinstance(data.x_train, ImageFiles) and isinstance(data.x_test[[0, 3]], ImageFiles)
    batch = np.asarray(data.x_test[:2], dtype=np.float32)
    assert batch.shape == (2, 3, 224, 224) and abs(batch.mean()) < 1.0
    np.testing.assert_array_equal(batch, np.asarray(data.x_test[:2]))  # eval: deterministic
    assert data.x_train[5].shape == (3, 224, 224)
    picked = data.x_test[data.y_test == 1]
    assert len(picked) == 2 and all("val_" in p for p in picked.paths)


def test_imagenet_missing_parts_are_listed_with_where_they_were_looked_for(data_root):
    with pytest.raises(PairzooError, match=r"imagenet not found at .*train/<wnid>"):
        load_dataset("full", "imagenet")
    folder = fabricate.imagenet(data_root, "loc")
    (folder / "LOC_val_solution.csv").unlink()
    with pytest.raises(PairzooError, match=r"labels are missing.*ground_truth.*LOC_val_solution"):
        load_dataset("full", "imagenet")
    (folder / "train").rename(folder / "training")
    with pytest.raises(PairzooError, match=r"missing .*imagenet/train/"):
        load_dataset("full", "imagenet")


def test_cifar_loaders_read_the_pickle_layouts(data_root):
    fabricate.cifar10(data_root)
    fabricate.cifar100(data_root)
    ten, hundred = load_dataset("full", "cifar10"), load_dataset("full", "cifar100")
    assert ten.sizes == {"train": 20, "test": 4} and ten.classes[0] == "airplane"
    assert hundred.sizes == {"train": 12, "test": 6} and len(hundred.classes) == 100
    assert hundred.x_test.shape == (6, 3, 32, 32) and hundred.info.id == "cifar100"
    with pytest.raises(PairzooError, match="unknown dataset 'mnist'"):
        load_dataset("full", "mnist")


def test_voc_task_reads_the_devkit_layout(data_root):
    fabricate.voc(data_root)
    crops, voc = load_detection_task("full")
    assert voc.sizes == {"train": 2, "test": 1} and crops.sizes == {"train": 4, "test": 2}


def test_torchvision_weights_come_from_torch_home_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PairzooError, match=r"looked for .*hub/checkpoints/resnet18-f37072fd.pth"):
        torch_checkpoint("resnet18")
    path = fabricate.torch_weights(tmp_path, "resnet18", seed=3)
    pretrained = torch_checkpoint("resnet18")
    assert pretrained.path == path and pretrained.record()["published_top1"] == 69.758
    saved = torch.load(path, weights_only=True)
    same = build_model("resnet18", 1000, 3, seed=0, pretrained=pretrained)
    torch.testing.assert_close(same.state_dict(), saved, rtol=0, atol=0)
    fewer = build_model("resnet18", 5, 3, seed=0, pretrained=pretrained)
    assert torch.equal(fewer.layer4[1].conv2.weight, saved["layer4.1.conv2.weight"])
    assert fewer.fc.out_features == 5
    with pytest.raises(PairzooError, match="does not fit resnet50"):
        build_model("resnet50", 5, 3, seed=0, pretrained=pretrained)


def test_architectures_by_name_have_their_heads():
    for architecture in ("resnet50", "vgg16", "mobilenet_v2", "efficientnet_b0"):
        model = build_model(architecture, 7, 3, seed=0)
        assert model.get_submodule(HEADS[architecture]).out_features == 7


def test_keras_weights_are_looked_up_in_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    with pytest.raises(PairzooError, match=f"looked for {tmp_path}/models/{name}"):
        keras_mobilenet_v2(224)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / name).write_bytes(b"")
    assert keras_mobilenet_v2(224).path == tmp_path / "models" / name


def test_retraining_runs_in_the_full_profile_on_tiny_imagenet(tmp_path, monkeypatch):
    fabricate.imagenet(tmp_path / "data", "devkit")
    fabricate.torch_weights(tmp_path / "torch", "resnet18")
    env = {
        **os.environ,
        "PAIRZOO_DATA": str(tmp_path / "data"),
        "TORCH_HOME": str(tmp_path / "torch"),
        "PAIRZOO_WORKERS": "2",
        "MPLBACKEND": "Agg",
    }
    parameters = {
        "profile": "full",
        "artifacts": tmp_path / "out",
        "architecture": "resnet18",
        "base_epochs": 1,
        "retrain_epochs": 1,
        "ladder": [1],
        "chain_fractions": [1.0],
    }
    command = [sys.executable, "-m", "pairzoo.cli", "run", "notebooks/retraining.py"]
    for name, value in parameters.items():
        command += ["-p", name, str(value)]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=600)
    assert validate(tmp_path / "out") == []
    entries = manifest.load(tmp_path / "out")
    base = entries["models"]["retraining/base"]
    assert base["architecture"] == "resnet18" and base["input_shape"] == [3, 224, 224]
    assert base["training"]["dataset"] == "imagenet" and base["classes"] == list(fabricate.WNIDS)
    assert base["training"]["pretrained"]["file"] == "resnet18-f37072fd.pth"
    assert "pretrained" not in entries["models"]["retraining/more-data"]["training"]
    assert set(entries["pairs"]) >= {"retraining/base..more-data", "retraining/base..epochs-1"}


DDP_SCRIPT = """
import json, sys
import numpy as np, torch
from pairzoo import distributed
from pairzoo.data.loading import load_dataset
from pairzoo.models.build import build_model
from pairzoo.record.writer import PairWriter
from pairzoo.train.loop import accuracy, train
from pairzoo.train.config import TrainConfig

data = load_dataset("full", "imagenet")
model = build_model("digits-cnn", 3, 3, seed=0)
losses = train(model, data.x_train, data.y_train, TrainConfig(epochs=1, batch_size=4, seed=0))
top1 = accuracy(model, data.x_test, data.y_test, batch_size=4)
with torch.no_grad():
    logits = model.eval()(torch.from_numpy(np.asarray(data.x_test)))
alone = 100.0 * float((logits.argmax(1).numpy() == data.y_test).mean())
writer = PairWriter("ddp", "full", data, sys.argv[1])
state = {k: v.double().sum().item() for k, v in model.state_dict().items()}
print(json.dumps({"rank": distributed.rank(), "losses": losses, "top1": top1, "alone": alone,
                  "state": state, "folder": str(writer.folder)}))
"""


def test_torchrun_trains_on_every_process_and_only_rank_0_writes(tmp_path):
    fabricate.imagenet(tmp_path / "data", "folders")
    (tmp_path / "ddp.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "PAIRZOO_DATA": str(tmp_path / "data"), "PAIRZOO_WORKERS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*command, str(tmp_path / "ddp.py"), str(tmp_path / "out")],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    ranks = sorted((json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")),
                   key=lambda r: r["rank"])  # fmt: skip
    assert [r["rank"] for r in ranks] == [0, 1]
    first, second = ranks
    assert first["state"] == second["state"] and first["losses"] == second["losses"]
    assert first["top1"] == second["top1"] == pytest.approx(first["alone"])
    assert (
        first["folder"] == str(tmp_path / "out") and (tmp_path / "out" / "manifest.json").exists()
    )
    assert second["folder"] != first["folder"] and not os.path.exists(second["folder"])
