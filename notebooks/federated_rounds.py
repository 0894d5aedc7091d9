# ---
# jupyter:
#   jupytext:
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
#
# The federation runs on [Flower](https://flower.ai)'s simulation engine: a `ServerApp` with
# Flower's own `FedAvg` strategy (no hand-written averaging) and a `ClientApp`, each simulated
# client a Ray actor with one CPU. The clients hold **non-IID** shards of the training set: each
# class is spread over the clients in Dirichlet-distributed shares, so every client sees a skewed
# label mix. The global model starts from a **warm start**, a model trained centrally on a small
# share of the data, as deployed federations often do.
#
# The simulation stays on this machine: `pairzoo.train.federated` switches off Flower's telemetry, binds
# Ray to 127.0.0.1 (no DNS lookup of its own address), stops the cloud-metadata probes of Ray's
# dashboard process, and keeps Flower's and Ray's state in a folder it removes afterwards; a test
# traces every `connect` of a simulation and accepts only loopback and Unix sockets.

# %% tags=["parameters"]
profile = "ci"  # "ci": scikit-learn's digits; "full": CIFAR-10 from $PAIRZOO_DATA
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
from pairzoo.record.writer import PairWriter, Training
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import accuracy, train
from pairzoo.views.catalog import pair_table

architecture = architecture or architectures.default("federated", profile)
data = load_dataset(profile)
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
# weights, its number of examples (FedAvg's weight) and its partition id. Flower runs each
# simulated client in a Ray actor, a process of its own, so the client reads the dataset itself
# rather than receiving the arrays. The server runs Flower's
# `FedAvg` through `RecordingFedAvg`, a subclass that only keeps what passes through
# `aggregate_train`: the averaged global model of every round and the client replies of
# `client_round`.

# %%
client_app = ClientApp()


@client_app.train()
def local_update(message: Message, context: Context) -> Message:
    partition = int(context.node_config["partition-id"])
    settings = message.content["config"]
    own = load_dataset(profile)  # each simulated client is a process of its own: it reads its data
    model = build_model(architecture, len(data.classes), data.input_shape[0], seed)
    load_state(model, message.content["arrays"].to_torch_state_dict(), "the global model")
    config = TrainConfig(
        epochs=int(settings["local-epochs"]),
        lr=float(settings["lr"]),
        seed=seed + 1000 * int(settings["server-round"]) + partition,
    )
    shard = shards[partition]
    train(model, own.x_train[shard], own.y_train[shard], config)
    reply = {"num-examples": len(shard), federated.PARTITION_KEY: partition}
    content = RecordDict(
        {"arrays": ArrayRecord(float_state(model)), "metrics": MetricRecord(reply)}
    )
    return Message(content=content, reply_to=message)


strategy = federated.RecordingFedAvg(clients, keep_clients_of=[client_round])
server_app = ServerApp()


@server_app.main()
def server(grid: Grid, context: Context) -> None:
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(float_state(global_0)),
        num_rounds=rounds,
        train_config=ConfigRecord({"local-epochs": local_epochs, "lr": local_lr}),
    )


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

timings = writer.finish()
pd.DataFrame(rows).set_index("model").round(2)

# %% [markdown]
# ## The size of the updates
#
# For every pair: the change statistics, and the bytes of the update coded with NNC's incremental
# mode (the receiver holds the base; `qp` sets NNC's quantisation step) next to the updated model
# coded whole. The figure sets the global model's accuracy beside the size of each round's step,
# and the line under it compares those steps with the clients' updates of `client_round`.

# %% tags=["hide-input"] mystnb={"figure": {"name": "fig-federated-rounds", "caption": "Left: the global model's top-1 accuracy on the test split after each round (round 0: the warm start). Right: the bytes of each round's global update coded by NNC's incremental mode at QP `qp`; dashed: the mean size of a client's update in `client_round`."}}
from pairzoo.record import manifest, view

entries = manifest.load(writer.folder)
table = pair_table(entries, "federated_rounds")
settings = codec.NncSettings(qp)
for pair in view.of(writer.folder, entries).pairs(recipe="federated_rounds"):
    before, after = pair.base.tensors(), pair.updated.tensors()
    table.loc[pair.id, "NNC full B"] = codec.nnc_full(after, settings).size
    table.loc[pair.id, "NNC incremental B"] = codec.nnc_update(before, after, settings).size
table = table.drop(columns=["structure", "metric"])
table.round(4)

# %%
global_models = pd.DataFrame([row for row in rows if row["model"].startswith("global-")])
step_bytes = {
    r: table.loc[f"federated_rounds/global-{r - 1}..global-{r}", "NNC incremental B"]
    for r in sorted(strategy.globals)
}
uplinks = table[table["relation"] == "federated-client-update"]
fig, (acc, size) = plt.subplots(1, 2, figsize=(9, 3.2))
acc.plot(global_models["round"], global_models["top1"], marker="o")
acc.set_xlabel("round")
acc.set_ylabel("top-1 % (test)")
acc.set_title("Global model")
size.bar(list(step_bytes), list(step_bytes.values()), label="round update")
size.axhline(
    uplinks["NNC incremental B"].mean(),
    color="C3",
    ls="--",
    label=f"client update (mean, round {client_round})",
)
size.set_xlabel("round")
size.set_ylabel(f"NNC incremental bytes (QP {qp})")
size.set_title("Size of each update")
size.set_ylim(top=1.3 * uplinks["NNC incremental B"].mean())
size.legend(fontsize=8)
fig.tight_layout()
print(
    f"Round {client_round}: a client's update takes {uplinks['NNC incremental B'].mean():,.0f} "
    f"bytes on average, {uplinks['NNC incremental B'].mean() / step_bytes[client_round]:.1f}× "
    f"the global model's step of that round ({step_bytes[client_round]:,.0f} bytes)."
)

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
