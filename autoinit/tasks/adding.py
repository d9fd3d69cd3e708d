"""Recurrent nets on the adding problem (Hochreiter & Schmidhuber 1997), generated in memory.

Each input is a ``(seq_len, 2)`` sequence: random values in [0, 1] and a marker channel with
two ones, one in each half; the target is the sum of the two marked values. Predicting the
mean (1.0) gives a mean squared error of 1/6, the level a net that has not learned sits at.
Recurrent weights decide whether the gradient reaches back far enough (IRNN, orthogonal
recurrences, an LSTM forget-gate bias of 1).

Example:
    >>> train, val = adding_data(seq_len=10, n_train=64, n_eval=16, batch_size=8)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), tuple(y.shape), bool((x[:, :, 1].sum(1) == 2).all())
    ((8, 10, 2), (8, 1), True)
    >>> tuple(adding_lstm(hidden=8)(x).shape)
    (8, 1)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_positive, check_split, loaders

__all__ = ["AddingRNN", "adding_data", "adding_lstm", "adding_rnn", "make_adding"]

_SPLIT_SEEDS = {"train": 11, "val": 12, "test": 13}


def make_adding(n: int, seq_len: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` adding-problem examples drawn from a ``torch.Generator`` seeded with ``seed``."""
    check_positive(n=n)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 2:
        raise ValueError(f"seq_len must be an integer >= 2, got {seq_len!r}")
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, seq_len, generator=g)
    half = seq_len // 2
    first = torch.randint(0, half, (n,), generator=g)
    second = torch.randint(half, seq_len, (n,), generator=g)
    markers = torch.zeros(n, seq_len)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return torch.stack([values, markers], dim=2), target


def adding_data(seq_len: int = 30, batch_size: int = 64, n_train: int = 8192, n_eval: int = 1024,
                seed: int = 0, split: str = "val") -> tuple[DataLoader, DataLoader]:
    """``(train, val)`` loaders of the adding problem, or ``(train, test)``."""
    check_split(split)
    return loaders(make_adding(n_train, seq_len, _SPLIT_SEEDS["train"]),
                   make_adding(n_eval, seq_len, _SPLIT_SEEDS[split]), batch_size, seed)


class AddingRNN(nn.Module):
    """A one-layer ``nn.RNN`` or ``nn.LSTM`` read out from its last step by a linear layer."""

    def __init__(self, cell: str, hidden: int, nonlinearity: str = "tanh") -> None:
        super().__init__()
        check_positive(hidden=hidden)
        if cell == "lstm":
            self.rnn: nn.RNNBase = nn.LSTM(2, hidden, batch_first=True)
        elif cell == "rnn":
            self.rnn = nn.RNN(2, hidden, nonlinearity=nonlinearity, batch_first=True)
        else:
            raise ValueError(f"cell must be 'rnn' or 'lstm', got {cell!r}")
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def adding_rnn(hidden: int = 64, nonlinearity: str = "tanh") -> AddingRNN:
    """A vanilla RNN (``nonlinearity`` ``"tanh"`` or ``"relu"``) for the adding problem."""
    return AddingRNN("rnn", hidden, nonlinearity)


def adding_lstm(hidden: int = 64) -> AddingRNN:
    """An LSTM for the adding problem."""
    return AddingRNN("lstm", hidden)
