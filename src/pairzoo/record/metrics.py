"""The metrics recorded in the manifest, by id: definition, unit, direction, scorer.

A scorer is framework-free (NumPy on the outputs of an ONNX model in onnxruntime); a detection
scorer takes a detector's per-image outputs there. Metrics measured on pairs have neither.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pairzoo.data.sets import ImageData, unit_pixels
from pairzoo.errors import PairzooError

if TYPE_CHECKING:
    from pairzoo.data.detection import Sample

Scorer = Callable[[np.ndarray, np.ndarray, ImageData], float]  # (outputs, inputs fed, test data)
# (boxes, scores and labels of each test image, the test samples)
DetectionScorer = Callable[[list[dict[str, np.ndarray]], Sequence["Sample"]], float]


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float(np.mean(logits.argmax(1) == labels))


def mse(reconstructions: np.ndarray, images: np.ndarray) -> float:
    """Mean squared error over every value."""
    if reconstructions.shape != images.shape:
        raise PairzooError(f"reconstructions {reconstructions.shape} differ from {images.shape}")
    return float(np.mean((reconstructions.astype(np.float64) - images) ** 2))


def psnr(reconstructions: np.ndarray, images: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (peak 1): -10·log10(MSE)."""
    error = mse(reconstructions, images)
    if error == 0.0:
        raise PairzooError("PSNR is unbounded for a reconstruction equal to its images")
    return float(-10.0 * np.log10(error))


