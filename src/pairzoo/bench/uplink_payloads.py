"""Uplink payloads recorded with a federation's decoded client models, and their check.

A payload is a `derived` file of the model it decodes to; its record names the codec (`tool`,
loadable as `pairzoo evaluate` loads codecs), the codec's parameters and the base it was coded
against.
"""

from __future__ import annotations

import numpy as np

from pairzoo.bench import plugin
from pairzoo.bench.testset import reconstruction_problem
from pairzoo.errors import PairzooError
from pairzoo.record.view import Folder

PAYLOAD_METHOD = "uplink payload: "  # a recorded payload's method, before the uplink's label


def payload_problems(folder: Folder, sound: set[str]) -> tuple[list[str], list[str], int]:
    """Each recorded uplink payload, decoded against its base, gives its model's tensors exactly.

    Returns problems, warnings (a codec that cannot be loaded here) and the payloads decoded;
    models outside `sound` (whose files failed their checks) are skipped.
    """
    problems, warnings, decoded = [], [], 0
    for model in folder.models():
        for kind, made in model.record.get("derived", {}).items():
            if model.id not in sound or not made["method"].startswith(PAYLOAD_METHOD):
                continue
            where = f"model {model.id}: {kind}"
            base = made.get("base")
            if base not in folder.entries["models"]:
                problems.append(f"{where}: its base {base!r} is not a model of the set")
                continue
            try:
                codec = plugin.load_codec(made["tool"])
            except PairzooError as exc:
                warnings.append(f"{where} not decoded: {exc}")
                continue
            params = {k: v for k, v in made["parameters"].items() if k != "error_feedback"}
            base_tensors = plugin.read_only(folder.model(base).tensors())
            try:
                tensors = codec.decode(
                    model.read(kind), base_tensors, **plugin.call_parameters(codec.decode, params)
                )
            except Exception as exc:
                problems.append(f"{where} does not decode: {plugin.error_line(exc)}")
                continue
            expected = model.tensors()
            if reconstruction_problem(expected, tensors) or not all(
                np.array_equal(tensors[name], value) for name, value in expected.items()
            ):
                problems.append(f"{where} decodes to other tensors than the model's")
            decoded += 1
    return problems, warnings, decoded
