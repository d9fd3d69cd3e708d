"""Mimetic attention (Trockman & Kolter, ICML 2023): attention that starts like a trained one.

Trained self-attention has ``W_qᵀ W_k ≈ αI + noise`` (a token attends to similar tokens) and
``W_o W_v ≈ −βI + noise`` (torch's ``(out, in)`` layout; the paper writes ``W_q W_kᵀ`` and
``W_v W_proj`` for ``(in, out)`` matrices). Two families build that at initialization:

- ``mimetic`` for ``nn.MultiheadAttention``'s packed ``in_proj_weight`` (q, k, v blocks). Per
  layer it draws ``A = alpha (I + noise Z)`` with ``Z ~ N(0, 1/d)``, takes its SVD ``U S Vᵀ``
  and sets ``W_q = (U √S)ᵀ``, ``W_k = (V √S)ᵀ``, so ``W_qᵀ W_k = A``; with option ``heads`` (the
  module's ``num_heads``) head ``h`` gets singular pairs ``h, h + heads, ...``, a rank-``d/heads``
  part of ``A``. (The paper draws one ``A_h`` per head and keeps its top ``d/heads`` pairs: as
  many full SVDs as heads, 23 s for a 768-wide, 12-head layer on one CPU thread; this is one.)
  The q and k blocks draw the same ``Z`` from the parameter's generator.
  The v block is ``√beta C + ε N`` with ``C`` the orthonormal DCT-II matrix.
- ``mimetic_out`` for the attention's ``out_proj`` (role ``attn_out``): ``−√beta Cᵀ + ε N``.

``W_o`` and ``W_v`` are different parameters, each with its own generator, so they cannot share
a random matrix; they share the deterministic orthogonal ``C`` instead, which gives
``W_o W_v = −beta I`` plus noise of ``ε = noise √(beta / 2)``, i.e. ``beta · noise · Z``-sized
noise as in the paper's ``α₂ Z₂ − β₂ I`` with ``α₂ = β₂``. Give both families the same ``beta``
and ``noise``. The paper's values: ``alpha = 0.7``, ``beta = 0.4``, noise weight equal to the
identity weight (``noise = 1``). ``scale`` multiplies every block. Separate ``q_proj`` /
``k_proj`` / ``v_proj`` weights (``kdim != embed_dim``) are refused: the q/k pairing needs both
in one parameter.

Example:
    >>> import torch
    >>> from autoinit.families import Fans, get_family
    >>> g = torch.Generator().manual_seed(0)  # one generator, blocks in order, as apply does
    >>> q, k, v = (get_family("mimetic").sampler(Fans((64, 64), 64, 64, block=i, blocks=3),
    ...                                          scale=1.0, generator=g) for i in range(3))
    >>> round(float(torch.trace(q.T @ k)) / 64, 1)  # alpha: the mean of diag(W_qᵀ W_k)
    0.7
    >>> o = get_family("mimetic_out").sampler(Fans((64, 64), 64, 64), scale=1.0,
    ...                                       generator=torch.Generator().manual_seed(1))
    >>> round(float(torch.trace(o @ v)) / 64, 1)  # -beta
    -0.4
"""

from __future__ import annotations

import functools
import math

import torch

from autoinit.errors import ConfigError
from autoinit.families._registry import Family, Fans, register_family

ALPHA, BETA, NOISE = 0.7, 0.4, 1.0


def dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (``C @ C.T == I``): a fixed orthogonal matrix for any size."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    c = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    c[0] /= math.sqrt(2.0)
    return c


def _square(fans: Fans, family: str) -> int:
    rows, cols = fans.shape[0], fans.shape[-1]
    if len(fans.shape) != 2 or rows != cols:
        raise ConfigError(f"family {family!r} needs square (d, d) blocks, got shape {fans.shape}")
    return rows


def _weights(family: str, **values: float) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise ConfigError(f"{family} option {name!r} must be a finite number >= 0, got {value!r}")


