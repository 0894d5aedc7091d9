"""FCOS detectors whose backbone is a classifier's feature layers; training, inference, mAP."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.fcos import FCOSHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from pairzoo import distributed, progress
from pairzoo.data.detection import DetectionData, Sample
from pairzoo.errors import PairzooError
from pairzoo.models.build import DigitsCNN
from pairzoo.timing import timed
from pairzoo.train.loop import parallel


class DigitsTrunk(nn.Module):
    """A DigitsCNN's convolution blocks (`body`, stride 2) and a new strided block (`neck`)."""

    def __init__(self, classifier: DigitsCNN, out_channels: int = 32) -> None:
        super().__init__()
        self.body = classifier.features[:-1]  # all but the global pooling: the same modules
        width = classifier.classifier.in_features
        self.neck = nn.Sequential(
            nn.Conv2d(width, out_channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One feature map at stride 4."""
        return self.neck(self.body(x))


def _resnet_trunk(classifier: torchvision.models.ResNet) -> nn.Module:
    last = classifier.fc.in_features  # channels of layer4; layer3 has half, layer2 a quarter
    return BackboneWithFPN(
        classifier,
        return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
        in_channels_list=[last // 4, last // 2, last],
        out_channels=128,
        extra_blocks=LastLevelP6P7(128, 128),
    )


def build_detector(classifier: nn.Module, data: DetectionData, seed: int) -> FCOS:
    """An FCOS detector whose backbone holds `classifier`'s feature layers (the same modules).

    DigitsCNN: its conv blocks plus one new strided block, one level at stride 4, a 2-conv head.
    ResNet: its stages under an FPN (P3–P7), the standard 4-conv head. New layers use `seed`.
    """
    torch.manual_seed(seed)
    num_classes = len(data.classes)
    if isinstance(classifier, DigitsCNN):
        trunk: nn.Module = DigitsTrunk(classifier)
        anchors = AnchorGenerator(sizes=((4,),), aspect_ratios=((1.0,),))
        head = FCOSHead(trunk.out_channels, 1, num_classes, num_convs=2)
        side = data.input_shape[1]
        size = {"min_size": side, "max_size": side, "size_divisible": 4}
    elif isinstance(classifier, torchvision.models.ResNet):
        trunk = _resnet_trunk(classifier)
        anchors = AnchorGenerator(sizes=tuple((8 * 2**i,) for i in range(5)),
                                  aspect_ratios=((1.0,),) * 5)  # fmt: skip
        head = FCOSHead(trunk.out_channels, 1, num_classes)
        size = {"min_size": 384, "max_size": 640}
    else:
        raise PairzooError(f"no detection backbone for a {type(classifier).__name__}")
    return FCOS(
        trunk,
        num_classes,
        image_mean=list(data.image_mean),
        image_std=list(data.image_std),
        anchor_generator=anchors,
        head=head,
        score_thresh=0.05,
        detections_per_img=50,
        **size,
    )


def reused_tensors(detector: nn.Module, classifier: nn.Module) -> dict[str, str]:
    """Detector tensor name → classifier tensor name, for the tensors the two share in memory.

    Call it on a detector built around the classifier's own modules, before copying either.
    """
    owners = {
        tensor.data_ptr(): name
        for name, tensor in classifier.state_dict().items()
        if tensor.is_floating_point()
    }
    return {
        name: owners[tensor.data_ptr()]
        for name, tensor in detector.state_dict().items()
        if tensor.is_floating_point() and tensor.data_ptr() in owners
    }


def freeze(detector: FCOS, names: Sequence[str]) -> None:
    """Stop training the parameters among `names`; `train_detector` then keeps them unchanged."""
    frozen = set(names)
    for name, parameter in detector.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)


def _train_mode(detector: FCOS) -> None:
    """Training mode, except BatchNorm layers with frozen parameters: they keep their statistics."""
    detector.train()
    for module in detector.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()


@dataclass(frozen=True)
class DetectorConfig:
    """Hyper-parameters of a detector's training run (Adam, cosine schedule)."""

    steps: int
    lr: float = 2e-3
    batch_size: int = 16
    weight_decay: float = 1e-4
    seed: int = 0
    reused_lr_scale: float = 1.0  # learning rate of the tensors taken from the base, relative

    def record(self) -> dict:
        """The manifest's view of this configuration."""
        return {**asdict(self), "optimizer": "adam", "schedule": "cosine"}


def _batch(
    samples: Sequence[Sample], here: torch.device
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images = [torch.from_numpy(s.image).to(here) for s in samples]
    targets = [
        {"boxes": torch.from_numpy(s.boxes).to(here), "labels": torch.from_numpy(s.labels).to(here)}
        for s in samples
    ]
    return images, targets


def train_detector(
    detector: FCOS, train: Sequence[Sample], config: DetectorConfig, reused: Collection[str] = ()
) -> list[float]:
    """Train in place for `config.steps` batches; return the mean loss of each tenth of the run.

    Parameters named in `reused` (taken from the base) learn at `config.reused_lr_scale` × lr.
    On a GPU with mixed precision when there is one; under torchrun each process takes its share
    of every batch (DistributedDataParallel). The detector ends on the CPU.
    """
    if len(train) == 0:
        raise PairzooError("cannot train a detector on an empty training set")
    slow = set(reused)
    trained = [(n, p) for n, p in detector.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trained if n not in slow]},
        {"params": [p for n, p in trained if n in slow], "lr": config.lr * config.reused_lr_scale},
    ]
    groups = [group for group in groups if group["params"]]
    optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(train), generator=generator).tolist()
    losses, chunk = [], []
    here = distributed.setup()
    scaler = distributed.grad_scaler(here)
    net = parallel(detector.to(here), here)
    shown = progress.bar(config.steps, "train detector", "step")
    try:
        with timed("train"):
            _train_mode(detector)
            for step in range(config.steps):
                if len(order) < config.batch_size:
                    order += torch.randperm(len(train), generator=generator).tolist()
                batch, order = order[: config.batch_size], order[config.batch_size :]
                mine = batch[distributed.rank() :: distributed.world_size()] or batch[:1]
                images, targets = _batch([train[i] for i in mine], here)
                optimizer.zero_grad(set_to_none=True)
                with distributed.autocast(here):
                    loss = sum(net(images, targets).values())
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                chunk.append(distributed.all_sum([loss.item()])[0] / distributed.world_size())
                if (step + 1) % max(1, config.steps // 10) == 0 or step + 1 == config.steps:
                    losses.append(float(np.mean(chunk)))
                    chunk = []
                    shown.set_postfix_str(f"loss {losses[-1]:.4g}", refresh=False)
                shown.update()
            distributed.share_buffers(detector)
            detector.eval()
    finally:
        shown.close()
        detector.cpu()
    return losses


@torch.no_grad()
def detect(detector: FCOS, samples: Sequence[Sample], batch_size: int = 32) -> list[dict]:
    """Detections (boxes, scores, labels as numpy arrays) for each sample, computed in float32."""
    here = distributed.setup()
    detector.to(here).eval()
    found = []
    try:
        with timed("evaluate"), distributed.full_float32():
            for start in range(0, len(samples), batch_size):
                images, _ = _batch(samples[start : start + batch_size], here)
                found += [{k: v.cpu().numpy() for k, v in d.items()} for d in detector(images)]
    finally:
        detector.cpu()
    return found


def mean_average_precision(detections: list[dict], samples: Sequence[Sample]) -> dict[str, float]:
    """COCO-style box mAP in percent, by torchmetrics (pycocotools): `map50` and `map`."""
    from torchmetrics.detection import MeanAveragePrecision

    with timed("evaluate"):
        metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="pycocotools")
        metric.update(
            [{k: torch.from_numpy(v) for k, v in d.items()} for d in detections],
            [{"boxes": torch.from_numpy(s.boxes), "labels": torch.from_numpy(s.labels)}
             for s in samples],
        )  # fmt: skip
        result = metric.compute()
    return {"map50": 100.0 * float(result["map_50"]), "map": 100.0 * float(result["map"])}


def parity_images(samples: Sequence[Sample], count: int) -> list[np.ndarray]:
    """The first `count` images, and the first once more enlarged by padding with its minimum."""
    images = [sample.image for sample in samples[:count]]
    _, height, width = images[0].shape
    pad = ((0, 0), (0, height // 2), (0, width))
    return [*images, np.pad(images[0], pad, constant_values=float(images[0].min()))]
