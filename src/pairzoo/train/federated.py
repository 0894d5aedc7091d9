"""Federated rounds on Flower's simulation engine, kept on this machine: loopback only, quiet.

Flower and Ray reach outside by default (telemetry, which `import pairzoo` switches off; a DNS
lookup for the node address; cloud metadata probes from Ray's dashboard process). `local_ray`
starts Ray with those switched off before Flower can start it, and `simulate` runs a ServerApp and
its ClientApps inside it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

import pairzoo.models.build  # noqa: F401  torchvision first: Flower may import TensorFlow, then it crashes
from pairzoo import NO_TELEMETRY_ENV
from pairzoo.errors import PairzooError

# Set before Ray starts (its processes inherit them); `import pairzoo` switched telemetry off.
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # node address 127.0.0.1, no outside DNS lookup
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",  # keep Ray's future default, without its warning
}
WORKER_ENV = {"OMP_NUM_THREADS": "1"}  # one CPU per client
# Read by Ray's dashboard process from $HOME: a local provider stops its cloud metadata probes.
RAY_BOOTSTRAP = "provider: {type: local}\n"
QUIET_LOGGERS = ("flwr", "ray")

os.environ.update(LOOPBACK_ENV)


def dirichlet_split(
    labels: np.ndarray, clients: int, alpha: float, seed: int, minimum: int = 10
) -> list[np.ndarray]:
    """Non-IID client shards: each class spread over the clients by Dirichlet(`alpha`) shares.

    Smaller `alpha` gives more skewed label mixes; draws repeat until every client holds at least
    `minimum` samples. Returns each client's sorted sample indices.
    """
    if clients < 1 or alpha <= 0:
        raise PairzooError(f"need clients >= 1 and alpha > 0, got {clients} and {alpha}")
    if clients * minimum > len(labels):
        raise PairzooError(f"{len(labels)} samples cannot give {clients} clients {minimum} each")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        shards: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            cuts = (np.cumsum(rng.dirichlet([alpha] * clients))[:-1] * len(members)).astype(int)
            for shard, part in zip(shards, np.split(members, cuts), strict=True):
                shard.append(part)
        split = [np.sort(np.concatenate(parts)) for parts in shards]
        if min(len(s) for s in split) >= minimum:
            return split
    raise PairzooError(f"no Dirichlet({alpha}) split gave every client {minimum} samples")


def import_flower() -> None:
    """Import Flower's simulation package without TensorFlow (it imports TF only when present)."""
    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        import flwr.simulation  # noqa: F401
    finally:
        if blocked:
            del sys.modules["tensorflow"]


def prepare_worker() -> None:
    """Set up each Ray worker process: one thread (importing this module imported Flower)."""
    torch.set_num_threads(1)


@contextmanager
def local_ray(state_dir: Path, cpus: int) -> Iterator[None]:
    """Ray on 127.0.0.1 with `cpus` CPUs, its state under `state_dir`; stopped and removed after.

    Ray's session files go to a short temporary folder (its Unix socket paths must stay under 108
    bytes, which a deep `state_dir` would exceed); Flower's home and the $HOME Ray's processes see
    are in `state_dir`.
    """
    import ray

    os.environ["FLWR_HOME"] = str(state_dir / "flwr")
    home = state_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text(RAY_BOOTSTRAP, encoding="utf-8")
    session = tempfile.mkdtemp(prefix="pairzoo-ray-")
    user_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        ray.init(
            num_cpus=cpus,
            num_gpus=0,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=session,
            object_store_memory=128 * 2**20,
            logging_level=logging.ERROR,
            log_to_driver=False,
            runtime_env={
                "env_vars": {
                    **NO_TELEMETRY_ENV,
                    **LOOPBACK_ENV,
                    **WORKER_ENV,
                    "PYTHONPATH": os.pathsep.join(sys.path),
                },
                "worker_process_setup_hook": "pairzoo.train.federated.prepare_worker",
            },
        )
    finally:
        if user_home is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = user_home
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(session, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@contextmanager
def quiet(loggers: Iterable[str] = QUIET_LOGGERS) -> Iterator[None]:
    """Only errors from Flower's and Ray's loggers (they log dozens of lines per round)."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in saved:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def simulate(server_app: object, client_app: object, clients: int, state_dir: Path) -> None:
    """Run `server_app` with `clients` ClientApps in-process, one CPU each, on a local Ray."""
    from flwr.simulation import run_simulation

    cpus = max(1, min(clients, os.cpu_count() or 1))
    with local_ray(state_dir, cpus), quiet():
        run_simulation(
            server_app=server_app,  # type: ignore[arg-type]
            client_app=client_app,  # type: ignore[arg-type]
            num_supernodes=clients,
            backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
        )


import_flower()
from flwr.app import ArrayRecord, Message, MetricRecord  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402

PARTITION_KEY = "partition-id"


class RecordingFedAvg(FedAvg):
    """Flower's FedAvg, keeping the global model of every round and the client replies of some.

    Replies are put in client order before Flower averages them, so the sum is reproducible.
    Each client's reply must carry its partition id under `PARTITION_KEY` in its MetricRecord.
    """

    def __init__(self, clients: int, keep_clients_of: Iterable[int] = (), **kwargs: object):
        with quiet():  # FedAvg warns that federated evaluation is off: the recipe evaluates
            super().__init__(
                fraction_evaluate=0.0,
                min_train_nodes=clients,
                min_available_nodes=clients,
                **kwargs,  # type: ignore[arg-type]
            )
        self.keep = set(keep_clients_of)
        self.globals: dict[int, dict[str, np.ndarray]] = {}
        self.client_models: dict[int, dict[int, dict[str, np.ndarray]]] = {}

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Average as FedAvg does, recording the inputs and the result."""
        replies = sorted(replies, key=partition)
        if server_round in self.keep:
            self.client_models[server_round] = {
                partition(m): arrays_of(m.content["arrays"]) for m in replies
            }
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is None:
            raise PairzooError(f"round {server_round}: no client replied with weights")
        self.globals[server_round] = arrays_of(arrays)
        return arrays, metrics


def partition(message: Message) -> int:
    """The partition id a client's reply carries; PairzooError if the client failed."""
    if message.has_error():
        last = message.error.reason.strip().splitlines()[-1].removesuffix("'>")
        raise PairzooError(f"node {message.metadata.src_node_id} failed: {last}")
    return int(message.content["metrics"][PARTITION_KEY])


def arrays_of(record: ArrayRecord) -> dict[str, np.ndarray]:
    """A Flower ArrayRecord as numpy arrays by name."""
    return {name: array.numpy() for name, array in record.items()}
