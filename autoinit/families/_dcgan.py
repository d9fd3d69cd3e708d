"""The DCGAN rule (Radford et al. 2016): weights N(0, 0.02²), BatchNorm's gamma N(1, 0.02²).

Two families, since a family draws either weights or norm gammas: ``dcgan`` for convolution,
transposed-convolution and linear weights, ``gamma_normal`` for a norm layer's gamma. The
``dcgan`` baseline of a search puts them together (biases and betas zero).

Example:
    >>> import torch
    >>> from autoinit.families import Fans, get_family
    >>> g = torch.Generator().manual_seed(0)
    >>> w = get_family("dcgan").sampler(Fans((64, 64, 4, 4), 1024, 1024), scale=1.0, generator=g)
    >>> round(float(w.std()), 3)
    0.02
    >>> gamma = get_family("gamma_normal").sampler(Fans((4096,), 1, 1), scale=1.0, generator=g)
    >>> round(float(gamma.mean()), 2), round(float(gamma.std()), 3)
    (1.0, 0.02)
"""

from __future__ import annotations

import torch

from autoinit.families._registry import Family, Fans, register_family

DCGAN_STD = 0.02


def dcgan(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """N(0, (0.02·scale)²), whatever the fans."""
    return torch.empty(fans.shape).normal_(0.0, DCGAN_STD * scale, generator=generator)


def gamma_normal(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """N(1, (0.02·scale)²): a norm layer's gamma near one."""
    return torch.empty(fans.shape).normal_(1.0, DCGAN_STD * scale, generator=generator)


for _family in (
    Family("dcgan", dcgan, summary="N(0, 0.02²) weights (DCGAN, Radford et al. 2016)"),
    Family("gamma_normal", gamma_normal, targets=frozenset({"norm_weight"}),
           summary="norm gamma N(1, 0.02²) (DCGAN's BatchNorm rule)"),
):
    register_family(_family)
