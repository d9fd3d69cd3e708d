"""scikit-learn's bundled ``load_digits`` (1,797 8×8 images, 10 classes): never downloads.

The examples are split once, by a fixed permutation, into train (60 %), validation (20 %) and
test (20 %); pixels are standardized with the training split's per-pixel mean and std.

Example:
    >>> train, val = digits_data(batch_size=32)
    >>> x, y = next(iter(train))
    >>> tuple(x.shape), y.dtype
    ((32, 64), torch.int64)
    >>> tuple(next(iter(digits_data(image=True, split="test")[1]))[0].shape)
    (360, 1, 8, 8)
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch.utils.data import DataLoader

from autoinit.tasks._common import check_split, loaders

__all__ = ["digits_data", "raw_digits"]

_SPLIT_SEED = 0  # the split never changes with the loader's seed


@lru_cache(maxsize=1)
def raw_digits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The train / val / test splits with raw pixel values (0 to 16) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(_SPLIT_SEED))
    n_train, n_val = round(0.6 * len(x)), round(0.2 * len(x))
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:]}
    return {k: (x[idx], y[idx]) for k, idx in parts.items()}


@lru_cache(maxsize=1)
def _splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    raw = raw_digits()
    x = raw["train"][0]
    mean, std = x.mean(0), x.std(0).clamp_min(1e-2)
    return {k: ((x - mean) / std, y) for k, (x, y) in raw.items()}


def digits_data(batch_size: int = 64, seed: int = 0, image: bool = False, split: str = "val"
                ) -> tuple[DataLoader, DataLoader]:
    """Loaders over the digits: ``(train, val)``, or ``(train, test)`` with ``split="test"``.

    Args:
        batch_size: training batch size (held-out sets come as one batch).
        seed: seeds the training loader's shuffling (its own ``torch.Generator``).
        image: inputs as ``(1, 8, 8)`` images instead of 64 features.
        split: ``"val"`` or ``"test"``: which held-out split is returned second.
    """
    check_split(split)
    parts = _splits()

    def shaped(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = parts[part]
        return (x.reshape(-1, 1, 8, 8) if image else x), y

    return loaders(shaped("train"), shaped(split), batch_size, seed)
