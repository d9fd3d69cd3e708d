"""The public entry points: ``fit`` (the search plus optional MLflow tracking) and ``load_scheme``.

The search core (:mod:`autoinit.search`) knows nothing of MLflow; this facade adds the tracking
callbacks at the edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from autoinit.result import FitResult
from autoinit.scheme import InitScheme
from autoinit.search import run_search

__all__ = ["fit", "load_scheme"]


def fit(model: nn.Module, dataloader: Any, **options: Any) -> FitResult:
    """Search an initialization for ``model`` on ``dataloader``; the model is initialized in place.

    Takes every option of :func:`autoinit.search.run_search`.

    Example:
        >>> import torch, torch.nn as nn, autoinit
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(512, 8, generator=g); y = (x[:, 0] > 0).long()
        >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
        ...                                      batch_size=32)
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> result = autoinit.fit(net, loader, n_trials=8, probe_steps=8)
        >>> sorted(result.baselines)[:3]
        ['kaiming_normal', 'lecun_normal', 'lsuv']
    """
    return run_search(model, dataloader, **options)


def load_scheme(ref: str | Path) -> InitScheme:
    """An :class:`InitScheme` from a local JSON path."""
    return InitScheme.from_json(Path(ref))
