"""Deep MLPs without normalization: plain ReLU, plain tanh, and residual (ReLU branches).

Plain nets this deep stay at chance under PyTorch's default init (Kaiming uniform with
``a=sqrt(5)`` shrinks the signal at every layer); residual nets without normalization explode
unless the branches start small (Fixup, SkipInit, ReZero).

Example:
    >>> net = deep_relu_mlp(depth=4, width=16)
    >>> [type(m).__name__ for m in net][:3]
    ['Linear', 'ReLU', 'Linear']
    >>> len([m for m in residual_mlp(blocks=3, width=16).modules() if isinstance(m, nn.Linear)])
    8
"""

from __future__ import annotations

import torch
from torch import nn

from autoinit.tasks._common import check_positive

__all__ = ["ResidualMLP", "deep_relu_mlp", "deep_tanh_mlp", "residual_mlp"]


def _plain(depth: int, width: int, in_features: int, classes: int, act: type[nn.Module]
           ) -> nn.Sequential:
    check_positive(depth=depth, width=width, in_features=in_features, classes=classes)
    if depth < 2:
        raise ValueError(f"depth must be at least 2 (input and output layers), got {depth}")
    sizes = [in_features] + [width] * (depth - 1)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


def deep_relu_mlp(depth: int = 32, width: int = 128, in_features: int = 64, classes: int = 10
                  ) -> nn.Sequential:
    """``depth`` linear layers of ``width`` units with ReLU between them, no normalization."""
    return _plain(depth, width, in_features, classes, nn.ReLU)


def deep_tanh_mlp(depth: int = 32, width: int = 128, in_features: int = 64, classes: int = 10
                  ) -> nn.Sequential:
    """``depth`` linear layers of ``width`` units with tanh between them, no normalization."""
    return _plain(depth, width, in_features, classes, nn.Tanh)


class ResidualMLP(nn.Module):
    """``x + fc2(relu(fc1(x)))`` blocks between an input and an output layer, no normalization."""

    def __init__(self, blocks: int, width: int, in_features: int, classes: int) -> None:
        super().__init__()
        check_positive(blocks=blocks, width=width, in_features=in_features, classes=classes)
        self.input = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"fc1": nn.Linear(width, width), "fc2": nn.Linear(width, width)})
            for _ in range(blocks)
        )
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x).relu()
        for block in self.blocks:
            h = h + block["fc2"](block["fc1"](h).relu())
        return self.head(h.relu())


def residual_mlp(blocks: int = 32, width: int = 128, in_features: int = 64, classes: int = 10
                 ) -> ResidualMLP:
    """A residual MLP of ``blocks`` two-layer ReLU branches, no normalization."""
    return ResidualMLP(blocks, width, in_features, classes)
