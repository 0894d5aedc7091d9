"""Transfer-learning steps for any framework: updates made from one base, forgetting, pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from pairzoo.data.sets import ImageData, draw, select_classes
from pairzoo.export.exporters import Exporter
from pairzoo.record.writer import PairMeasurement, PairWriter, Training
from pairzoo.train.config import TrainConfig

Accuracy = Callable[[Any, np.ndarray, np.ndarray], float]


class Framework(NamedTuple):
    """One framework's functions under their shared names (`models.build`, `keras.models`)."""

    remap_head: Callable[[Any, str, Sequence[int | None], int], Any]
    grow_head: Callable[[Any, str, int, int], tuple[Any, dict[str, list[list[int]]]]]
    train: Callable[[Any, np.ndarray, np.ndarray, TrainConfig], object]
    accuracy: Accuracy


def forgetting(
    accuracy: Accuracy, base: Any, updated: Any, base_task: ImageData, task: ImageData
) -> dict[str, PairMeasurement]:
    """Top-1 of base and update on the test images of the classes both hold in the same slot.

    Base minus updated is the forgetting; the metric is `top1-known-classes`.
    """
    kept = [s for s, c in enumerate(base_task.classes) if task.classes[s : s + 1] == (c,)]
    mask = np.isin(base_task.y_test, kept)
    x, y = base_task.x_test[mask], base_task.y_test[mask]
    names = [base_task.classes[s] for s in kept]
    measured = PairMeasurement(accuracy(base, x, y), accuracy(updated, x, y), names)
    return {"top1-known-classes": measured}


@dataclass
class ClassTransfer:
    """Updates of one base by transfer learning, made with `framework` and written by `writer`.

    `base_classes` index the dataset's classes; every update is fine-tuned from the base.
    The base's pretrained weights, if any, are the writer's.
    """

    writer: PairWriter
    framework: Framework
    architecture: str
    base: Any
    base_classes: Sequence[int]
    seed: int
    exporter: Exporter | None = None  # the writer's (PyTorch) where None

    @cached_property
    def base_task(self) -> ImageData:
        """The base's classes' images, labelled by slot."""
        return select_classes(self.writer.data, self.base_classes)

    def publish(
        self,
        name: str,
        model: Any,
        task: ImageData,
        config: TrainConfig,
        start: str | None = None,
        description: str = "",
    ) -> None:
        """Measure `model`'s top-1 on its task's test images and write it (trained from `start`)."""
        self.writer.add_model(
            name,
            model,
            architecture=self.architecture,
            training=Training.of(draw(task, 1.0, self.seed), config, start=start),
            metrics={"top1": self.framework.accuracy(model, task.x_test, task.y_test)},
            description=description,
            classes=task.classes,
            test_classes=task.classes,
            exporter=self.exporter,
        )

    def exchange(self, exchanges: Sequence[Sequence[int]], config: TrainConfig) -> None:
        """Per entry, the base's last slots given to its unseen classes (fresh rows), fine-tuned.

        The updates are written as `exchange-1`, `exchange-2`, … with their pairs to the base.
        """
        for step, unseen in enumerate(exchanges, start=1):
            name = f"exchange-{step}"
            keep = len(self.base_classes) - len(unseen)
            task = select_classes(self.writer.data, [*self.base_classes[:keep], *unseen])
            sources = [*range(keep), *[None] * len(unseen)]
            model = self.framework.remap_head(self.base, self.architecture, sources, self.seed + 1)
            self.framework.train(model, task.x_train, task.y_train, config)
            description = f"slots {keep}… re-assigned to {list(unseen)}"
            self.publish(name, model, task, config, "base", description)
            self.writer.add_pair(
                "base",
                name,
                "transfer-exchange-classes",
                series="exchange",
                description=f"{len(unseen)} slot(s) exchanged for unseen classes",
                metrics=forgetting(self.framework.accuracy, self.base, model, self.base_task, task),
            )

    def add_classes(self, variants: Mapping[str, TrainConfig]) -> None:
        """The head grown to every class of the dataset, fine-tuned once per variant, written."""
        count = len(self.writer.data.classes)
        classes = [*self.base_classes, *(c for c in range(count) if c not in self.base_classes)]
        task = select_classes(self.writer.data, classes)
        added = len(classes) - len(self.base_classes)
        for name, config in variants.items():
            model, correspondence = self.framework.grow_head(
                self.base, self.architecture, added, self.seed + 1
            )
            self.framework.train(model, task.x_train, task.y_train, config)
            description = f"head grown to {len(classes)} ({name})"
            self.publish(name, model, task, config, "base", description)
            self.writer.add_pair(
                "base",
                name,
                "transfer-add-classes",
                series="add",
                description=f"head {len(self.base_classes)} → {len(classes)} outputs, {name}",
                correspondence=correspondence,
                metrics=forgetting(self.framework.accuracy, self.base, model, self.base_task, task),
            )
