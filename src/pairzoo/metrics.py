"""Definitions of the metrics recorded in the manifest, by id."""

METRICS = {
    "top1": {
        "name": "top-1 accuracy",
        "definition": "share of test images whose highest-scoring class is the true class",
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
}
