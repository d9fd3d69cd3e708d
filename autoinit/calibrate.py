"""The data-calibrated baseline: orthogonal, then layer-sequential unit variance (LSUV).

Mishkin & Matas (2016): start from orthogonal weights, then, in execution order, rescale each
layer so that its output has unit variance on one batch. The result is an :class:`InitScheme`
with one group per layer and the found scale in each rule, so it re-creates exactly.

Example:
    >>> import torch, torch.nn as nn
    >>> from autoinit.batches import make_loss
    >>> g = torch.Generator().manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
    >>> batch = (torch.randn(64, 8, generator=g), torch.randint(0, 2, (64,), generator=g))
    >>> s = lsuv_scheme(net, batch, make_loss(None))
    >>> 0.1 < s.groups["0"].scale < 10
    True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.batches import LossFn
from autoinit.layers import eager
from autoinit.plan import ModelPlan
from autoinit.scheme import InitScheme

__all__ = ["lsuv_scheme"]

_CALIBRATED_KINDS = {"linear", "conv", "conv_transpose", "in_out", "unknown"}


def lsuv_scheme(model: nn.Module, batch: Any, loss: LossFn, *, seed: int = 0, tol: float = 0.1,
                max_iter: int = 5, **select: str | Iterable[str] | bool | None) -> InitScheme:
    """Calibrate on ``batch`` (``model`` is initialized with the result as a side effect)."""
    model = eager(model)  # a compiled graph would skip the hooks
    plan = ModelPlan.of(model, "layer", **select)
    scheme = plan.uniform("orthogonal", seed=seed)
    apply_scheme(model, scheme)
    modules = dict(model.named_modules())
    groups_of = {lay.module_name: g for g, lays in plan.grouping.groups.items() for lay in lays
                 if lay.kind in _CALIBRATED_KINDS and lay.param_type == "weight"}
    order = _execution_order(model, [modules[n] for n in groups_of], batch, loss)
    scales = {g: 1.0 for g in groups_of.values()}
    for module in order:
        name = next(n for n, m in modules.items() if m is module)
        weight = module.weight if isinstance(getattr(module, "weight", None), torch.Tensor) else None
        if weight is None:
            continue
        for _ in range(max_iter):
            std = _output_std(model, module, batch, loss)
            if not (std > 0 and torch.isfinite(torch.tensor(std))) or abs(std - 1) < tol:
                break
            with torch.no_grad():
                weight.mul_(1 / std)
            scales[groups_of[name]] /= std
    groups = {g: replace(r, scale=r.scale * scales.get(g, 1.0)) for g, r in scheme.groups.items()}
    return replace(scheme, groups=groups)


def _execution_order(model: nn.Module, modules: list[nn.Module], batch: Any, loss: LossFn
                     ) -> list[nn.Module]:
    seen: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append(m) if m not in seen else None)
             for m in modules]
    try:
        with torch.no_grad():
            loss(model, batch)
    finally:
        for h in hooks:
            h.remove()
    return seen


def _output_std(model: nn.Module, module: nn.Module, batch: Any, loss: LossFn) -> float:
    captured: list[float] = []

    def hook(m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        out = out[0] if isinstance(out, tuple | list) else out
        captured.append(float(out.detach().float().std()))

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            loss(model, batch)
    finally:
        handle.remove()
    return captured[0] if captured else 1.0
