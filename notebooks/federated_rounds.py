# ---
# jupyter:
#   jupytext:
#     formats: notebooks///py:percent,ipynb///ipynb
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Federated rounds: global models and client updates with Flower
#
# Federated learning is the typical source of *refinement updates*: a server sends the global
# model to clients, each client trains it on its own data, sends back its weights, and the server
# averages them into the next global model. Two kinds of update cross the network, and an FL codec
# compresses both:
#
# | update | direction | pairs recorded here |
# |---|---|---|
# | the new global model after a round | server → clients (downlink) | a chain `global-0` → `global-1` → … → `global-R` |
# | a client's locally trained model | client → server (uplink) | `global-(r−1)` → `round-r-client-k` for every client *k* of one round *r*, all sharing that round's base |
# | a client's update through a codec, as the server decoded it | client → server (uplink, coded) | `uplink-global-(r−1)` → `uplink-round-r-client-k` and → `uplink-global-r`, from a federation with a codec in the loop, each client model with the payload it was decoded from |
#
# The federation runs on [Flower](https://flower.ai)'s simulation engine: a `ServerApp` with
# Flower's own `FedAvg` strategy {cite}`mcmahan2017fedavg` (no hand-written averaging) and a `ClientApp`, each simulated
# client a Ray actor with one CPU. The clients hold **non-IID** shards of the training set: each
# class is spread over the clients in Dirichlet-distributed shares {cite}`hsu2019noniid`, so every client sees a skewed
# label mix. The global model starts from a **warm start**, a model trained centrally on a small
# share of the data, as deployed federations often do.
#
# The simulation stays on this machine: `pairzoo.train.federated` switches off Flower's telemetry, binds
# Ray to 127.0.0.1 (no DNS lookup of its own address), stops the cloud-metadata probes of Ray's
# dashboard process, and keeps Flower's and Ray's state in a folder it removes afterwards; a test
# traces every `connect` of a simulation and accepts only loopback and Unix sockets.
#
# The second part runs the same federation with an **update codec in the loop**, the experiment of
# the NNR {cite}`iso15938-17` contributors' federated work: every client codes its update against the round's global
# model before sending it, the server decodes the payloads and averages what it decoded. Any codec
# that plugs into `pairzoo evaluate` ({doc}`evaluate_codec`) runs here by name, with or without
# error feedback; the page compares how much accuracy each byte sent buys over the rounds.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": `dataset` from $PAIRZOO_DATA
dataset = "cifar100"  # full: cifar10, cifar100 or imagenet
artifacts = ""  # output folder; empty: artifacts/<profile> of the project
architecture = ""  # empty: digits-cnn for ci, resnet18 for full
clients = 4
rounds = 5
alpha = 0.5  # Dirichlet concentration of the label split: smaller is more skewed
local_epochs = 2
local_lr = 0.02
warm_start_fraction = 0.1
warm_start_epochs = 20
client_round = 3  # the round whose client updates become pairs
qp = -32  # NNC quantisation parameter for the update sizes on this page
seed = 0
# The codecs on the uplink, one federation each: a codec's name or `module:object` (as
# `pairzoo evaluate` takes it), its parameters, and `error_feedback` (the client keeps what its
# payload did not carry and adds it to its next update). `float32` is the uncoded reference.
uplinks = [
    {"codec": "float32"},
    {"codec": "nnc-incremental", "qp": -24},
    {"codec": "nnc-incremental", "qp": -36},
    {"codec": "pairzoo.bench.example_codec:TopKDelta", "keep": 0.05},
    {"codec": "pairzoo.bench.example_codec:TopKDelta", "keep": 0.05, "error_feedback": True},
]
recorded_uplink = 2  # the uplink whose states around `client_round` are written as pairs
target_top1 = 99.0  # the accuracy whose cost in bytes the last table shows

# %%
from pairzoo.coding import codec
from pairzoo.train import federated  # before Flower: its telemetry off, TensorFlow kept out

# isort: split
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from pairzoo import architectures
from pairzoo.data.loading import load_dataset
from pairzoo.data.sets import Subset, draw, stratified_subset
from pairzoo.export.exporters import float_state, load_state
from pairzoo.models.build import build_model
from pairzoo.record.metrics import cross_entropy
from pairzoo.record.writer import PairWriter, Training
from pairzoo.steps import coded_federation
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, predict, train
from pairzoo.views.catalog import pair_table

