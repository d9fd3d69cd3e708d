"""Structured families: orthogonal, identity / delta-orthogonal, zeros, constant, PyTorch default."""

from __future__ import annotations

import torch

from autoinit.families._registry import Family, Fans, register_family

_MATRIX_AND_NORM = frozenset({"weight", "norm_weight"})


def orthogonal(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Saxe et al. (2014): a random (semi-)orthogonal matrix times ``gain * scale``.

    Convolution kernels are flattened to ``(out, in * kernel)`` first, as torch does.
    """
    out = torch.empty(fans.shape)
    return torch.nn.init.orthogonal_(out, gain=fans.gain * scale, generator=generator)


def identity(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """``scale`` times the identity; delta-orthogonal for convolutions (Xiao et al., 2018).

    Matrices get a (rectangular) identity, which with recurrent ``weight_hh`` blocks is the IRNN
    scheme (Le et al., 2015). Convolutions get zeros except a random orthogonal
    ``(out, in)`` matrix at the centre tap.
    """
    shape = fans.shape
    if len(shape) == 2:
        return torch.eye(shape[0], shape[1]) * scale
    out = torch.zeros(shape)
    centre = tuple(k // 2 for k in shape[2:])
    q = torch.nn.init.orthogonal_(torch.empty(shape[0], shape[1]), generator=generator)
    out[(slice(None), slice(None), *centre)] = q * scale
    return out


def zeros(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """All zeros: the last layer of a residual branch (Fixup, SkipInit) or a zero norm gamma."""
    return torch.zeros(fans.shape)


def constant(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Every entry equals ``scale``: a norm layer's gamma (1 is PyTorch's own choice)."""
    return torch.full(fans.shape, float(scale))


for _family in (
    Family("orthogonal", orthogonal, summary="random orthogonal × gain (Saxe et al. 2014)"),
    Family("identity", identity, embeddings=False,
           summary="identity matrix, delta-orthogonal conv, IRNN recurrent"),
    Family("zeros", zeros, targets=_MATRIX_AND_NORM, summary="all zeros (Fixup/SkipInit, zero gamma)"),
    Family("constant", constant, targets=frozenset({"norm_weight"}),
           summary="norm gamma filled with the scale"),
    Family("pytorch_default", None, targets=_MATRIX_AND_NORM, default_bias="default",
           summary="exactly what the module's reset_parameters() draws"),
    Family("model_default", None, targets=_MATRIX_AND_NORM, default_bias="default",
           summary="what the model's own init draws (Hugging Face _init_weights, init_weights)"),
):
    register_family(_family)
