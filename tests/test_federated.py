"""Federated rounds: the non-IID split, and a whole Flower simulation traced for its connections."""

import os
import subprocess
import sys

import jupytext
import numpy as np
import pytest

from pairzoo import manifest
from pairzoo.errors import PairzooError
from pairzoo.federated import dirichlet_split
from pairzoo.validate import validate

from .conftest import ROOT
from .network import STRACE, outside_addresses, traced


def test_dirichlet_split_covers_every_sample_once_and_is_skewed():
    labels = np.repeat(np.arange(10), 100)
    split = dirichlet_split(labels, 5, alpha=0.3, seed=1)
    joined = np.concatenate(split)
    assert sorted(joined.tolist()) == list(range(1000))
    assert min(len(s) for s in split) >= 10
    again = dirichlet_split(labels, 5, alpha=0.3, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(split, again, strict=True))

    def skew(parts):  # mean share of a client's most frequent class
        return np.mean([np.bincount(labels[p]).max() / len(p) for p in parts])

    assert skew(split) > 2 * skew(dirichlet_split(labels, 5, alpha=100.0, seed=1))


def test_dirichlet_split_refuses_impossible_requests():
    with pytest.raises(PairzooError, match="cannot give"):
        dirichlet_split(np.zeros(20, dtype=int), 5, alpha=1.0, seed=0)
    with pytest.raises(PairzooError, match="alpha > 0"):
        dirichlet_split(np.zeros(100, dtype=int), 2, alpha=0.0, seed=0)


def test_outside_addresses_finds_what_it_must():
    trace = (
        '12 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.53")}'
        ", 16) = 0\n"
        '13 connect(4, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}'
        ", 16) = 0\n"
        '14 bind(5, {sa_family=AF_INET6, sin6_port=htons(0), inet_pton(AF_INET6, "::1", &x)}'
        ", 28) = 0\n"
        '15 connect(6, {sa_family=AF_UNIX, sun_path="/tmp/x/sockets/raylet"}, 110) = 0\n'
    )
    assert outside_addresses(trace) == {"10.0.0.53 (12: connect)"}


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
def test_federated_recipe_connects_to_loopback_only(tmp_path):
    """The whole recipe (Flower, Ray, its workers, the kernel) under `strace -f`."""
    notebook = tmp_path / "federated_rounds.ipynb"
    jupytext.write(jupytext.read(ROOT / "notebooks" / "federated_rounds.py"), notebook)
    log = tmp_path / "strace.log"
    parameters = ["-p", "clients", "3", "-p", "rounds", "2", "-p", "client_round", "2"]
    parameters += ["-p", "local_epochs", "1", "-p", "warm_start_epochs", "2"]
    parameters += ["-p", "artifacts", str(tmp_path / "ci")]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    subprocess.run(
        traced([sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3",
                notebook, tmp_path / "out.ipynb", *parameters], log),
        cwd=ROOT, env=env, check=True, timeout=900, capture_output=True,
    )  # fmt: skip
    trace = log.read_text()
    assert "connect(" in trace and "127.0.0.1" in trace  # the trace saw the kernel and Ray
    assert outside_addresses(trace) == set()
    entries = manifest.load(tmp_path / "ci")
    assert validate(tmp_path / "ci") == []
    relations = sorted(p["relation"] for p in entries["pairs"].values())
    assert relations == ["federated-client-update"] * 3 + ["federated-round"] * 2
    assert not (tmp_path / "ci" / ".flower").exists()
