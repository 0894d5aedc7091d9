"""Codecs for the harness's tests: a faithful one, and one for each way a codec can go wrong."""

import numpy as np

CALLS = {"encode": 0}


class Exact:
    """Sends the updated tensors as float32 bytes with their names and shapes (lossless)."""

    name = "exact"

    def encode(self, base, updated, gain=1.0):
        CALLS["encode"] += 1
        header = ";".join(f"{k}:{','.join(map(str, v.shape))}" for k, v in updated.items())
        body = b"".join(np.ascontiguousarray(v, np.float32).tobytes() for v in updated.values())
        return len(header).to_bytes(4, "little") + header.encode() + body

    def decode(self, payload, base, gain=1.0):
        size = int.from_bytes(payload[:4], "little")
        offset, tensors = 4 + size, {}
        for item in payload[4 : 4 + size].decode().split(";"):
            name, dims = item.split(":")
            shape = tuple(int(d) for d in dims.split(",") if d)
            count = int(np.prod(shape))
            flat = np.frombuffer(payload, np.float32, count, offset)
            tensors[name] = (flat * np.float32(gain)).reshape(shape)
            offset += 4 * count
        return tensors


class Raises(Exact):
    name = "raises"

    def encode(self, base, updated, gain=1.0):
        raise RuntimeError("this codec cannot code that")


class Missing(Exact):
    name = "missing"

    def decode(self, payload, base, gain=1.0):
        tensors = super().decode(payload, base, gain)
        tensors.pop(sorted(tensors)[0])
        return tensors


class Extra(Exact):
    name = "extra"

    def decode(self, payload, base, gain=1.0):
        return {**super().decode(payload, base, gain), "surplus": np.zeros(1, np.float32)}


class Reshaped(Exact):
    name = "reshaped"

    def decode(self, payload, base, gain=1.0):
        return {k: v.reshape(-1) for k, v in super().decode(payload, base, gain).items()}


class Float64(Exact):
    name = "float64"

    def decode(self, payload, base, gain=1.0):
        return {k: v.astype(np.float64) for k, v in super().decode(payload, base, gain).items()}


class NotFinite(Exact):
    name = "not-finite"

    def decode(self, payload, base, gain=1.0):
        tensors = super().decode(payload, base, gain)
        first = sorted(tensors)[0]
        tensors[first] = np.full_like(tensors[first], np.nan)
        return tensors


class Unstable(Exact):
    """Decodes the same payload to other tensors each time."""

    name = "unstable"
    draws = np.random.default_rng()

    def decode(self, payload, base, gain=1.0):
        tensors = super().decode(payload, base, gain)
        first = sorted(tensors)[0]
        tensors[first] = tensors[first] + np.float32(self.draws.standard_normal())
        return tensors


class NotBytes(Exact):
    name = "not-bytes"

    def encode(self, base, updated, gain=1.0):
        return list(super().encode(base, updated, gain))


class Stash(Exact):
    """Keeps the updated tensors at encode and returns them at decode: the harness must stop it."""

    name = "stash"

    def encode(self, base, updated, gain=1.0):
        self.kept = dict(updated)
        return b"nothing"

    def decode(self, payload, base, gain=1.0):
        return self.kept
