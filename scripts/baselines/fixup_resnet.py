"""Fixup for a residual CNN whose blocks are ``x + conv2(relu(conv1(x)))``, written from the paper.

Zhang, Dauphin & Ma, "Fixup Initialization: Residual Learning Without Normalization" (ICLR 2019),
section 3, for ``L`` residual branches of ``m = 2`` layers:

1. the classification layer and the last layer of every branch start at 0;
2. the other branch layers are He-normal (the authors' CIFAR code uses the fan-out,
   ``std = sqrt(2 / (out_channels · k_h · k_w))``) scaled by ``L^(-1/(2m-2)) = L^(-1/2)``;
3. biases start at 0 (the paper's scalar biases, initialized at 0, stand in for them);
   the stem convolution keeps its own init.

Unlike :mod:`baselines.fixup` (which finds branches through autoinit's role pass) it reads the
structure from the model itself: ``model.blocks`` (each with ``conv1`` and ``conv2``) and
``model.head`` (the classifier), so it depends on torch only. Fixup's scalar multipliers and
biases are architecture and are not added.

Example:
    >>> import torch.nn as nn
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv1, self.conv2 = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)
    >>> net = nn.Module()
    >>> net.blocks, net.head = nn.ModuleList([Block() for _ in range(4)]), nn.Linear(4, 2)
    >>> facts = init_fixup_resnet(net, seed=0)
    >>> facts["branch_scale"], bool((net.blocks[0].conv2.weight == 0).all())
    (0.5, True)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import LossFn, Timer, local_rng, not_applicable

__all__ = ["init_fixup_resnet"]


def _zero(module: nn.Module) -> None:
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def init_fixup_resnet(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *,
                      seed: int, budget: int | None = None) -> dict:
    """Fixup's rules on ``model.blocks[i].conv1/conv2`` and ``model.head``; data-free."""
    timer = Timer()
    blocks = list(getattr(model, "blocks", []))
    head = getattr(model, "head", None)
    if not blocks or not all(isinstance(getattr(b, "conv1", None), nn.Conv2d)
                             and isinstance(getattr(b, "conv2", None), nn.Conv2d) for b in blocks):
        return not_applicable("fixup_resnet", "needs model.blocks, each with Conv2d conv1 and conv2")
    if not isinstance(head, nn.Linear):
        return not_applicable("fixup_resnet", "needs a Linear classifier model.head")
    scale = len(blocks) ** -0.5  # L^(-1/(2m-2)) with m = 2 layers per branch
    with local_rng(seed), torch.no_grad():
        for block in blocks:
            w = block.conv1.weight
            fan_out = w.shape[0] * math.prod(w.shape[2:])
            nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_out) * scale)
            if block.conv1.bias is not None:
                nn.init.zeros_(block.conv1.bias)
            _zero(block.conv2)
        _zero(head)
    return {"method": "fixup_resnet", "applies": True, "branches": len(blocks),
            "branch_scale": scale, "wall_s": timer.seconds}
