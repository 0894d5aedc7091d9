"""Federated rounds with an update codec on the uplink: clients send payloads, never weights.

Each client encodes its trained model against the round's global model with a plug-in codec (as
`pairzoo evaluate` takes it) and replies with the payload alone; the server decodes every payload
against the same global model and averages the decoded models with Flower's FedAvg. With error
feedback a client keeps what its payload failed to carry and adds it to its next update.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata

import numpy as np

from pairzoo.bench import plugin
from pairzoo.bench.testset import reconstruction_problem
from pairzoo.bench.uplink_payloads import PAYLOAD_METHOD
from pairzoo.errors import PairzooError
from pairzoo.train import federated
from pairzoo.train.federated import arrays_of

# isort: split
from flwr.app import (  # after pairzoo.train.federated: Flower without TensorFlow
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)

UPLINK_KEY = "uplink"  # the reply's ConfigRecord: the payload, or why the codec failed


@dataclass(frozen=True)
class Uplink:
    """A codec on the clients' uplink: its spec, its parameters, and whether errors feed back."""

    codec: str
    parameters: dict = field(default_factory=dict)
    error_feedback: bool = False

    @property
    def label(self) -> str:
        """The run's name: the codec's, its parameters, `+EF` with error feedback."""
        name = plugin.codec_name(_codec(self.codec))
        settings = " ".join(f"{k}={v}" for k, v in sorted(self.parameters.items()))
        return " ".join(filter(None, (name, settings, "+EF" if self.error_feedback else "")))

    def config(self) -> dict[str, str | bool]:
        """The settings the server sends with each round (a Flower ConfigRecord's values)."""
        return {
            "uplink-codec": self.codec,
            "uplink-parameters": json.dumps(self.parameters, sort_keys=True),
            "uplink-error-feedback": self.error_feedback,
        }

    @classmethod
    def of(cls, config: Mapping[str, object]) -> Uplink:
        """The uplink a round's settings name."""
        return cls(
            str(config["uplink-codec"]),
            json.loads(str(config["uplink-parameters"])),
            bool(config["uplink-error-feedback"]),
        )

    def check(self) -> None:
        """PairzooError if the codec cannot be loaded or does not take these parameters."""
        plugin.check_parameters(_codec(self.codec), self.parameters)


@cache
def _codec(spec: str) -> plugin.Codec:
    return plugin.load_codec(spec)


def _call(method: object, tensors: tuple[Mapping[str, np.ndarray], ...], params: dict) -> object:
    return method(*tensors, **plugin.call_parameters(method, params))


def _residual_key(uplink: Uplink) -> str:
    return f"uplink-residual {uplink.label}"


def encode_update(
    uplink: Uplink,
    base: Mapping[str, np.ndarray],
    local: Mapping[str, np.ndarray],
    state: RecordDict,
    first_round: bool,
) -> bytes:
    """The payload of `local` against `base`; with error feedback, the residual kept in `state`.

    The residual (what earlier payloads failed to carry) is added to the update before coding and
    replaced by this payload's coding error; it starts at zero in a run's first round.
    """
    codec, key = _codec(uplink.codec), _residual_key(uplink)
    target = dict(local)
    if uplink.error_feedback and not first_round and key in state:
        residual = arrays_of(state[key])
        target = {name: value + residual[name] for name, value in local.items()}
    payload = _call(
        codec.encode, (plugin.read_only(base), plugin.read_only(target)), uplink.parameters
    )
    if not isinstance(payload, bytes):
        raise PairzooError(f"encode returned {type(payload).__name__}, not bytes")
    if uplink.error_feedback:
        decoded = _call(codec.decode, (payload, plugin.read_only(base)), uplink.parameters)
        state[key] = ArrayRecord({name: Array(target[name] - decoded[name]) for name in target})
    return payload


def reply(
    message: Message, context: Context, local: Mapping[str, np.ndarray], metrics: dict
) -> Message:
    """The client's reply: its model coded against the round's global model, and its metrics.

    A codec that fails is reported in the reply (the server stops the run, naming the client).
    """
    settings = message.content["config"]
    uplink = Uplink.of(settings)
    base = arrays_of(message.content["arrays"])
    first = int(settings["server-round"]) == 1
    try:
        sent = {"payload": encode_update(uplink, base, local, context.state, first)}
    except Exception as exc:  # the codec's own failure, reported to the server
        sent = {"error": plugin.error_line(exc)}
    content = RecordDict({UPLINK_KEY: ConfigRecord(sent), "metrics": MetricRecord(metrics)})
    return Message(content=content, reply_to=message)


