"""IDInit (Pan et al., ICLR 2024): an identity-like weight for any shape, deterministic.

A square matrix gets ``scale * I``. A non-square one gets IDInit's padded identity-like matrix:
identity blocks repeated along the longer side, ``W[i, j] = scale`` where ``i ≡ j (mod min(out,
in))`` and 0 elsewhere, so no input or output is left unconnected (a zero-padded identity, as
``identity`` gives, has rank ``min(out, in)`` *and* leaves the extra units dead). Convolutions
get that matrix at the kernel's centre tap and zeros elsewhere. The ZerO rule (Zhao et al.
2022) uses the same partial identities for shrinking layers.

Example:
    >>> import torch
    >>> from autoinit.families import Fans, get_family
    >>> g = torch.Generator().manual_seed(0)
    >>> get_family("idinit").sampler(Fans((4, 2), 2, 4), scale=1.0, generator=g).tolist()
    [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    >>> get_family("idinit").sampler(Fans((2, 3), 3, 2), scale=0.5, generator=g).tolist()
    [[0.5, 0.0, 0.5], [0.0, 0.5, 0.0]]
"""

from __future__ import annotations

import torch

from autoinit.families._registry import Family, Fans, register_family


def identity_like(rows: int, cols: int) -> torch.Tensor:
    """The ``rows × cols`` matrix with ones where ``i ≡ j (mod min(rows, cols))``."""
    n = max(min(rows, cols), 1)
    return (torch.arange(rows)[:, None] % n == torch.arange(cols)[None, :] % n).float()


def idinit(fans: Fans, *, scale: float, generator: torch.Generator) -> torch.Tensor:
    """``scale`` times the identity-like matrix; at the centre tap for convolutions."""
    shape = fans.shape
    tiled = identity_like(shape[0], shape[1]) * scale
    if len(shape) == 2:
        return tiled
    out = torch.zeros(shape)
    out[(slice(None), slice(None), *(k // 2 for k in shape[2:]))] = tiled
    return out


register_family(Family("idinit", idinit, embeddings=False,
                       summary="identity blocks tiled over non-square weights, conv centre tap "
                               "(IDInit, Pan et al. 2024)"))
