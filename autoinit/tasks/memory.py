"""Long-range recall for recurrent nets: name the first symbol of a sequence after ``T`` steps.

Each sequence starts with one of ``classes`` symbols, followed by ``seq_len - 1`` distractor
symbols drawn from ``distractors`` other ones; inputs are symbol ids (the model one-hot encodes
them), and the target is the first symbol, read from the last step. The training set is large
(32,768 sequences) so that a net cannot memorize it instead of learning to remember. Predicting
the prior gives a loss of ``ln(classes)``; learning needs the gradient to cross all ``seq_len``
steps, which PyTorch's default LSTM (forget-gate bias 0, so the memory halves at every step)
does slowly or never. A forget-gate bias of 1 or more,
chrono init (Tallec & Ollivier 2018) and orthogonal recurrences are the classic remedies.

Example:
    >>> train, val = memory_data(seq_len=12, batch_size=4, n_train=16, n_eval=8)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), bool((x[:, 0] == y).all()), bool((x[:, 1:] >= 4).all())
    ((4, 12), True, True)
    >>> tuple(memory_lstm(hidden=8)(x).shape)
    (4, 4)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_positive, check_split, loaders

__all__ = ["MemoryRNN", "make_memory", "memory_data", "memory_lstm"]

_SPLIT_SEEDS = {"train": 21, "val": 22, "test": 23}


def make_memory(n: int, seq_len: int, classes: int, distractors: int, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of symbol ids ``(n, seq_len)`` and their first symbols."""
    check_positive(n=n, seq_len=seq_len, classes=classes, distractors=distractors)
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, (n,), generator=g)
    symbols = classes + torch.randint(0, distractors, (n, seq_len), generator=g)
    symbols[:, 0] = target
    return symbols, target


def memory_data(seq_len: int = 100, classes: int = 4, distractors: int = 8, batch_size: int = 64,
                n_train: int = 32768, n_eval: int = 512, seed: int = 0, split: str = "val"
                ) -> tuple[DataLoader, DataLoader]:
    """``(train, val)`` loaders of the recall task, or ``(train, test)`` with ``split="test"``."""
    check_split(split)
    return loaders(make_memory(n_train, seq_len, classes, distractors, _SPLIT_SEEDS["train"]),
                   make_memory(n_eval, seq_len, classes, distractors, _SPLIT_SEEDS[split]),
                   batch_size, seed)


class MemoryRNN(nn.Module):
    """One-hot inputs, a one-layer LSTM read out from its last step by a linear classifier."""

    def __init__(self, inputs: int, hidden: int, classes: int) -> None:
        super().__init__()
        check_positive(inputs=inputs, hidden=hidden, classes=classes)
        self.inputs = inputs
        self.rnn = nn.LSTM(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(nn.functional.one_hot(x, self.inputs).float())
        return self.head(out[:, -1])


def memory_lstm(hidden: int = 64, classes: int = 4, distractors: int = 8) -> MemoryRNN:
    """An LSTM for :func:`memory_data` with the same ``classes`` and ``distractors``."""
    return MemoryRNN(classes + distractors, hidden, classes)
