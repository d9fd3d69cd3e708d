"""A small GPT-style language model (pre-LN, causal, tied embeddings) with GPT-2's own init.

The blocks are ``x + attn(ln_1(x))`` and ``x + mlp(ln_2(x))`` with a final LayerNorm, the output
layer shares its weight with the token embedding, and attention is causal. The model initializes
itself as GPT-2 does (Radford et al. 2019, as in nanoGPT): every Linear and Embedding weight
``N(0, 0.02)``, biases 0, and the two residual projections of each block (``attn.c_proj``,
``mlp.c_proj``) ``N(0, 0.02/sqrt(2L))`` for ``L`` blocks. So PyTorch's "default" for this model
(autoinit's ``model_default``) is GPT-2's init, the reference a search has to match. The data is
:func:`autoinit.tasks.text.char_data`, the generated grammar.

Example:
    >>> import torch
    >>> net = tiny_gpt(n_layers=2, d_model=16, n_heads=2, max_len=8)
    >>> net.head.weight is net.wte.weight
    True
    >>> tuple(net(torch.zeros(3, 8, dtype=torch.long)).shape)
    (3, 8, 28)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from autoinit.tasks._common import check_positive
from autoinit.tasks.text import ALPHABET

__all__ = ["GPT", "tiny_gpt"]

GPT2_STD = 0.02


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: one ``c_attn`` for q, k, v and an output ``c_proj``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads ({n_heads}), got {d_model}")
        self.n_heads = n_heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for z in self.c_attn(x).split(d, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.c_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    """A pre-LN block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.mlp = MLP(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, pre-LN blocks, a final LayerNorm, a tied output layer."""

    def __init__(self, vocab: int, d_model: int, n_layers: int, n_heads: int, max_len: int) -> None:
        super().__init__()
        check_positive(vocab=vocab, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                       max_len=max_len)
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied input and output embeddings
        self.apply(self._init_weights)
        residual_std = GPT2_STD / math.sqrt(2 * n_layers)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's rule: N(0, 0.02) for Linear and Embedding weights, zero biases."""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, 0.0, GPT2_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h))


def tiny_gpt(n_layers: int = 4, d_model: int = 64, n_heads: int = 4, max_len: int = 32,
             vocab: int = len(ALPHABET)) -> GPT:
    """A small pre-LN GPT with tied embeddings and GPT-2's init (drawn from the global RNG)."""
    return GPT(vocab, d_model, n_layers, n_heads, max_len)
