"""An LSTM classifier that reads an image row by row: one time step per row."""

from __future__ import annotations

import torch
from torch import nn


class RowLSTM(nn.Module):
    """One LSTM layer over the rows of a (C, H, W) image (H steps of C·W features), a linear head.

    The input stays an image tensor, so the data, export and evaluation flow of the image
    classifiers applies unchanged; the reshape into a sequence happens inside.
    """

    def __init__(self, num_classes: int, row_features: int, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(row_features, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits from the LSTM's output after the last row."""
        rows = x.permute(0, 2, 1, 3).flatten(2)  # (N, H, C·W)
        out, _ = self.lstm(rows)
        return self.classifier(out[:, -1])
