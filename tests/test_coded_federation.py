"""A codec in the federated loop: the server sees only decoded updates; codec failures stop it."""

import hashlib
import json

import numpy as np
import pytest

from pairzoo.archive.validate import check_tree, validate
from pairzoo.data.sets import draw
from pairzoo.errors import PairzooError
from pairzoo.export.exporters import float_state
from pairzoo.models.build import build_model
from pairzoo.record import manifest
from pairzoo.record.tree import open_tree
from pairzoo.record.writer import PairWriter, Training
from pairzoo.steps import coded_federation
from pairzoo.train import federated
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy

# isort: split
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

CLIENTS = 3
START = {"w": np.zeros((2, 3), np.float32), "b": np.ones(3, np.float32)}
EXAMPLES = [10, 20, 30]


def local_model(partition: int, server_round: int) -> dict[str, np.ndarray]:
    """What client `partition` "trains" in a round: a step it alone takes, known to the test."""
    step = np.float32(0.25 * (partition + 1) + 0.01 * server_round)
    return {name: value + step for name, value in START.items()}


def _metrics(partition: int) -> dict:
    return {"num-examples": EXAMPLES[partition], federated.PARTITION_KEY: partition}


coded_client = ClientApp()


@coded_client.train()
def coded_update(message: Message, context: Context) -> Message:
    partition = int(context.node_config["partition-id"])
    local = local_model(partition, int(message.content["config"]["server-round"]))
    return coded_federation.reply(message, context, local, _metrics(partition))


weights_client = ClientApp()


@weights_client.train()
def weights_update(message: Message, context: Context) -> Message:
    partition = int(context.node_config["partition-id"])
    local = local_model(partition, 1)
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in local.items()}),
            "metrics": MetricRecord(_metrics(partition)),
        }
    )
    return Message(content=content, reply_to=message)


def federate(client: ClientApp, uplink: coded_federation.Uplink, tmp_path, rounds: int = 2):
    strategy = coded_federation.CodedFedAvg(CLIENTS, uplink, keep_clients_of=[1, 2])
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        initial = ArrayRecord({k: Array(v) for k, v in START.items()})
        strategy.start(grid=grid, initial_arrays=initial, num_rounds=rounds,
                       train_config=ConfigRecord({}))  # fmt: skip

    federated.simulate(server, client, CLIENTS, tmp_path / "flower")
    return strategy


def test_the_server_averages_only_what_it_decoded(tmp_path):
    """A codec whose decode scales the update by `gain`: FedAvg's input is the decoded models."""
    gain = 0.5
    uplink = coded_federation.Uplink("tests.sample_codecs:Exact", {"gain": gain})
    strategy = federate(coded_client, uplink, tmp_path)
    weights = np.array(EXAMPLES, np.float64) / sum(EXAMPLES)
    for r in (1, 2):
        decoded = {k: {n: v * np.float32(gain) for n, v in local_model(k, r).items()}
                   for k in range(CLIENTS)}  # fmt: skip
        for k in range(CLIENTS):
            for name in START:
                np.testing.assert_array_equal(strategy.client_models[r][k][name], decoded[k][name])
            assert strategy.uplink_bytes[r][k] == len(strategy.payloads[r][k])
        for name in START:
            expected = sum(w * decoded[k][name] for k, w in enumerate(weights))
            np.testing.assert_allclose(strategy.globals[r][name], expected, rtol=1e-6)
            sent = sum(w * local_model(k, r)[name] for k, w in enumerate(weights))
            assert not np.allclose(strategy.globals[r][name], sent)  # not what the clients held
    assert strategy.downlink_bytes[1] == CLIENTS * 4 * sum(v.size for v in START.values())


def test_a_reply_with_weights_instead_of_a_payload_stops_the_run(tmp_path):
    uplink = coded_federation.Uplink("float32")
    with pytest.raises(PairzooError, match=r"round 1, client 0: the reply holds \['arrays'"):
        federate(weights_client, uplink, tmp_path, rounds=1)


def test_a_failing_codec_stops_the_run_naming_the_round_and_the_client(tmp_path):
    uplink = coded_federation.Uplink("tests.sample_codecs:Raises")
    with pytest.raises(
        PairzooError,
        match=r"round 1, client 0: codec raises failed to encode: "
        r"RuntimeError: this codec cannot code that",
    ):
        federate(coded_client, uplink, tmp_path, rounds=1)


