"""Smoke runs of the recipes: in the book's kernel and as plain python, traced, with equal bytes."""

import os
import subprocess
import sys

import jupytext
import pytest
import yaml

from pairzoo import NO_TELEMETRY_ENV, OFFLINE_ENV
from pairzoo.archive.validate import validate
from pairzoo.record import manifest

from .conftest import ROOT
from .network import STRACE, ReachedOutside, outside_traffic, traced

RECIPES = sorted((ROOT / "notebooks").glob("*.py"))
# Minimal parameters per recipe.
SMOKE = {
    "catalog": {},
    "retraining": {
        "base_epochs": 2,
        "retrain_epochs": 1,
        "ladder": [1, 2],
        "chain_fractions": [1.0],
    },
    "update_coding": {"qps": [-24, -36, -48]},
    "evaluate_codec": {"keep": [0.1, 0.5]},
    "detection_backbone": {
        "canvases": 64,
        "base_epochs": 1,
        "detector_steps": 3,
        "batch_size": 8,
        "parity_count": 2,
    },
    "compression_variants": {
        "epochs": 2,
        "finetune_epochs": 1,
        "bits": [2, 8],
        "sparsities": [0.9, 0.5],
        "qps": [-16, -32],
    },
    "autoencoder_lstm": {
        "ae_epochs": 2,
        "lstm_epochs": 2,
        "retrain_epochs": 1,
        "ladder": [1, 2],
        "chain_fractions": [1.0],
    },
    "transfer_classes": {"base_epochs": 2, "finetune_epochs": 1, "exchanges": [[9]]},
    "federated_rounds": {
        "clients": 3,
        "rounds": 2,
        "client_round": 2,
        "local_epochs": 1,
        "warm_start_epochs": 2,
        "uplinks": [{"codec": "float32"}, {"codec": "nnc-incremental", "qp": -30}],
        "recorded_uplink": 1,
    },
    "keras_transfer": {"base_epochs": 2, "finetune_epochs": 1, "exchanges": [[9]]},
    "language_model": {
        "base_epochs": 1,
        "ladder": [1],
        "chain_fractions": [1.0],
        "chain_steps": 2,
        "finetune_steps": 2,
        "lora_ranks": [4],
        "vit_epochs": 1,
        "vit_tune_epochs": 1,
    },
}
# Recipes that read what others made: those run first, with their smoke parameters, into the folder.
NEEDS = {
    "update_coding": ["retraining"],
    "evaluate_codec": ["retraining", "update_coding"],
    "catalog": ["retraining"],
}
RELATIONS = {
    "retraining": sorted(["more-data", "more-epochs", "other-hyperparameters"] * 2),
    "federated_rounds": ["federated-client-update"] * 6 + ["federated-round"] * 3,
}
# A user's shell: no switch that `import pairzoo` sets (the test process imported it), so each run
# must set them itself; the book's worker runs a kernel on one thread, a shell uses every core.
SHELL_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in {*NO_TELEMETRY_ENV, *OFFLINE_ENV, "OMP_NUM_THREADS"}
} | {"MPLBACKEND": "Agg"}
ENTRY_POINTS = {"book": {"OMP_NUM_THREADS": "1"}, "pairzoo-run": {"OMP_NUM_THREADS": "2"}}


def _command(entry: str, recipe, parameters: dict, tmp_path, name: str) -> list:
    """`recipe` with `parameters` in the book's kernel (papermill's CLI) or as `pairzoo run`."""
    if entry == "pairzoo-run":
        settings = [arg for key, value in parameters.items() for arg in ("-p", key, repr(value))]
        return [sys.executable, "-m", "pairzoo.cli", "run", recipe, *settings]
    source = tmp_path / f"{name}.ipynb"
    jupytext.write(jupytext.read(recipe), source)
    return [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3",
            "--cwd", recipe.parent, "-y", yaml.safe_dump(parameters),
            source, tmp_path / f"{name}-out.ipynb"]  # fmt: skip


