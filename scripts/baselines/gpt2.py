"""GPT-2's initialization, written from the paper and nanoGPT's description of it.

Radford et al., "Language Models are Unsupervised Multitask Learners" (2019), section 2.3: "a
modified initialization which accounts for the accumulation on the residual path with model depth
is used. We scale the weights of residual layers at initialization by a factor of 1/sqrt(N) where
N is the number of residual layers". As GPT-2's released code and nanoGPT do it: every Linear and
Embedding weight ``N(0, 0.02)``, Linear biases 0, LayerNorm weight 1 and bias 0, and the
projections that write into the residual stream (named ``c_proj`` in GPT-2, two per block)
``N(0, 0.02 / sqrt(N))`` with ``N`` = their count (``2 · n_layer``). Tied weights are drawn once.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Module()
    >>> net.wte = nn.Embedding(10, 8)
    >>> net.h = nn.ModuleList(nn.ModuleDict({"c_fc": nn.Linear(8, 8), "c_proj": nn.Linear(8, 8)})
    ...                       for _ in range(2))
    >>> facts = init_gpt2(net, seed=0)
    >>> facts["residual_projections"], round(facts["residual_std"], 4)
    (2, 0.0141)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import LossFn, Timer, local_rng, not_applicable

__all__ = ["GPT2_STD", "init_gpt2"]

GPT2_STD = 0.02


def init_gpt2(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *, seed: int,
              budget: int | None = None) -> dict:
    """GPT-2's N(0, 0.02) with residual projections (``*.c_proj``) at 0.02/sqrt(N); data-free."""
    timer = Timer()
    projections = [name for name, m in model.named_modules()
                   if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] == "c_proj"]
    if not projections:
        return not_applicable("gpt2", "no Linear named c_proj: GPT-2's residual projections not found")
    residual_std = GPT2_STD / math.sqrt(len(projections))
    seen: set[int] = set()
    with local_rng(seed), torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            if not isinstance(module, nn.Linear | nn.Embedding) or id(module.weight) in seen:
                continue
            seen.add(id(module.weight))
            std = residual_std if name in projections else GPT2_STD
            nn.init.normal_(module.weight, 0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
    return {"method": "gpt2", "applies": True, "residual_projections": len(projections),
            "residual_std": residual_std, "wall_s": timer.seconds}
