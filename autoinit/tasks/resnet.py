"""A deep residual CNN without normalization (Fixup's setting) for 1×8×8 digit images.

A 3×3 stem convolution, ``blocks`` residual blocks ``x + conv2(relu(conv1(x)))`` at full
resolution, global average pooling and a linear classifier; no BatchNorm anywhere. A
variance-preserving init (Kaiming on every layer) adds a branch of the same variance as its input
at every block, so the signal grows like ``2^blocks`` and training at a brisk learning rate blows
up; Fixup (Zhang et al. 2019) zero-initializes the branch ends and the classifier instead.

Example:
    >>> import torch
    >>> net = resnet_nonorm(blocks=2, channels=4)
    >>> tuple(net(torch.zeros(3, 1, 8, 8)).shape), len(net.blocks)
    ((3, 10), 2)
"""

from __future__ import annotations

import torch
from torch import nn

from autoinit.tasks._common import check_positive

__all__ = ["ResNetNoNorm", "ResidualBlock", "resnet_nonorm"]


class ResidualBlock(nn.Module):
    """``x + conv2(relu(conv1(x)))``, then ReLU; both convolutions 3×3, same channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.conv2(self.conv1(x).relu())).relu()


class ResNetNoNorm(nn.Module):
    """Stem convolution, residual blocks, global average pooling, linear head."""

    def __init__(self, blocks: int, channels: int, in_channels: int, classes: int) -> None:
        super().__init__()
        check_positive(blocks=blocks, channels=channels, in_channels=in_channels, classes=classes)
        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(ResidualBlock(channels) for _ in range(blocks))
        self.head = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x).relu()
        for block in self.blocks:
            h = block(h)
        return self.head(h.mean(dim=(2, 3)))


def resnet_nonorm(blocks: int = 20, channels: int = 16, in_channels: int = 1, classes: int = 10
                  ) -> ResNetNoNorm:
    """A residual CNN of ``blocks`` two-convolution blocks without normalization."""
    return ResNetNoNorm(blocks, channels, in_channels, classes)