def test_a_decode_that_changes_the_structure_is_refused():
    strategy = coded_federation.CodedFedAvg(
        CLIENTS, coded_federation.Uplink("tests.sample_codecs:Missing")
    )
    strategy.current = dict(START)
    payload = coded_federation.encode_update(strategy.uplink, START, local_model(0, 1),
                                             RecordDict(), first_round=True)  # fmt: skip
    with pytest.raises(
        PairzooError, match="round 4, client 2: codec missing decoded tensor names differ"
    ):
        strategy._decode(payload, 4, 2)


def test_error_feedback_carries_what_the_payload_left_out_into_the_next_round():
    uplink = coded_federation.Uplink(
        "pairzoo.bench.example_codec:TopKDelta", {"keep": 0.2}, error_feedback=True
    )
    state, base = RecordDict(), {"w": np.zeros(50, np.float32)}
    local = {"w": np.linspace(0.01, 0.5, 50, dtype=np.float32)}
    codec = coded_federation._codec(uplink.codec)
    first = codec.decode(coded_federation.encode_update(uplink, base, local, state, True), base)
    residual = state[coded_federation._residual_key(uplink)]["w"].numpy()
    np.testing.assert_allclose(residual, local["w"] - first["w"], atol=1e-7)
    assert np.count_nonzero(first["w"]) == 10  # the 20% largest changes
    second = codec.decode(coded_federation.encode_update(uplink, base, local, state, False), base)
    # the update plus what was left out: the ten largest are now entries 30..39, at twice their size
    assert np.flatnonzero(second["w"]).tolist() == list(range(30, 40))
    np.testing.assert_allclose(second["w"][30:40], 2 * local["w"][30:40], atol=1e-3)
    restart = codec.decode(coded_federation.encode_update(uplink, base, local, state, True), base)
    np.testing.assert_array_equal(restart["w"], first["w"])  # a run's first round: no residual


def test_uplinks_are_checked_before_any_round():
    found = coded_federation.uplinks(
        [{"codec": "nnc-incremental", "qp": -30}, {"codec": "float32", "error_feedback": True}]
    )
    assert [u.label for u in found] == ["nnc-incremental qp=-30", "float32 +EF"]
    with pytest.raises(PairzooError, match="takes no parameter keep"):
        coded_federation.uplinks([{"codec": "nnc-incremental", "keep": 0.1}])
    with pytest.raises(PairzooError, match="name its codec"):
        coded_federation.uplinks([{"qp": -30}])
    with pytest.raises(PairzooError, match="each must differ"):
        coded_federation.uplinks([{"codec": "float32"}, {"codec": "float32"}])
    with pytest.raises(PairzooError, match="no-such-codec"):
        coded_federation.uplinks([{"codec": "no-such-codec"}])


def test_validate_decodes_each_recorded_payload_to_its_model(tmp_path, digits):
    folder = tmp_path / "ci"
    writer = PairWriter("unit", "ci", digits, folder, architecture="digits-cnn")
    models = {name: build_model("digits-cnn", 10, 1, seed) for seed, name in enumerate(["a", "b"])}
    subset = draw(digits, 0.1, 0)
    for name, model in models.items():
        top1 = accuracy(model, digits.x_test, digits.y_test)
        writer.add_model(
            name, model, training=Training.of(subset, TrainConfig(epochs=0)), metrics={"top1": top1}
        )
    tensors = {n: {k: v.numpy() for k, v in float_state(m).items()} for n, m in models.items()}
    uplink = coded_federation.Uplink("float32")
    codec = coded_federation._codec(uplink.codec)
    payload = codec.encode(tensors["a"], tensors["b"])
    path = writer.path_stem("b").with_suffix(".payload")
    path.write_bytes(payload)
    writer.attach("b", "payload", path, coded_federation.payload_record(uplink, payload, "unit/a"))
    writer.add_pair("a", "b", "federated-client-update")
    writer.finish()
    assert validate(folder) == []
    assert "1 uplink payloads decoded" in check_tree(open_tree(folder)).summary()

    other = codec.encode(tensors["a"], tensors["a"])  # a payload of another model, sums updated
    (folder / "unit" / "b.payload").write_bytes(other)
    entries = manifest.load(folder)
    entries["models"]["unit/b"]["files"]["payload"].update(
        sha256=hashlib.sha256(other).hexdigest(), bytes=len(other)
    )
    (folder / manifest.MANIFEST).write_text(json.dumps(entries), "utf-8")
    assert validate(folder) == ["model unit/b: payload decodes to other tensors than the model's"]