architecture = architecture or architectures.default("federated", profile)
data = load_dataset(profile, dataset)
writer = PairWriter("federated_rounds", profile, data, artifacts, architecture=architecture)
print(f"{data.info.name}: {data.sizes}; writing to {writer.folder}")

# %% [markdown]
# ## The warm start and the clients' shards
#
# The warm start sees a class-stratified 10% of the training set; the remaining images are split
# over the clients. The table shows how many images of each class every client holds.

# %%
warm_index = stratified_subset(data.y_train, warm_start_fraction, seed)
rest = np.setdiff1d(np.arange(len(data.y_train)), warm_index)
shards = [rest[s] for s in federated.dirichlet_split(data.y_train[rest], clients, alpha, seed)]

pd.DataFrame(
    [np.bincount(data.y_train[s], minlength=len(data.classes)) for s in shards],
    index=[f"client {k}" for k in range(clients)],
    columns=data.classes,
)

# %%
warm_config = TrainConfig(epochs=warm_start_epochs, lr=0.05, seed=seed)
global_0 = build_model(architecture, len(data.classes), data.input_shape[0], seed)
warm = draw(data, warm_start_fraction, seed)
train(global_0, warm.x_train, warm.y_train, warm_config)
top1 = accuracy(global_0, data.x_test, data.y_test)
writer.add_model(
    "global-0",
    global_0,
    training=Training.of(warm, warm_config),
    metrics={"top1": top1},
    description="warm start: trained centrally on a small share of the data",
)

# %% [markdown]
# ## The ClientApp and the ServerApp
#
# A client receives the global weights and the round's settings, trains on its shard for
# `local_epochs` (seeded by round and client, so a rerun gives the same bits) and replies with its
# weights, its number of examples (FedAvg's weight) and its partition id (`local_training` is the
# part the coded federation below shares). Flower runs each
# simulated client in a Ray actor, a process of its own, so the client reads the dataset itself
# rather than receiving the arrays. The server runs Flower's
# `FedAvg` through `RecordingFedAvg`, a subclass that only keeps what passes through
# `aggregate_train`: the averaged global model of every round and the client replies of
# `client_round`.


# %%
def local_training(message: Message, context: Context):
    """A client's part of a round: the global model trained on its shard; FedAvg's metrics."""
    partition = int(context.node_config["partition-id"])
    settings = message.content["config"]
    own = load_dataset(
        profile, dataset
    )  # each simulated client is a process of its own: it reads its data
    model = build_model(architecture, len(data.classes), data.input_shape[0], seed)
    load_state(model, message.content["arrays"].to_torch_state_dict(), "the global model")
    config = TrainConfig(
        epochs=int(settings["local-epochs"]),
        lr=float(settings["lr"]),
        seed=seed + 1000 * int(settings["server-round"]) + partition,
    )
    shard = shards[partition]
    train(model, own.x_train[shard], own.y_train[shard], config)
    return model, {"num-examples": len(shard), federated.PARTITION_KEY: partition}


client_app = ClientApp()


@client_app.train()
def local_update(message: Message, context: Context) -> Message:
    model, metrics = local_training(message, context)
    content = RecordDict(
        {"arrays": ArrayRecord(float_state(model)), "metrics": MetricRecord(metrics)}
    )
    return Message(content=content, reply_to=message)


strategy = federated.RecordingFedAvg(clients, keep_clients_of=[client_round])
server_app = ServerApp()


def federate(fedavg: federated.RecordingFedAvg, grid: Grid) -> None:
    """`rounds` rounds of `fedavg` from the warm start."""
    fedavg.start(
        grid=grid,
        initial_arrays=ArrayRecord(float_state(global_0)),
        num_rounds=rounds,
        train_config=ConfigRecord({"local-epochs": local_epochs, "lr": local_lr}),
    )


@server_app.main()
def server(grid: Grid, context: Context) -> None:
    federate(strategy, grid)


federated.simulate(server_app, client_app, clients, writer.folder / ".flower")
print(
    f"{len(strategy.globals)} rounds; client models kept for rounds {sorted(strategy.client_models)}"
)

# %% [markdown]
# ## Recording the models and pairs
#
# Each global model and each kept client model is loaded into the network, measured on the test
# split and written like every other model of the book ({ref}`output-format`).

