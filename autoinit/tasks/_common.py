"""Shared helpers of the task library: seeded loaders and split checks."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from autoinit.errors import ConfigError

SPLITS = ("val", "test")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {list(SPLITS)}, got {split!r}")


def check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def loaders(train: tuple[torch.Tensor, ...], held_out: tuple[torch.Tensor, ...], batch_size: int,
            seed: int) -> tuple[DataLoader, DataLoader]:
    """A shuffling training loader driven by its own seeded generator (never the global RNG),
    and a held-out loader that yields the whole held-out set as one batch, in order."""
    check_positive(batch_size=batch_size)
    if batch_size > len(train[0]):
        raise ConfigError(f"batch_size must be at most the {len(train[0])} training examples, "
                          f"got {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(TensorDataset(*train), batch_size=batch_size, shuffle=True,
                              drop_last=True, generator=generator)
    held_loader = DataLoader(TensorDataset(*held_out), batch_size=len(held_out[0]))
    return train_loader, held_loader
