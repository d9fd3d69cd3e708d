"""Competitor baselines for the benchmark suite: other ways a user would initialize a model.

Every baseline has the signature
``init_<name>(model, batches, loss_fn, *, seed, budget=None) -> dict``: it initializes ``model``
in place and returns a small record of facts (``method``, ``applies``, iterations, ``wall_s``,
...). When a method does not apply to the model it returns ``applies=False`` with a ``reason`` and
leaves the model as it was (PyTorch's default). ``batches`` is a list of ``(x, y)`` batches and
``loss_fn(model, batch)`` returns a scalar loss. Randomness is seeded locally from ``seed``; the
caller's global RNG state is left unchanged.

Example (``scripts`` on ``sys.path``):
    >>> import torch, torch.nn as nn, torch.nn.functional as F
    >>> from baselines import BASELINES
    >>> g = torch.Generator().manual_seed(0)
    >>> batches = [(torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g))
    ...            for _ in range(2)]
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> BASELINES["lsuv"](net, batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]), seed=0)["applies"]
    True
"""

from __future__ import annotations

from .anyinit_pkg import init_anyinit_analytic, init_anyinit_empirical
from .fixup import init_fixup, init_skipinit, init_tfixup
from .fixup_resnet import init_fixup_resnet
from .gpt2 import init_gpt2
from .gradinit import init_gradinit
from .irnn import init_irnn
from .lstm_gates import init_chrono, init_forget_bias
from .lsuv_pkg import init_lsuv
from .metainit import init_metainit

BASELINES = {
    "gradinit": init_gradinit,
    "metainit": init_metainit,
    "lsuv": init_lsuv,
    "anyinit_analytic": init_anyinit_analytic,
    "anyinit_empirical": init_anyinit_empirical,
    "fixup": init_fixup,
    "skipinit": init_skipinit,
    "tfixup": init_tfixup,
    "fixup_resnet": init_fixup_resnet,
    "gpt2": init_gpt2,
    "forget_bias": init_forget_bias,
    "chrono": init_chrono,
    "irnn": init_irnn,
}

__all__ = [
    "BASELINES",
    "init_anyinit_analytic",
    "init_anyinit_empirical",
    "init_chrono",
    "init_fixup",
    "init_fixup_resnet",
    "init_forget_bias",
    "init_gpt2",
    "init_gradinit",
    "init_irnn",
    "init_lsuv",
    "init_metainit",
    "init_skipinit",
    "init_tfixup",
]