class CodedFedAvg(federated.RecordingFedAvg):
    """Flower's FedAvg on decoded updates: each reply's payload decoded against the global model.

    Keeps, besides `RecordingFedAvg`'s globals and (decoded) client models, the bytes every client
    sent in every round, the bytes of the global models sent down (float32, uncoded), and the
    payloads of the rounds in `keep_clients_of`.
    """

    def __init__(
        self, clients: int, uplink: Uplink, keep_clients_of: Iterable[int] = (), **kwargs: object
    ):
        uplink.check()
        super().__init__(clients, keep_clients_of, **kwargs)
        self.uplink = uplink
        self.current: dict[str, np.ndarray] = {}
        self.uplink_bytes: dict[int, dict[int, int]] = {}
        self.downlink_bytes: dict[int, int] = {}
        self.payloads: dict[int, dict[int, bytes]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: object
    ) -> Iterable[Message]:
        """FedAvg's messages, with the uplink's settings; the global model kept for decoding."""
        self.current = arrays_of(arrays)
        config.update(self.uplink.config())
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Decode every payload, then average the decoded models as FedAvg does."""
        replies = sorted(replies, key=federated.partition)
        sizes = {}
        for message in replies:
            client = federated.partition(message)
            payload = self._payload(message, server_round, client)
            decoded = self._decode(payload, server_round, client)
            sizes[client] = len(payload)
            if server_round in self.keep:
                self.payloads.setdefault(server_round, {})[client] = payload
            message.content = RecordDict(
                {"arrays": ArrayRecord({k: Array(v) for k, v in decoded.items()}),
                 "metrics": message.content["metrics"]}
            )  # fmt: skip
        self.uplink_bytes[server_round] = sizes
        model_bytes = sum(4 * value.size for value in self.current.values())
        self.downlink_bytes[server_round] = model_bytes * len(replies)  # float32, uncoded
        return super().aggregate_train(server_round, replies)

    def _payload(self, message: Message, server_round: int, client: int) -> bytes:
        where = f"round {server_round}, client {client}"
        if set(message.content) != {UPLINK_KEY, "metrics"}:
            raise PairzooError(f"{where}: the reply holds {sorted(message.content)}, not a payload")
        sent = message.content[UPLINK_KEY]
        if "error" in sent:
            raise PairzooError(
                f"{where}: codec {self.uplink.label} failed to encode: {sent['error']}"
            )
        return bytes(sent["payload"])

    def _decode(self, payload: bytes, server_round: int, client: int) -> dict[str, np.ndarray]:
        where = f"round {server_round}, client {client}"
        codec = _codec(self.uplink.codec)
        try:
            decoded = _call(
                codec.decode, (payload, plugin.read_only(self.current)), self.uplink.parameters
            )
        except Exception as exc:
            raise PairzooError(
                f"{where}: codec {self.uplink.label} failed to decode: {plugin.error_line(exc)}"
            ) from exc
        problem = reconstruction_problem(self.current, decoded)
        if problem:
            raise PairzooError(f"{where}: codec {self.uplink.label} decoded {problem}")
        return dict(decoded)


def uplinks(specs: Iterable[Mapping[str, object]]) -> list[Uplink]:
    """Uplinks from `{"codec": SPEC, "error_feedback": BOOL, **parameters}` entries, checked."""
    found = []
    for spec in specs:
        settings = dict(spec)
        if "codec" not in settings:
            raise PairzooError(f"uplink {spec}: name its codec under 'codec'")
        codec, feedback = str(settings.pop("codec")), bool(settings.pop("error_feedback", False))
        uplink = Uplink(codec, settings, feedback)
        uplink.check()
        found.append(uplink)
    labels = [u.label for u in found]
    if len(set(labels)) != len(labels):
        raise PairzooError(f"uplinks {labels}: each must differ in codec, parameters or feedback")
    return found


Score = Callable[[Mapping[str, np.ndarray]], dict[str, float]]


def history(strategy: CodedFedAvg, initial: Mapping[str, np.ndarray], score: Score) -> list[dict]:
    """Per round (0: the initial model): the global model's scores and the bytes sent so far."""
    rows, up, down = [], 0, 0
    for r in range(len(strategy.globals) + 1):
        sent = sum(strategy.uplink_bytes[r].values()) if r else 0
        up, down = up + sent, down + (strategy.downlink_bytes[r] if r else 0)
        tensors = strategy.globals[r] if r else initial
        rows.append(
            {"uplink": strategy.uplink.label, "round": r, **score(tensors), "uplink bytes": sent,
             "cumulative uplink bytes": up, "cumulative downlink bytes": down}
        )  # fmt: skip
    return rows


def payload_record(uplink: Uplink, payload: bytes, base: str) -> dict:
    """How a recorded payload was made: the `derived` description of a decoded client model."""
    codec = _codec(uplink.codec)
    package = type(codec).__module__.split(".")[0]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "method": f"{PAYLOAD_METHOD}{uplink.label}",
        "parameters": {**uplink.parameters, "error_feedback": uplink.error_feedback},
        "tool": uplink.codec,
        "tool_version": version,
        "size_bytes": len(payload),
        "size_measure": "bytes the client sent; decoded against the base, they give this model",
        "base": base,
    }
