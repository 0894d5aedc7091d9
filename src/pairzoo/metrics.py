"""Definitions of the metrics recorded in the manifest, by id."""

METRICS = {
    "top1": {
        "name": "top-1 accuracy",
        "definition": "share of test images whose highest-scoring class is the true class; "
        "where a measurement lists `classes`, only test images of those classes count",
        "unit": "%",
        "higher_is_better": True,
    },
    "top1-known-classes": {
        "name": "top-1 accuracy on the classes the base knew",
        "definition": "a pair's measurement: top-1 accuracy of base and of updated model on the "
        "test images of the classes both predict (the base's classes that the update kept in "
        "the same output slots); base minus updated is the forgetting",
        "unit": "%",
        "higher_is_better": True,
    },
    "map50": {
        "name": "box mAP@0.5",
        "definition": "mean over classes of the COCO 101-point interpolated average precision of "
        "boxes matched at IoU >= 0.5 (torchmetrics MeanAveragePrecision, pycocotools backend)",
        "unit": "%",
        "higher_is_better": True,
    },
    "map": {
        "name": "box mAP@[.5:.95]",
        "definition": "the COCO primary metric: box average precision averaged over classes and "
        "IoU thresholds 0.50, 0.55, ..., 0.95 (torchmetrics MeanAveragePrecision, pycocotools)",
        "unit": "%",
        "higher_is_better": True,
    },
    "psnr": {
        "name": "reconstruction PSNR",
        "definition": "peak signal-to-noise ratio of an autoencoder's reconstructions of the test "
        "images, 10·log10(1 / MSE), with MSE the mean squared error over every pixel and channel "
        "of the whole test split after mapping reconstructions and originals from the loader's "
        "normalised units back to the dataset's pixel range scaled to [0, 1] (so the peak is 1: "
        "digits' intensities 0…16, CIFAR-10's 0…255); outputs are not clipped",
        "unit": "dB",
        "higher_is_better": True,
    },
    "reconstruction-mse": {
        "name": "reconstruction mean squared error",
        "definition": "mean squared error of an autoencoder's reconstructions of the test images "
        "over every pixel and channel of the whole test split, in the dataset's pixel range "
        "scaled to [0, 1] (as for `psnr`, which is -10·log10 of it)",
        "unit": "",
        "higher_is_better": False,
    },
    "perplexity": {
        "name": "perplexity",
        "definition": "of a causal language model on the test windows of a text dataset: "
        "exp of the mean negative log-likelihood (natural log) of every next token, where the "
        "logits at position t of a window predict its token t + 1 (context-1 predictions per "
        "window, windows scored independently, no padding)",
        "unit": "",
        "higher_is_better": False,
    },
    "next-token-top1": {
        "name": "next-token top-1 accuracy",
        "definition": "of a causal language model on the test windows of a text dataset: share of "
        "next tokens (as for `perplexity`) that are the highest-scoring token of the logits",
        "unit": "%",
        "higher_is_better": True,
    },
    "perplexity-base-domain": {
        "name": "perplexity on the base's domain",
        "definition": "a pair's measurement: `perplexity` of base and updated model on the test "
        "windows of the base's text dataset, for an update trained on another domain; updated "
        "minus base is the forgetting",
        "unit": "",
        "higher_is_better": False,
    },
}
