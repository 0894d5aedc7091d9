"""ResNet-50 in onnxruntime: weights fed as graph inputs (as `OnnxEvaluator` does) or kept inside.

    python benchmarks/onnx_weights.py [--batch 32]

`OnnxEvaluator` turns the float initializers into graph inputs so that any codec's reconstruction
can be fed by name; onnxruntime then cannot fold BatchNorm into the convolutions or prepack their
weights. Prints both throughputs, measured side by side in one process, and their ratio.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torchvision
from onnx import numpy_helper

from pairzoo.coding.scoring import ort, providers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet50.onnx"
        batch_axis = {"x": {0: "n"}}
        torch.onnx.export(model, torch.randn(1, 3, 224, 224), path, dynamo=False,
                          opset_version=17, input_names=["x"], dynamic_axes=batch_axis)  # fmt: skip
        proto = onnx.load(str(path))
    inside = ort.InferenceSession(proto.SerializeToString(), providers=providers())
    floats = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    weights = {i.name: numpy_helper.to_array(i) for i in floats}
    for init in floats:
        proto.graph.initializer.remove(init)
        proto.graph.input.append(
            onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
        )
    as_inputs = ort.InferenceSession(proto.SerializeToString(), providers=providers())
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)

    def rate(run) -> float:
        run()  # warms up
        start = time.perf_counter()
        for _ in range(3):
            run()
        return 3 * args.batch / (time.perf_counter() - start)

    fed = rate(lambda: as_inputs.run(None, {**weights, "x": x}))
    kept = rate(lambda: inside.run(None, {"x": x}))
    print(f"ResNet-50, batch {args.batch}, onnxruntime {ort.__version__} on {providers()[0]}")
    print(f"{'weights fed as graph inputs':<32} {fed:>8.1f} img/s")
    print(f"{'weights kept as initializers':<32} {kept:>8.1f} img/s")
    print(f"{'ratio':<32} {kept / fed:>8.2f}")


if __name__ == "__main__":
    main()