def _heads(heads: float, d: int) -> int:
    _weights("mimetic", heads=heads)
    if heads != int(heads) or heads < 1 or d % int(heads):
        raise ConfigError(f"mimetic option 'heads' must be a whole number dividing the width {d}, "
                          f"got {heads!r}")
    return int(heads)


def _noise(d: int, beta: float, noise: float, generator: torch.Generator) -> torch.Tensor:
    """``ε N`` with ``N ~ N(0, 1/d)`` and ``ε = noise √(beta / 2)``."""
    z = torch.empty(d, d).normal_(0.0, 1.0 / math.sqrt(d), generator=generator)
    return noise * math.sqrt(beta / 2.0) * z.double()


@functools.lru_cache(maxsize=2)
def _svd(a: bytes, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SVD of a float64 ``(d, d)`` matrix given as bytes: the q and k blocks draw the same
    matrix, and the second one reuses the first one's SVD (the costly part)."""
    return torch.linalg.svd(torch.frombuffer(bytearray(a), dtype=torch.float64).view(d, d))


def _query_key(d: int, heads: int, alpha: float, noise: float, generator: torch.Generator,
               key: bool) -> torch.Tensor:
    z = torch.empty(d, d).normal_(0.0, 1.0 / math.sqrt(d), generator=generator).double()
    a = alpha * (torch.eye(d, dtype=torch.float64) + noise * z)
    u, s, vh = _svd(a.numpy().tobytes(), d)
    components = ((vh.T if key else u) * s.sqrt()).T  # row i: the i-th singular pair's factor
    # head h takes components h, h + heads, ...: every head gets large and small ones alike
    return components[torch.arange(d).view(d // heads, heads).T.reshape(-1)]


def mimetic(fans: Fans, *, scale: float, generator: torch.Generator, alpha: float = ALPHA,
            beta: float = BETA, noise: float = NOISE, heads: float = 1.0) -> torch.Tensor:
    """One block of a packed ``(q, k, v)`` attention projection (see the module docstring)."""
    d = _square(fans, "mimetic")
    _weights("mimetic", alpha=alpha, beta=beta, noise=noise)
    if fans.blocks != 3:
        raise ConfigError(f"family 'mimetic' needs a packed (q, k, v) in_proj_weight of 3 blocks, "
                          f"got {fans.blocks} block(s)")
    if fans.block == 2:
        v = math.sqrt(beta) * dct_matrix(d) + _noise(d, beta, noise, generator)
        return (scale * v).float()
    # q (block 0) draws from a copy, so k (block 1) draws the same Z from the generator itself
    source = generator
    if fans.block == 0:
        source = torch.Generator().set_state(generator.get_state())
    qk = _query_key(d, _heads(heads, d), alpha, noise, source, key=fans.block == 1)
    return (scale * qk).float()


def mimetic_out(fans: Fans, *, scale: float, generator: torch.Generator, beta: float = BETA,
                noise: float = NOISE) -> torch.Tensor:
    """An attention output projection ``−√beta Cᵀ + ε N``, the partner of ``mimetic``'s v block."""
    d = _square(fans, "mimetic_out")
    _weights("mimetic_out", beta=beta, noise=noise)
    out = -math.sqrt(beta) * dct_matrix(d).T + _noise(d, beta, noise, generator)
    return (scale * out).float()


for _family in (
    Family("mimetic", mimetic, kinds=frozenset({"mha"}), roles=frozenset({"attn_qkv"}), blocks=3,
           options={"alpha": ALPHA, "beta": BETA, "noise": NOISE, "heads": 1.0},
           summary="attention q/k with W_qᵀW_k ≈ αI, v for W_oW_v ≈ −βI (Trockman & Kolter 2023)"),
    Family("mimetic_out", mimetic_out, kinds=frozenset({"linear"}), roles=frozenset({"attn_out"}),
           options={"beta": BETA, "noise": NOISE},
           summary="attention out_proj −√β·DCTᵀ, mimetic's partner (W_oW_v ≈ −βI)"),
):
    register_family(_family)