# %%
local = TrainConfig(epochs=local_epochs, lr=local_lr, seed=seed)
federation = {
    "strategy": "FedAvg (Flower)",
    "clients": clients,
    "alpha": alpha,
    "local": local.record(),
}
clients_data = Subset(1.0 - warm_start_fraction, seed, len(rest))


def publish(name, tensors, training, description):
    model = build_model(architecture, len(data.classes), data.input_shape[0], seed)
    load_state(model, tensors, name)
    top1 = accuracy(model, data.x_test, data.y_test)
    writer.add_model(
        name, model, training=training, metrics={"top1": top1}, description=description
    )
    return top1


rows = [{"model": "global-0", "round": 0, "top1": top1}]
for r, tensors in sorted(strategy.globals.items()):
    config = {**federation, "rounds": r}
    training = Training(config=config, subset=clients_data, start=f"global-{r - 1}")
    score = publish(f"global-{r}", tensors, training, f"FedAvg of the {clients} clients, round {r}")
    writer.add_pair(f"global-{r - 1}", f"global-{r}", "federated-round", series="global-chain")
    rows.append({"model": f"global-{r}", "round": r, "top1": score})

base = f"global-{client_round - 1}"
for k, tensors in sorted(strategy.client_models[client_round].items()):
    name = f"round-{client_round}-client-{k}"
    config = {**federation, "rounds": client_round, "client": k}
    shard = Subset(len(shards[k]) / len(data.y_train), seed, len(shards[k]))
    training = Training(config=config, subset=shard, start=base)
    score = publish(name, tensors, training, f"client {k}'s local model in round {client_round}")
    writer.add_pair(base, name, "federated-client-update", series=f"clients-round-{client_round}")
    rows.append({"model": name, "round": client_round, "top1": score})

pd.DataFrame(rows).set_index("model").round(2)

# %% [markdown]
# ## A codec in the loop
#
# The same federation again, once per entry of `uplinks`, from the same warm start with the same
# shards and seeds, but the clients send **payloads, not weights**. A client trains as before,
# codes its model against the round's global model (`encode(global, local)`) and replies with the
# payload alone; the server decodes each payload against the same global model
# (`decode(payload, global)`), checks the names, shapes and values, and gives Flower's FedAvg the
# decoded models to average (`CodedFedAvg`, in `pairzoo.steps.coded_federation`). With error
# feedback a client also decodes its own payload, keeps what it failed to carry, and adds that to
# its next update. A codec that fails stops the run with an error naming the round and the client.
# The global models go down uncoded (float32). All runs share one Flower simulation: the ServerApp
# starts one `CodedFedAvg` after the other.

# %%
coded_client = ClientApp()


@coded_client.train()
def coded_update(message: Message, context: Context) -> Message:
    model, metrics = local_training(message, context)
    local = {name: tensor.numpy() for name, tensor in float_state(model).items()}
    return coded_federation.reply(message, context, local, metrics)


runs = [
    coded_federation.CodedFedAvg(clients, uplink, keep_clients_of=[client_round])
    for uplink in coded_federation.uplinks(uplinks)
]
coded_server = ServerApp()


@coded_server.main()
def coded_rounds(grid: Grid, context: Context) -> None:
    for run in runs:
        federate(run, grid)


federated.simulate(coded_server, coded_client, clients, writer.folder / ".flower")
reference = runs[0]  # the first uplink: the one the others are compared with
same = all(
    all(np.array_equal(reference.globals[r][k], v) for k, v in strategy.globals[r].items())
    for r in strategy.globals
)
print(f"{len(runs)} federations of {rounds} rounds: {', '.join(r.uplink.label for r in runs)}")
print(f"{reference.uplink.label}: the uncoded federation's global model in every round: {same}")
if reference.uplink.codec == "float32":  # lossless: FedAvg must average the very same weights
    assert same, "the float32 uplink did not reproduce the uncoded federation"

# %% [markdown]
# The states of one coded federation, `uplinks[recorded_uplink]`, are written as pairs too: its
# global model before `client_round`, every client's update of that round **as the server decoded
# it** (with the payload it was decoded from, under the model's `derived` files), and the global
# model the server averaged from them. Other codecs can so be compared on the states a coded
# federation goes through, and the payloads are compressed samples of the codec in the loop.