def next_token_log_probs(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Log-probability (float64) that a causal LM's logits give each next token of `tokens`.

    `logits` (windows, context, vocabulary) at position t predict `tokens` at t + 1.
    """
    if logits.shape[:2] != tokens.shape:
        raise PairzooError(f"logits {logits.shape} do not fit token windows {tokens.shape}")
    scores = logits[:, :-1].astype(np.float64)
    peak = scores.max(-1, keepdims=True)
    normaliser = peak[..., 0] + np.log(np.exp(scores - peak).sum(-1))
    chosen = np.take_along_axis(scores, tokens[:, 1:, None], -1)[..., 0]
    return chosen - normaliser


def perplexity(logits: np.ndarray, tokens: np.ndarray) -> float:
    """Perplexity: exp of the mean negative log-likelihood of every next token of every window."""
    return float(np.exp(-next_token_log_probs(logits, tokens).mean()))


def next_token_top1(logits: np.ndarray, tokens: np.ndarray) -> float:
    """Share (%) of next tokens that are the highest-scoring token of the logits before them."""
    return 100.0 * float(np.mean(logits[:, :-1].argmax(-1) == tokens[:, 1:]))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (float64) of logits over their last axis."""
    scores = logits.astype(np.float64)
    peak = scores.max(-1, keepdims=True)
    return scores - peak - np.log(np.exp(scores - peak).sum(-1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood (natural log) of the true labels under softmax(logits)."""
    chosen = np.take_along_axis(log_softmax(logits), labels[:, None].astype(np.int64), -1)
    return float(-chosen.mean())


def agreement(outputs: np.ndarray, reference: np.ndarray) -> float:
    """Share (%) of positions where the outputs' highest score is in the reference's slot."""
    return 100.0 * float(np.mean(outputs.argmax(-1) == reference.argmax(-1)))


def _in_unit_pixels(score: Callable[[np.ndarray, np.ndarray], float]) -> Scorer:
    def scorer(outputs: np.ndarray, inputs: np.ndarray, data: ImageData) -> float:
        return score(unit_pixels(data.info.id, outputs), unit_pixels(data.info.id, inputs))

    return scorer


def _box_map(key: str) -> DetectionScorer:
    """The detection scorer of `key` (map, map50): the recipe's own `mean_average_precision`."""

    def scorer(detections: list[dict[str, np.ndarray]], samples: Sequence[Sample]) -> float:
        from pairzoo.train.detection import mean_average_precision

        return mean_average_precision(detections, samples)[key]

    return scorer


@dataclass(frozen=True)
class Metric:
    """A metric: name, definition, unit, direction, framework-free scorer or detection scorer."""

    name: str
    definition: str
    unit: str
    higher_is_better: bool
    scorer: Scorer | None = None
    detection_scorer: DetectionScorer | None = None

    def record(self) -> dict:
        """The manifest's definition: name, definition, unit, direction."""
        return {
            "name": self.name,
            "definition": self.definition,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
        }


METRICS: dict[str, Metric] = {
    "top1": Metric(
        name="top-1 accuracy",
        definition="share of test images whose highest-scoring class is the true class; "
        "where a measurement lists `classes`, only test images of those classes count",
        unit="%",
        higher_is_better=True,
        scorer=lambda outputs, _, data: top1(outputs, data.y_test),
    ),
    "top1-known-classes": Metric(
        name="top-1 accuracy on the classes the base knew",
        definition="a pair's measurement: top-1 accuracy of base and of updated model on the "
        "test images of the classes both predict (the base's classes that the update kept in "
        "the same output slots); base minus updated is the forgetting",
        unit="%",
        higher_is_better=True,
    ),
    "map50": Metric(
        name="box mAP@0.5",
        definition="mean over classes of the COCO 101-point interpolated average precision of "
        "boxes matched at IoU >= 0.5 (torchmetrics MeanAveragePrecision, pycocotools backend)",
        unit="%",
        higher_is_better=True,
        detection_scorer=_box_map("map50"),
    ),
    "map": Metric(
        name="box mAP@[.5:.95]",
        definition="the COCO primary metric: box average precision averaged over classes and "
        "IoU thresholds 0.50, 0.55, ..., 0.95 (torchmetrics MeanAveragePrecision, pycocotools)",
        unit="%",
        higher_is_better=True,
        detection_scorer=_box_map("map"),
    ),
    "psnr": Metric(
        name="reconstruction PSNR",
        definition="peak signal-to-noise ratio of an autoencoder's reconstructions of the test "
        "images, 10·log10(1 / MSE), with MSE the mean squared error over every pixel and channel "
        "of the whole test split after mapping reconstructions and originals from the loader's "
        "normalised units back to the dataset's pixel range scaled to [0, 1] (so the peak is 1: "
        "digits' intensities 0…16, CIFAR-10's 0…255); outputs are not clipped",
        unit="dB",
        higher_is_better=True,
        scorer=_in_unit_pixels(psnr),
    ),
    "reconstruction-mse": Metric(
        name="reconstruction mean squared error",
        definition="mean squared error of an autoencoder's reconstructions of the test images "
        "over every pixel and channel of the whole test split, in the dataset's pixel range "
        "scaled to [0, 1] (as for `psnr`, which is -10·log10 of it)",
        unit="",
        higher_is_better=False,
        scorer=_in_unit_pixels(mse),
    ),
    "perplexity": Metric(
        name="perplexity",
        definition="of a causal language model on the test windows of a text dataset: "
        "exp of the mean negative log-likelihood (natural log) of every next token, where the "
        "logits at position t of a window predict its token t + 1 (context-1 predictions per "
        "window, windows scored independently, no padding)",
        unit="",
        higher_is_better=False,
        scorer=lambda outputs, inputs, _: perplexity(outputs, inputs),
    ),
    "next-token-top1": Metric(
        name="next-token top-1 accuracy",
        definition="of a causal language model on the test windows of a text dataset: share of "
        "next tokens (as for `perplexity`) that are the highest-scoring token of the logits",
        unit="%",
        higher_is_better=True,
        scorer=lambda outputs, inputs, _: next_token_top1(outputs, inputs),
    ),
    "nll": Metric(
        name="test cross-entropy",
        definition="a reconstruction's fidelity measure: the mean negative log-likelihood "
        "(natural log) that the model's softmax gives the true class of every test image (for "
        "a classifier) or every next token (for a language model, as for `perplexity`, whose "
        "log it is); continuous, so it ranks reconstructions that top-1 cannot tell apart",
        unit="nats",
        higher_is_better=False,
    ),
    "agreement": Metric(
        name="top-1 agreement with the uncoded model",
        definition="a reconstruction's fidelity measure: the share of test images (or next-token "
        "positions of a language model) whose highest-scoring output slot is the same as the "
        "uncoded updated model's, whatever the true label",
        unit="%",
        higher_is_better=True,
    ),
    "output-mse": Metric(
        name="output mean squared error against the uncoded model",
        definition="a reconstruction's fidelity measure for an autoencoder: the mean squared "
        "difference between its reconstructions of the test images and the uncoded updated "
        "model's, in the dataset's pixel range scaled to [0, 1] (as for `psnr`)",
        unit="",
        higher_is_better=False,
    ),
    "perplexity-base-domain": Metric(
        name="perplexity on the base's domain",
        definition="a pair's measurement: `perplexity` of base and updated model on the test "
        "windows of the base's text dataset, for an update trained on another domain; updated "
        "minus base is the forgetting",
        unit="",
        higher_is_better=False,
    ),
}


def fidelity(
    metric: str, outputs: np.ndarray, reference: np.ndarray, inputs: np.ndarray, data: ImageData
) -> dict[str, float]:
    """The fidelity measures (`nll`, `agreement`, `output-mse`) that fit `metric`'s model.

    `outputs` are a reconstruction's, `reference` the uncoded updated model's, on the same inputs.
    """
    if metric == "top1":
        measures = {"agreement": agreement(outputs, reference)}
        if data.y_test.max() < outputs.shape[-1]:  # else some labels have no output slot
            measures["nll"] = cross_entropy(outputs, data.y_test)
        return measures
    if metric in ("perplexity", "next-token-top1"):
        nll = float(-next_token_log_probs(outputs, inputs).mean())
        return {"nll": nll, "agreement": agreement(outputs[:, :-1], reference[:, :-1])}
    if metric in ("psnr", "reconstruction-mse"):
        same = unit_pixels(data.info.id, outputs), unit_pixels(data.info.id, reference)
        return {"output-mse": mse(*same)}
    return {}


def scorer(metric: str) -> Scorer | None:
    """The framework-free scorer of `metric`; None where it has none or is not defined here."""
    return METRICS[metric].scorer if metric in METRICS else None


def detection_scorer(metric: str) -> DetectionScorer | None:
    """The scorer of `metric` on a detector's per-image outputs; None where it has none."""
    return METRICS[metric].detection_scorer if metric in METRICS else None


def scoreable(metric: str) -> bool:
    """Whether `metric` has a framework-free scorer of either kind."""
    return scorer(metric) is not None or detection_scorer(metric) is not None


def definitions() -> dict[str, dict]:
    """The manifest's `metrics` section: every metric's definition, by id."""
    return {metric: definition.record() for metric, definition in METRICS.items()}
