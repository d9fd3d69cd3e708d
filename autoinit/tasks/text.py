"""A post-LN Transformer language model on a generated character task, never downloaded.

The text comes from a small synthetic grammar (determiner, optional adjective, noun, verb,
object; number agreement between subject and verb) over a seeded made-up lexicon, so a model
can go well below the unigram plateau. The model is ``nn.TransformerEncoderLayer`` with
``norm_first=False`` (post-LN) and a causal mask, trained without warmup: the setting where
post-LN stalls or diverges unless its initialization is right (Xiong et al. 2020; T-Fixup).

Example:
    >>> train, val = char_data(seq_len=16, batch_size=4, n_train=32, n_eval=8)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), bool((x[:, 1:] == y[:, :-1]).all())
    ((4, 16), True)
    >>> tuple(post_ln_transformer(n_layers=2, max_len=16)(x).shape)
    (4, 16, 28)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_positive, check_split, loaders

__all__ = ["ALPHABET", "PostLNTransformer", "char_data", "generate_text", "post_ln_transformer"]

ALPHABET = "abcdefghijklmnopqrstuvwxyz ."
_LEXICON_SEED = 1234  # the language is fixed; splits differ only in the sentences drawn
_SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
T = TypeVar("T")


class _Draws:
    """Uniform draws from a seeded ``torch.Generator``, fetched in blocks."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.pool: list[float] = []

    def index(self, n: int) -> int:
        if not self.pool:
            self.pool = torch.rand(4096, generator=self.generator).tolist()
        return min(int(self.pool.pop() * n), n - 1)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.index(len(items))]


def _lexicon() -> dict[str, list[str]]:
    draws = _Draws(_LEXICON_SEED)
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"

    def word(syllables: int) -> str:
        return "".join(draws.pick(consonants) + draws.pick(vowels) for _ in range(syllables))

    words = {kind: sorted({word(1 + draws.index(3)) for _ in range(n)})
             for kind, n in (("noun", 12), ("verb", 10), ("adj", 8))}
    return words


def generate_text(n_chars: int, seed: int) -> str:
    """At least ``n_chars`` characters of sentences from the grammar, drawn with ``seed``."""
    lex, draws = _lexicon(), _Draws(seed)
    parts: list[str] = []
    size = 0

    def phrase(plural: bool) -> str:
        det = "the" if plural else draws.pick(["the", "a"])
        adj = draws.pick(lex["adj"]) + " " if draws.index(2) else ""
        return f"{det} {adj}{draws.pick(lex['noun'])}{'s' if plural else ''}"

    while size < n_chars:
        plural = bool(draws.index(2))
        verb = draws.pick(lex["verb"]) + ("" if plural else "s")
        sentence = f"{phrase(plural)} {verb} {phrase(bool(draws.index(2)))}. "
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)


def _windows(n: int, seq_len: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    text = generate_text(n * (seq_len + 1), seed)
    ids = torch.tensor([ALPHABET.index(c) for c in text[: n * (seq_len + 1)]], dtype=torch.long)
    chunks = ids.reshape(n, seq_len + 1)
    return chunks[:, :-1].contiguous(), chunks[:, 1:].contiguous()


def char_data(seq_len: int = 32, batch_size: int = 16, n_train: int = 2048, n_eval: int = 256,
              seed: int = 0, split: str = "val") -> tuple[DataLoader, DataLoader]:
    """Next-character prediction: ``(train, val)`` loaders, or ``(train, test)``.

    Inputs and targets are ``(batch, seq_len)`` character ids (targets shifted by one).
    """
    check_split(split)
    check_positive(seq_len=seq_len, n_train=n_train, n_eval=n_eval)
    return loaders(_windows(n_train, seq_len, _SPLIT_SEEDS["train"]),
                   _windows(n_eval, seq_len, _SPLIT_SEEDS[split]), batch_size, seed)


class PostLNTransformer(nn.Module):
    """Token and position embeddings, post-LN encoder layers with a causal mask, a linear head."""

    def __init__(self, vocab: int, d_model: int, n_layers: int, n_heads: int, ff: int,
                 max_len: int, dropout: float) -> None:
        super().__init__()
        check_positive(vocab=vocab, d_model=d_model, n_layers=n_layers, n_heads=n_heads, ff=ff,
                       max_len=max_len)
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        # independent layers (nn.TransformerEncoder would deep-copy one, so all start equal)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, ff, dropout, batch_first=True,
                                       norm_first=False)
            for _ in range(n_layers)
        )
        self.head = nn.Linear(d_model, vocab)
        mask = torch.triu(torch.full((max_len, max_len), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        h = self.embed(x) + self.pos.weight[:t]
        mask = self.mask[:t, :t]
        for layer in self.layers:
            h = layer(h, src_mask=mask, is_causal=True)
        return self.head(h)


def post_ln_transformer(n_layers: int = 12, d_model: int = 64, n_heads: int = 4, ff: int = 128,
                        max_len: int = 32, vocab: int = len(ALPHABET), dropout: float = 0.0
                        ) -> PostLNTransformer:
    """A post-LN Transformer character model (no warmup is part of the task's protocol)."""
    return PostLNTransformer(vocab, d_model, n_layers, n_heads, ff, max_len, dropout)
