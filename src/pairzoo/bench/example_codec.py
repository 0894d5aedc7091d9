"""An example update codec, to copy: top-k sparsification of the delta, uniform steps, zstd."""

import json

import numpy as np
import zstandard


class TopKDelta:
    """Sends the `keep` share of largest changes of each tensor, rounded to multiples of `step`."""

    name = "topk-delta"

    def encode(self, base, updated, keep=0.1, step=1e-3):
        """Per tensor: positions (as gaps) and levels of its largest changes; all through zstd."""
        header, chunks = [], []
        for name, new in updated.items():
            old = base.get(name)
            delta = (new - old if old is not None and old.shape == new.shape else new).ravel()
            k = min(delta.size, max(1, int(keep * delta.size)))  # new tensors: their values
            where = np.sort(np.argpartition(np.abs(delta), -k)[-k:])
            levels = np.rint(delta[where] / step).astype(np.int32)
            header.append([name, list(new.shape), k])
            chunks += [np.diff(where, prepend=0).astype(np.uint32).tobytes(), levels.tobytes()]
        head = json.dumps(header).encode()
        return zstandard.compress(len(head).to_bytes(4, "little") + head + b"".join(chunks))

    def decode(self, payload, base, step=1e-3):
        """The base plus the sent changes (tensors the base lacks: the sent values alone)."""
        data = zstandard.decompress(payload)
        offset = 4 + int.from_bytes(data[:4], "little")
        tensors = {}
        for name, shape, k in json.loads(data[4:offset]):
            where = np.cumsum(np.frombuffer(data, np.uint32, k, offset))
            levels = np.frombuffer(data, np.int32, k, offset + 4 * k)
            offset += 8 * k
            delta = np.zeros(int(np.prod(shape)), np.float32)
            delta[where] = levels * np.float32(step)
            old = base.get(name)
            fits = old is not None and list(old.shape) == shape
            tensors[name] = (old.ravel() + delta if fits else delta).reshape(shape)
        return tensors
