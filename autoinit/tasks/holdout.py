"""Held-out tasks: models and data the search was never designed or tuned on.

Written in session 9, before any method ran on them, to check that what autoinit does on the
benchmark's tasks holds on others (docs/benchmarks_holdout.md). Each is a kind of model users
bring that the suite lacked:

- ``gru_pixel_digits``: a GRU reading the digits one pixel at a time (64 steps of one value), the
  small-scale twin of pixel-by-pixel MNIST (Le et al. 2015); its model is
  :func:`autoinit.tasks.pixel.gru_digits`;
- ``silu_autoencoder``: a 12-layer SiLU MLP autoencoder of the digits through an 8-unit code,
  trained on the mean squared error (a regression loss, a smooth activation);
- ``conv1d_signals``: an 11-convolution 1-D CNN with GELU and no normalization that names the
  frequency band of a noisy generated signal.

Example:
    >>> import torch
    >>> train, val = signal_data(length=16, batch_size=4, n_train=8, n_eval=4)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), y.dtype
    ((4, 1, 16), torch.int64)
    >>> tuple(conv1d_net(convs=3, channels=4)(x).shape)
    (4, 4)
    >>> xs, ys = next(iter(reconstruction_data(batch_size=4)[0]))
    >>> bool(torch.equal(xs, ys)), tuple(silu_autoencoder(depth=2, width=8)(xs).shape)
    (True, (4, 64))
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_positive, check_split, loaders
from autoinit.tasks.digits import digits_data

__all__ = ["conv1d_net", "make_signals", "reconstruction_data", "signal_data", "silu_autoencoder"]

_SIGNAL_SEEDS = {"train": 31, "val": 32, "test": 33}


def silu_autoencoder(depth: int = 6, width: int = 128, code: int = 8, features: int = 64
                     ) -> nn.Sequential:
    """An MLP autoencoder: ``depth`` SiLU layers down to a linear ``code``, ``depth`` back up."""
    check_positive(depth=depth, width=width, code=code, features=features)

    def side(first: int, last: int) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Linear(first, width), nn.SiLU()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.SiLU()]
        return layers + [nn.Linear(width, last)]

    return nn.Sequential(*side(features, code), *side(code, features))


def reconstruction_data(batch_size: int = 64, seed: int = 0, split: str = "val"
                        ) -> tuple[DataLoader, DataLoader]:
    """The standardized digits as ``(x, x)`` pairs: ``(train, val)`` or ``(train, test)``."""
    check_split(split)
    train, held = digits_data(batch_size=batch_size, seed=seed, split=split)
    x_train, x_held = train.dataset.tensors[0], held.dataset.tensors[0]
    return loaders((x_train, x_train), (x_held, x_held), batch_size, seed)


def make_signals(n: int, length: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy sine waves ``(n, 1, length)``; class ``c`` has ``2 + 2c`` cycles (± 0.5) per
    window, a random phase and amplitude, and unit Gaussian noise on top."""
    check_positive(n=n, length=length, classes=classes)
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, classes, (n,), generator=g)
    cycles = 2 + 2 * label + torch.rand(n, generator=g) - 0.5
    phase = 2 * math.pi * torch.rand(n, generator=g)
    amplitude = 0.5 + torch.rand(n, generator=g)
    t = torch.arange(length) / length
    wave = amplitude[:, None] * torch.sin(2 * math.pi * cycles[:, None] * t + phase[:, None])
    return (wave + torch.randn(n, length, generator=g)).unsqueeze(1), label


def signal_data(length: int = 64, classes: int = 4, batch_size: int = 64, n_train: int = 8192,
                n_eval: int = 512, seed: int = 0, split: str = "val") -> tuple[DataLoader, DataLoader]:
    """``(train, val)`` loaders of the signals, or ``(train, test)`` with ``split="test"``."""
    check_split(split)
    return loaders(make_signals(n_train, length, classes, _SIGNAL_SEEDS["train"]),
                   make_signals(n_eval, length, classes, _SIGNAL_SEEDS[split]), batch_size, seed)


def conv1d_net(convs: int = 11, channels: int = 32, kernel: int = 5, classes: int = 4
               ) -> nn.Sequential:
    """``convs`` same-length 1-D convolutions with GELU, no normalization, average pooling over
    time and a linear classifier."""
    check_positive(convs=convs, channels=channels, kernel=kernel, classes=classes)
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv1d(1 if i == 0 else channels, channels, kernel, padding=kernel // 2),
                   nn.GELU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels, classes))
