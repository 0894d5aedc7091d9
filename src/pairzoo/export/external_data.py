"""ONNX tensors kept as external data, read back in memory through a reader of the model's files."""

from __future__ import annotations

from collections.abc import Callable

import onnx

from pairzoo.errors import PairzooError

# Reads a file an ONNX graph names as its external data (`location`, relative to the graph).
ReadExternal = Callable[[str], bytes]


def tensor_protos(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Every tensor the graph stores: initializers and node attributes, subgraphs included."""
    found = list(graph.initializer)
    for node in graph.node:
        for attribute in node.attribute:
            found += [attribute.t] if attribute.HasField("t") else []
            found += list(attribute.tensors)
            for sub in [attribute.g] if attribute.HasField("g") else []:
                found += tensor_protos(sub)
            for sub in attribute.graphs:
                found += tensor_protos(sub)
    return found


def external_tensors(proto: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The tensors of the graph stored as external data."""
    return [t for t in tensor_protos(proto.graph) if t.data_location == onnx.TensorProto.EXTERNAL]


def inline_external(proto: onnx.ModelProto, read: ReadExternal) -> dict[str, bytes]:
    """Put each external tensor's bytes (`read(location)`) into `proto`; the files read, by name."""
    files: dict[str, bytes] = {}
    for tensor in external_tensors(proto):
        fields = {entry.key: entry.value for entry in tensor.external_data}
        location = fields.get("location", "")
        if location not in files:
            files[location] = read(location)
        offset = int(fields.get("offset", 0))
        length = int(fields.get("length", len(files[location]) - offset))
        if offset + length > len(files[location]):
            raise PairzooError(f"external data {location!r} ends before {offset + length} bytes")
        tensor.raw_data = files[location][offset : offset + length]
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    return files
