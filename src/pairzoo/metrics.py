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
}
