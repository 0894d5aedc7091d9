"""ResNet-50 in onnxruntime: other weights fed as graph inputs, or put inside the graph.

    python benchmarks/onnx_weights.py [--batch 32] [--repeats 7]

A codec's reconstruction can be fed to a graph whose float initializers were made inputs, or put
in the initializers and a session built for it (`pairzoo.coding.graph_weights`, as the evaluators
do); fed, onnxruntime cannot fold BatchNorm into the convolutions or prepack their weights.
Prints both throughputs (the median of batches timed alternately, side by side in one process),
their ratio, and the seconds it takes to build a session with the weights inside.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from pairzoo.coding.graph_weights import INSIDE_FROM, GraphWeights
from pairzoo.coding.scoring import ort, providers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7, help="batches timed per way (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet50.onnx"
        batch_axis = {"x": {0: "n"}}
        torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, dynamo=False,
                          opset_version=17, input_names=["x"], dynamic_axes=batch_axis)  # fmt: skip
        inside_graph = GraphWeights(path, providers(), INSIDE_FROM)  # weights inside
        fed_graph = GraphWeights(path, providers(), INSIDE_FROM - 1)  # weights as graph inputs
    weights = {name: value * np.float32(1.01) for name, value in inside_graph.defaults.items()}
    start = time.perf_counter()
    inside = inside_graph.session(weights)
    build = time.perf_counter() - start
    as_inputs = fed_graph.session(weights)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)

    runs = {
        "fed": lambda: as_inputs.run(None, {"x": x}),
        "kept": lambda: inside.run(None, {"x": x}),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warms up
    for _ in range(args.repeats):  # interleaved, so that both see the same machine
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    fed, kept = (args.batch / float(np.median(seconds[name])) for name in runs)
    where = inside.get_providers()[0]
    print(f"ResNet-50, batch {args.batch}, onnxruntime {ort.__version__} on {where}")
    print(f"{'weights fed as graph inputs':<32} {fed:>8.1f} img/s")
    print(f"{'weights put inside the graph':<32} {kept:>8.1f} img/s")
    print(f"{'ratio':<32} {kept / fed:>8.2f}")
    print(f"{'building that session':<32} {build:>8.2f} s")


if __name__ == "__main__":
    main()
