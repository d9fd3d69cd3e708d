"""Variance-scaling families: Glorot/Xavier, He/Kaiming, LeCun, truncated and small normals.

Every sampler draws one block with standard deviation ``scale * base_std`` where ``base_std`` is
the family's textbook value for the block's fans and the activation's gain.
"""

from __future__ import annotations

import math

import torch

from autoinit.errors import ConfigError
from autoinit.families._registry import Family, Fans, register_family

_SQRT3 = math.sqrt(3.0)


def _normal(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(shape).normal_(0.0, std, generator=generator)


def _uniform(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    bound = _SQRT3 * std
    return torch.empty(shape).uniform_(-bound, bound, generator=generator)


def _xavier_std(fans: Fans) -> float:
    """Glorot & Bengio (2010): ``gain * sqrt(2 / (fan_in + fan_out))``."""
    return fans.gain * math.sqrt(2.0 / max(fans.fan_in + fans.fan_out, 1))


def _kaiming_std(fans: Fans, mode: str) -> float:
    """He et al. (2015): ``gain / sqrt(fan)`` with ``fan`` chosen by ``mode``."""
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"kaiming option 'mode' must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fans.fan_in if mode == "fan_in" else fans.fan_out
    return fans.gain / math.sqrt(max(fan, 1))


def _lecun_std(fans: Fans) -> float:
    """LeCun et al. (1998): ``1 / sqrt(fan_in)``, no activation gain."""
    return 1.0 / math.sqrt(max(fans.fan_in, 1))


def xavier_uniform(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    return _uniform(fans.shape, scale * _xavier_std(fans), generator)


def xavier_normal(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    return _normal(fans.shape, scale * _xavier_std(fans), generator)


def kaiming_uniform(
    fans: Fans, *, scale: float, generator: torch.Generator, mode: str = "fan_in"
) -> torch.Tensor:
    return _uniform(fans.shape, scale * _kaiming_std(fans, mode), generator)


def kaiming_normal(
    fans: Fans, *, scale: float, generator: torch.Generator, mode: str = "fan_in"
) -> torch.Tensor:
    return _normal(fans.shape, scale * _kaiming_std(fans, mode), generator)


def lecun_uniform(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    return _uniform(fans.shape, scale * _lecun_std(fans), generator)


def lecun_normal(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    return _normal(fans.shape, scale * _lecun_std(fans), generator)


def trunc_normal(
    fans: Fans, *, scale: float, generator: torch.Generator, std: float = 0.02
) -> torch.Tensor:
    """N(0, (scale*std)^2) truncated at two standard deviations (BERT/GPT use std 0.02)."""
    sd = scale * float(std)
    if sd == 0.0:  # torch's trunc_normal_ divides by the std
        return torch.zeros(fans.shape)
    out = torch.empty(fans.shape)
    return torch.nn.init.trunc_normal_(out, 0.0, sd, -2.0 * sd, 2.0 * sd, generator=generator)


def small_normal(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """N(0, (0.01*scale)^2): the classic scheme for SGD with momentum (biases N(0, 0.001^2))."""
    return _normal(fans.shape, 0.01 * scale, generator)


for _family in (
    Family("xavier_uniform", xavier_uniform, summary="U(±sqrt3·gain·sqrt(2/(fan_in+fan_out)))"),
    Family("xavier_normal", xavier_normal, summary="N(0, gain²·2/(fan_in+fan_out))"),
    Family("kaiming_uniform", kaiming_uniform, options={"mode": "fan_in"},
           summary="U(±sqrt3·gain/sqrt(fan)), fan_in or fan_out"),
    Family("kaiming_normal", kaiming_normal, options={"mode": "fan_in"},
           summary="N(0, gain²/fan), fan_in or fan_out"),
    Family("lecun_uniform", lecun_uniform, summary="U(±sqrt(3/fan_in))"),
    Family("lecun_normal", lecun_normal, summary="N(0, 1/fan_in)"),
    Family("trunc_normal", trunc_normal, options={"std": 0.02},
           summary="N(0, std²) truncated at ±2 std (std 0.02 as in BERT/GPT)"),
    Family("small_normal", small_normal, default_bias="normal",
           summary="N(0, 0.01²) weights, N(0, 0.001²) biases"),
):
    register_family(_family)
