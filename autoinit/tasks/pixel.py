"""Recurrent nets reading the digits one pixel at a time: 64 steps of one value, then the class.

The small-scale twin of pixel-by-pixel MNIST (Le, Jaitly & Hinton 2015), in two cells:

- ``gru_digits``: a GRU (held out in session 9, docs/benchmarks_holdout.md);
- ``relu_rnn_digits``: a plain ReLU RNN (session 11), the IRNN paper's own setting: its
  recurrence neither squashes nor gates, so a recurrent matrix with a spectral radius above 1
  blows the state up over 64 steps, and one below 1 forgets the first rows of the digit.

Example:
    >>> import torch
    >>> tuple(gru_digits(hidden=8)(torch.zeros(2, 64)).shape)
    (2, 10)
    >>> net = relu_rnn_digits(hidden=8)
    >>> net.rnn.nonlinearity, tuple(net(torch.zeros(2, 64)).shape)
    ('relu', (2, 10))
"""

from __future__ import annotations

import torch
from torch import nn

from autoinit.errors import ConfigError
from autoinit.tasks._common import check_positive

__all__ = ["PixelRNN", "gru_digits", "relu_rnn_digits"]

_CELLS = {"gru": lambda h: nn.GRU(1, h, batch_first=True),
          "relu_rnn": lambda h: nn.RNN(1, h, nonlinearity="relu", batch_first=True)}


class PixelRNN(nn.Module):
    """A one-layer recurrent net over the 64 pixels of a digit, read out from its last step."""

    def __init__(self, hidden: int, classes: int, cell: str = "gru") -> None:
        super().__init__()
        check_positive(hidden=hidden, classes=classes)
        if cell not in _CELLS:
            raise ConfigError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
        self.rnn = _CELLS[cell](hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x.unsqueeze(-1))
        return self.head(out[:, -1])


def gru_digits(hidden: int = 64, classes: int = 10) -> PixelRNN:
    """A pixel-by-pixel GRU classifier for :func:`autoinit.tasks.digits.digits_data`."""
    return PixelRNN(hidden, classes, "gru")


def relu_rnn_digits(hidden: int = 64, classes: int = 10) -> PixelRNN:
    """A pixel-by-pixel ReLU RNN classifier for :func:`autoinit.tasks.digits.digits_data`."""
    return PixelRNN(hidden, classes, "relu_rnn")
