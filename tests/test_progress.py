"""Progress: a bar on a terminal (rank 0), none elsewhere; what is trained or coded is the same."""

import io
import sys

import torch

from pairzoo import evaluate, progress
from pairzoo.data.sets import draw
from pairzoo.models.build import build_model
from pairzoo.train.config import TrainConfig
from pairzoo.train.loop import train

from . import sample_codecs


class Terminal(io.StringIO):
    """Text written to a terminal."""

    def isatty(self) -> bool:
        return True


def _count(stream, total=3):
    with progress.bar(total, "train", "epoch", stream) as shown:
        for _ in range(total):
            shown.update()
    return stream.getvalue()


def test_a_terminal_shows_a_bar_and_anything_else_nothing(capsys):
    assert "train: 100%" in _count(Terminal()) and "3/3" in _count(Terminal())
    assert _count(io.StringIO()) == ""
    assert not progress.interactive(io.StringIO())
    assert capsys.readouterr() == ("", "")


def test_only_rank_0_shows_progress(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert _count(Terminal()) == ""


def _trained(digits):
    subset = draw(digits, 0.2, 0)
    model = build_model("digits-cnn", 10, 1, 0)
    losses = train(model, subset.x_train, subset.y_train, TrainConfig(epochs=2, seed=0))
    return losses, model.state_dict()


def test_training_with_a_bar_gives_the_same_losses_and_weights(digits, monkeypatch):
    quiet = _trained(digits)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    shown = _trained(digits)
    assert "epoch 2/2, loss" in terminal.getvalue()
    assert quiet[0] == shown[0]
    assert quiet[1].keys() == shown[1].keys()
    assert all(torch.equal(quiet[1][name], shown[1][name]) for name in quiet[1])


def test_evaluate_shows_a_bar_on_a_terminal_and_a_line_per_pair_elsewhere(
    built_folder, monkeypatch, capsys
):
    evaluate(sample_codecs.Exact(), built_folder)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["[1/2]", "[2/2]"]
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    evaluate(sample_codecs.Exact(), built_folder)
    assert "code: 100%" in terminal.getvalue() and "2/2" in terminal.getvalue()
    assert capsys.readouterr().out == ""