def _run_traced(entry: str, recipe, parameters: dict, tmp_path, name: str) -> set[str]:
    """Run as `entry` under strace; what it sent outside this machine."""
    name = f"{entry}-{name}"
    log = tmp_path / f"{name}.strace"
    command = _command(entry, recipe, parameters, tmp_path, name)
    env = SHELL_ENV | ENTRY_POINTS[entry]
    done = subprocess.run(
        traced(command, log), cwd=ROOT, env=env, timeout=900, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-4000:]}"
    trace = log.read_text()
    assert "127.0.0.1" in trace or entry == "pairzoo-run"  # the trace saw the kernel's sockets
    return outside_traffic(trace)


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {entry["file"] for part in toc["parts"] for entry in part["chapters"]}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_has_one_parameters_cell_and_is_in_the_book(recipe):
    cells = jupytext.read(recipe).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "profile" in tagged[0].source and "artifacts" in tagged[0].source
    assert f"notebooks/{recipe.stem}" in _toc_files()
    assert recipe.stem in SMOKE


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_gives_the_same_bytes_in_the_book_and_as_pairzoo_run_on_loopback_only(
    recipe, tmp_path
):
    """Run 1 in the book's kernel, run 2 as plain python: every socket call of both traced."""
    folders = {entry: tmp_path / entry for entry in ENTRY_POINTS}
    outside = {}
    for entry, folder in folders.items():
        for needed in [*NEEDS.get(recipe.stem, []), recipe.stem]:
            params = {**SMOKE[needed], "artifacts": str(folder)}
            path = ROOT / "notebooks" / f"{needed}.py"
            outside[f"{needed} as {entry}"] = _run_traced(entry, path, params, tmp_path, needed)
        assert validate(folder) == []
    first, second = (manifest.load(folder) for folder in folders.values())
    assert first["pairs"] and first["models"]
    if recipe.stem == "update_coding":
        assert set(first["codings"]) == set(first["pairs"])
    if recipe.stem in RELATIONS:
        assert sorted(p["relation"] for p in first["pairs"].values()) == RELATIONS[recipe.stem]
    assert first == second
    reached = {run: found for run, found in outside.items() if found}
    if reached:
        raise ReachedOutside(reached)


def test_outside_traffic_finds_outside_addresses_and_every_dns_query():
    lines = [
        "11 connect(3<TCP:[9]>, {sa_family=AF_INET, sin_port=htons(443), "
        'sin_addr=inet_addr("93.184.216.34")}, 16) = -1 EINPROGRESS',
        "12 connect(4<UDP:[10]>, {sa_family=AF_INET, sin_port=htons(53), "
        'sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        "13 sendmmsg(5<UDP:[10.1.2.3:41234->10.255.255.53:53]>, [{msg_hdr={msg_name=NULL, "
        'msg_namelen=0, msg_iov=[{iov_base=""..., iov_len=35}], msg_iovlen=1, msg_controllen=0, '
        "msg_flags=0}, msg_len=35}], 2, MSG_NOSIGNAL) = 2",
        '14 sendto(6<UDPv6:[11]>, ""..., 35, MSG_NOSIGNAL, {sa_family=AF_INET6, '
        'sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), '
        "sin6_scope_id=0}, 28) = 35",
        '15 sendto(7<TCP:[127.0.0.1:40112->127.0.0.1:6379]>, ""..., 120, 0, NULL, 0) = 120',
        "16 sendmsg(8<TCPv6:[[::1]:5000->[::1]:6000]>, {msg_name=NULL, msg_namelen=0}, 0) = 8",
        '17 connect(9<UNIX:[12]>, {sa_family=AF_UNIX, sun_path="/tmp/ray/raylet"}, 110) = 0',
        "18 bind(10<NETLINK:[13]>, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 0",
        "19 connect(11<TCPv6:[14]>, {sa_family=AF_INET6, sin6_port=htons(8080), "
        'sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), '
        "sin6_scope_id=0}, 28) = 0",
        "20 bind(12<TCP:[15]>, {sa_family=AF_INET, sin_port=htons(0), "
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
    ]
    assert outside_traffic("\n".join(lines)) == {
        "93.184.216.34:443 (11: connect)",
        "DNS 127.0.0.53:53 (12: connect)",
        "10.1.2.3:41234 (13: sendmmsg)",
        "DNS 10.255.255.53:53 (13: sendmmsg)",
        "DNS ::1:53 (14: sendto)",
    }
    assert outside_traffic("\n".join(lines[4:])) == set()


def test_update_coding_without_pairs_says_so(tmp_path):
    env = {**os.environ, "PAIRZOO_ARTIFACTS": str(tmp_path), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "notebooks/update_coding.py"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert "No pairs in" in done.stdout and "run a model recipe" in done.stdout
    assert not (tmp_path / "ci" / "manifest.json").exists()
