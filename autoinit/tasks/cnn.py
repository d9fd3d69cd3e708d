"""A VGG-style CNN without BatchNorm, for 1×8×8 digit images.

Stages of ``convs_per_stage`` 3×3 convolutions with ReLU, each stage followed by 2×2 max
pooling (8×8 → 4×4 → 2×2), then one linear classifier. Without normalization, depth makes the
default init's shrinking signal vanish (Xiao et al. 2018 train such nets with delta-orthogonal
kernels).

Example:
    >>> import torch
    >>> net = vgg_cnn(convs_per_stage=2, channels=8)
    >>> tuple(net(torch.zeros(2, 1, 8, 8)).shape)
    (2, 10)
"""

from __future__ import annotations

from torch import nn

from autoinit.tasks._common import check_positive

__all__ = ["vgg_cnn"]


def vgg_cnn(convs_per_stage: int = 5, channels: int = 32, in_channels: int = 1, classes: int = 10
            ) -> nn.Sequential:
    """``2 * convs_per_stage`` convolutions in two stages (``channels``, then twice as many)."""
    check_positive(convs_per_stage=convs_per_stage, channels=channels, in_channels=in_channels,
                   classes=classes)
    layers: list[nn.Module] = []
    c_in = in_channels
    for c_out in (channels, 2 * channels):
        for _ in range(convs_per_stage):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            c_in = c_out
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 2 * 2, classes))