# %%
recorded = runs[recorded_uplink]
label = recorded.uplink.label
coded_start = recorded.globals.get(client_round - 1)
coded_base = f"uplink-global-{client_round - 1}"
publish(
    coded_base,
    float_state(global_0) if coded_start is None else coded_start,
    Training(config={**federation, "rounds": client_round - 1, "uplink": label},
             subset=clients_data, start="global-0"),
    f"the global model after {client_round - 1} rounds with {label} on the uplink",
)  # fmt: skip
for k, tensors in sorted(recorded.client_models[client_round].items()):
    name = f"uplink-round-{client_round}-client-{k}"
    shard = Subset(len(shards[k]) / len(data.y_train), seed, len(shards[k]))
    config = {**federation, "rounds": client_round, "client": k, "uplink": label}
    publish(name, tensors, Training(config=config, subset=shard, start=coded_base),
            f"client {k}'s update in round {client_round} as the server decoded it ({label})")  # fmt: skip
    payload = recorded.payloads[client_round][k]
    path = writer.path_stem(name).with_suffix(".payload")
    path.write_bytes(payload)
    base_id = writer.model_id(coded_base)
    writer.attach(
        name, "payload", path, coded_federation.payload_record(recorded.uplink, payload, base_id)
    )
    writer.add_pair(
        coded_base, name, "federated-client-update", series=f"uplink-clients-round-{client_round}"
    )
coded_global = f"uplink-global-{client_round}"
publish(
    coded_global,
    recorded.globals[client_round],
    Training(config={**federation, "rounds": client_round, "uplink": label},
             subset=clients_data, start=coded_base),
    f"FedAvg of the decoded updates of round {client_round} ({label})",
)  # fmt: skip
writer.add_pair(coded_base, coded_global, "federated-round", series="uplink-global-chain")
timings = writer.finish()

# %% [markdown]
# ## The size of the updates
#
# For every pair: the change statistics, and the bytes of the update coded with NNC's incremental
# mode (the receiver holds the base; `qp` sets NNC's quantisation step) next to the updated model
# coded whole. The figure sets the global model's accuracy beside the size of each round's step,
# and the line under it compares those steps with the clients' updates of `client_round`.

# %% tags=["hide-input"]
from pairzoo.record import manifest, view

entries = manifest.load(writer.folder)
table = pair_table(entries, "federated_rounds")
settings = codec.NncSettings(qp)
uncoded = [p for p in view.of(writer.folder, entries).pairs(recipe="federated_rounds")
           if "uplink-" not in p.id]  # fmt: skip
table = table.loc[[p.id for p in uncoded]]
for pair in uncoded:
    before, after = pair.base.tensors(), pair.updated.tensors()
    table.loc[pair.id, "NNC full B"] = codec.nnc_full(after, settings).size
    table.loc[pair.id, "NNC incremental B"] = codec.nnc_update(before, after, settings).size
table = table.drop(columns=["structure", "metric"])
table.round(4)

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-federated-rounds", "caption": "Left: the global model's top-1 accuracy on the test split after each round (round 0: the warm start). Right: the bytes of each round's global update coded by NNC's incremental mode at QP `qp`; dashed: the mean size of a client's update in `client_round`."}}
global_models = pd.DataFrame([row for row in rows if row["model"].startswith("global-")])
step_bytes = {
    r: table.loc[f"federated_rounds/global-{r - 1}..global-{r}", "NNC incremental B"]
    for r in sorted(strategy.globals)
}
client_updates = table[table["relation"] == "federated-client-update"]
fig, (acc, size) = plt.subplots(1, 2, figsize=(9, 3.2))
acc.plot(global_models["round"], global_models["top1"], marker="o")
acc.set_xlabel("round")
acc.set_ylabel("top-1 % (test)")
acc.set_title("Global model")
size.bar(list(step_bytes), list(step_bytes.values()), label="round update")
size.axhline(
    client_updates["NNC incremental B"].mean(),
    color="C3",
    ls="--",
    label=f"client update (mean, round {client_round})",
)
size.set_xlabel("round")
size.set_ylabel(f"NNC incremental bytes (QP {qp})")
size.set_title("Size of each update")
size.set_ylim(top=1.3 * client_updates["NNC incremental B"].mean())
size.legend(fontsize=8)
fig.tight_layout()
print(
    f"Round {client_round}: a client's update takes {client_updates['NNC incremental B'].mean():,.0f} "
    f"bytes on average, {client_updates['NNC incremental B'].mean() / step_bytes[client_round]:.1f}× "
    f"the global model's step of that round ({step_bytes[client_round]:,.0f} bytes)."
)

