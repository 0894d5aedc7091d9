"""Definitions of the metrics recorded in the manifest, by id."""

METRICS = {
    "top1": {
        "name": "top-1 accuracy",
        "definition": "share of test images whose highest-scoring class is the true class",
        "unit": "%",
        "higher_is_better": True,
    },
}
