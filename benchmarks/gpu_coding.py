"""Time to code and score one ResNet-50 pair at three QPs, split into encoding, decoding, scoring.

    python benchmarks/gpu_coding.py --images 50000   # as update_coding does on ImageNet's val set
    python benchmarks/gpu_coding.py --small          # a tiny network and set: runs on the CPU

Per QP, as the update_coding recipe did when this was measured (`pairzoo.coding.qp_sweep`, now
`pairzoo.bench.reference_ladder`): NNC of the full model, the base once, two updates
(without and with TCA), each decoded, and every reconstruction scored in onnxruntime
(`pairzoo.coding.scoring.providers()`: CUDA where onnxruntime-gpu is installed), each with its
weights inside the graph (`pairzoo.coding.graph_weights`). `--jobs N` runs N codings at once in
processes (NNC runs on one core), two per QP: the full model, and the base with the two updates
coded from it; the wall-clock time of coding is printed beside the summed encoding and decoding.
"""

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torchvision
from gpu_training import jpegs

from pairzoo.coding import codec
from pairzoo.coding.scoring import OnnxEvaluator
from pairzoo.data.image_files import ImageFiles
from pairzoo.data.imagenet import IMAGENET
from pairzoo.data.sets import ImageData
from pairzoo.export.exporters import OnnxExporter, float_state


def tiny() -> torch.nn.Module:
    """A small convolutional network for --small."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 1000),
    )  # fmt: skip


def code_full(b: dict, u: dict, qp: int) -> list[codec.Coding]:
    """NNC of the full updated model at `qp`."""
    return [codec.nnc_full(u, codec.NncSettings(qp))]


def code_update(b: dict, u: dict, qp: int) -> list[codec.Coding]:
    """NNC of the update at `qp`: the base coded once, the update without and with TCA from it."""
    settings = codec.NncSettings(qp)
    start = time.perf_counter()
    shared = codec.encode_base(b, u, settings)
    base_seconds = time.perf_counter() - start
    plain = codec.nnc_update(b, u, settings, shared)
    return [
        replace(plain, encode_seconds=plain.encode_seconds + base_seconds),
        codec.nnc_update(b, u, replace(settings, tca=True), shared),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--images", type=int, default=50000, help="validation JPEGs scored")
    parser.add_argument("--qps", type=int, nargs=3, default=[-26, -32, -38])
    parser.add_argument("--score-only", action="store_true", help="one score per QP, no NNC")
    parser.add_argument("--jobs", type=int, default=1, help="codings at once, in processes")
    args = parser.parse_args()
    size, count, side = (32, 16, 48) if args.small else (224, args.images, 500)
    torch.manual_seed(0)
    base = tiny() if args.small else torchvision.models.resnet50()
    updated = tiny() if args.small else torchvision.models.resnet50()
    updated.load_state_dict(base.state_dict())
    with torch.no_grad():
        for p in updated.parameters():
            p.add_(1e-3 * torch.randn_like(p) * (torch.rand_like(p) < 0.1))
    b = {k: v.numpy() for k, v in float_state(base).items()}
    u = {k: v.numpy() for k, v in float_state(updated).items()}
    times = {"encode": 0.0, "decode": 0.0, "score": 0.0}
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"

    def line(what: str, seconds: float) -> None:
        print(f"{what:<40} {seconds:>8.1f} s", flush=True)

    with tempfile.TemporaryDirectory() as folder:
        paths = jpegs(Path(folder), count, side)
        x = ImageFiles(paths, train=False, size=size)
        y = np.arange(count) % 1000
        data = ImageData(x, y, x, y, tuple(str(i) for i in range(1000)), IMAGENET)
        onnx = OnnxExporter(np.asarray(x[:2])).export(updated.eval(), Path(folder) / "u.onnx")
        start = time.perf_counter()
        evaluate = OnnxEvaluator(onnx.path, data, "top1")
        evaluate()
        first = time.perf_counter() - start  # includes decoding the JPEGs once
        provider = evaluate.session.get_providers()[0]
        print(f"{'ResNet-50' if not args.small else 'tiny net'}, {count} images of {size} px, "
              f"QPs {args.qps}, on {device}, onnxruntime on {provider}")  # fmt: skip
        line("first score (decodes the images once)", first)
        start = time.perf_counter()
        qps = [] if args.score_only else args.qps
        with ProcessPoolExecutor(args.jobs) as pool:
            tasks = [pool.submit(code, b, u, qp) for qp in qps for code in (code_full, code_update)]
            coded = [task.result() for task in tasks]
        coding_wall = time.perf_counter() - start
        if qps:
            line(f"coding wall clock, {args.jobs} at once", coding_wall)
        scores = 0
        for codings in (f + u for f, u in zip(coded[::2], coded[1::2], strict=True)):
            for coding in codings:
                times["encode"] += coding.encode_seconds
                times["decode"] += coding.decode_seconds
            seen = {codec.tensors_sha256(c.reconstruction): c for c in codings}
            start = time.perf_counter()
            for coding in seen.values():
                evaluate(coding.reconstruction)
            times["score"] += time.perf_counter() - start
            scores += len(seen)
            line(f"{scores} scores so far", times["score"])
        if args.score_only:
            start = time.perf_counter()
            for _ in args.qps:
                evaluate(u)
            times["score"] = time.perf_counter() - start
    for phase, seconds in times.items():
        line(phase, seconds)
    if not args.score_only:
        line("total (goal ≤ 600 s)", first + coding_wall + times["score"])


if __name__ == "__main__":
    main()