# %% [markdown]
# ## Accuracy against bytes sent
#
# Every coded federation's global model after each round, scored on the test split (top-1 and the
# negative log-likelihood of the true class), against the bytes its clients sent up so far. The
# uplink counts the payloads' lengths, all clients together; the downlink (float32 global models)
# is the same for every run.


# %%
def scores(tensors):
    model = load_state(build_model(architecture, len(data.classes), data.input_shape[0], seed),
                       tensors, "a global model")  # fmt: skip
    logits = predict(model, data.x_test)
    return {"top1": accuracy(model, data.x_test, data.y_test),
            "nll": cross_entropy(logits, data.y_test)}  # fmt: skip


initial = {name: tensor.numpy() for name, tensor in float_state(global_0).items()}
progress = pd.DataFrame(
    [row for run in runs for row in coded_federation.history(run, initial, scores)]
)
uncoded_top1 = [row["top1"] for row in rows if row["model"].startswith("global-")]
reproduced = progress[progress["uplink"] == reference.uplink.label]["top1"].tolist()
print(f"{reference.uplink.label} reproduces the uncoded federation's accuracies: "
      f"{reproduced == uncoded_top1}")  # fmt: skip
progress.pivot(index="round", columns="uplink", values="top1").round(2)

# %% [markdown]
# Every run and round: the global model's scores, the bytes its clients sent in that round, and the
# bytes sent so far in each direction.

# %% tags=["hide-output"]
progress.set_index(["uplink", "round"]).round(4)

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-federated-coded", "caption": "Each coded federation's global model after every round: top-1 accuracy (left) and negative log-likelihood (right) on the test split against the bytes all clients sent up so far (log scale), one point per round; dashed: the warm start, before anything was sent; dotted (left): `target_top1`."}}
fig, (top, nll) = plt.subplots(1, 2, figsize=(10, 3.8))
for label, run in progress[progress["round"] > 0].groupby("uplink", sort=False):
    top.plot(run["cumulative uplink bytes"], run["top1"], marker="o", ms=3, label=label)
    nll.plot(run["cumulative uplink bytes"], run["nll"], marker="o", ms=3, label=label)
warm = progress[progress["round"] == 0].iloc[0]
for ax, column, name in ((top, "top1", "top-1 % (test)"), (nll, "nll", "NLL (test)")):
    ax.set_xscale("log")
    ax.set_xlabel("cumulative uplink bytes")
    ax.set_ylabel(name)
    ax.axhline(warm[column], color="grey", lw=0.8, ls="--")
top.axhline(target_top1, color="grey", lw=0.8, ls=":")
nll.legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# The bytes each uplink sent until its global model first reached `target_top1` (empty where it
# never did), next to what the uncoded uplink needed:

# %%
reached = []
for label, run in progress.groupby("uplink", sort=False):
    hit = run[(run["round"] > 0) & (run["top1"] >= target_top1)]
    reached.append({
        "uplink": label,
        "first round at target": hit["round"].iloc[0] if len(hit) else pd.NA,
        "uplink bytes to target": hit["cumulative uplink bytes"].iloc[0] if len(hit) else pd.NA,
        f"top1 after {rounds} rounds": run["top1"].iloc[-1],
        f"uplink bytes in {rounds} rounds": run["cumulative uplink bytes"].iloc[-1],
    })  # fmt: skip
reached = pd.DataFrame(reached).set_index("uplink").convert_dtypes()
reached["bytes to target vs float32"] = (
    reached["uplink bytes to target"]
    / reached.loc[reference.uplink.label, "uplink bytes to target"]
)
reached.round(4)

# %% [markdown]
# ## Across machines: Flower's deployment engine
#
# The same `ClientApp` and `ServerApp` run unchanged on real devices. Packaged as a Flower app
# (`flwr new` makes the skeleton; `pyproject.toml` names the two apps), a SuperLink is started on
# the server (`flower-superlink`), a SuperNode on each client machine, pointing at it
# (`flower-supernode --superlink SERVER:9092`, with that node's data partition in its
# `--node-config`), and `flwr run . my-federation` sends the apps to the federation. Set
# `FLWR_TELEMETRY_ENABLED=0` there too. Outside a simulation the client updates travel over gRPC,
# which is where an FL codec plugs in: on the `ArrayRecord` a client replies with.

# %% tags=["remove-cell"]
# Where the time went in this run (seconds): for the benchmark, not the book.
pd.Series(timings, name="seconds").round(2)
