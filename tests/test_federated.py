"""Federated rounds: the non-IID split, and Flower kept quiet (the whole recipe: test_recipes)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from pairzoo import NO_TELEMETRY_ENV
from pairzoo.errors import PairzooError
from pairzoo.train.federated import dirichlet_split

from .network import STRACE, outside_traffic, traced


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


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
@pytest.mark.parametrize("first", ["flwr.supercore.telemetry", "pairzoo"])
def test_flower_sends_no_usage_event_whichever_is_imported_first(tmp_path, first):
    """A usage event, as `run_simulation` sends it, under strace: no DNS query, no address."""
    second = "pairzoo" if first != "pairzoo" else "flwr.supercore.telemetry"
    code = (
        f"import {first}\nimport {second}\nfrom flwr.supercore import telemetry as t\n"
        "print(t.event(t.EventType.PYTHON_API_RUN_SIMULATION_ENTER).result(timeout=120))"
    )
    env = {k: v for k, v in os.environ.items() if k not in NO_TELEMETRY_ENV}  # a user's shell
    log = tmp_path / "strace.log"
    done = subprocess.run(
        traced([sys.executable, "-c", code], log),
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert outside_traffic(log.read_text()) == set()
    assert done.stdout.strip() == "disabled"
