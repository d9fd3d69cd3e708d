"""The data-calibrated baseline: orthogonal, then layer-sequential unit variance (LSUV).

Mishkin & Matas (2016): start from orthogonal weights, then, in execution order, rescale each
layer so that its output has unit variance on one batch. The result is an :class:`InitScheme`
with one group per layer and the found scale in each rule, so it re-creates exactly. A
parametrized weight (``torch.nn.utils.parametrizations.weight_norm``, ...) is calibrated through
the tensor it is computed from where scaling that tensor scales the weight; a normalized one
(``spectral_norm``) cannot be, and keeps its scale with a warning (:func:`lsuv_scheme`).

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

import warnings
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrizations

from autoinit.apply import apply_scheme
from autoinit.batches import LossFn
from autoinit.layers import eager
from autoinit.plan import ModelPlan
from autoinit.roles import layer_of
from autoinit.scheme import InitScheme

__all__ = ["lsuv_scheme"]

_CALIBRATED_KINDS = {"linear", "conv", "conv_transpose", "in_out", "unknown"}


def lsuv_scheme(model: nn.Module, batch: Any, loss: LossFn, *, seed: int = 0, tol: float = 0.1,
                max_iter: int = 5, **select: str | Iterable[str] | bool | None) -> InitScheme:
    """Calibrate on ``batch`` (``model`` is initialized with the result as a side effect).

    A layer whose weight is parametrized (``torch.nn.utils.parametrize``) is measured at its
    output and rescaled through the tensor the scheme draws (its ``original``; for
    ``weight_norm`` the direction and the magnitude ``original0`` with it, as
    :func:`~autoinit.apply.apply_scheme` sets it). Where that does not scale the weight (a
    normalization such as ``spectral_norm``), the layer keeps its scale, with one warning naming
    such layers. A weight under ``orthogonal`` is left alone, as everywhere in autoinit.
    """
    model = eager(model)  # a compiled graph would skip the hooks
    plan = ModelPlan.of(model, "layer", **select)
    scheme = plan.uniform("orthogonal", seed=seed)
    apply_scheme(model, scheme)
    modules = dict(model.named_modules())
    weights = {layer_of(lay.module_name): (g, model.get_parameter(lay.name))  # the drawn tensor
               for g, lays in plan.grouping.groups.items() for lay in lays
               if lay.kind in _CALIBRATED_KINDS and lay.param_type == "weight"
               and _is_weight(lay.name, lay.module_name)}
    order = _execution_order(model, [modules[n] for n in weights], batch, loss)
    scales = {g: 1.0 for g, _ in weights.values()}
    fixed = []
    for module in order:
        name = next(n for n, m in modules.items() if m is module)
        group, drawn = weights[name]
        for _ in range(max_iter):
            std = _output_std(model, module, batch, loss)
            if not (std > 0 and torch.isfinite(torch.tensor(std))) or abs(std - 1) < tol:
                break
            if not _rescaled(module, drawn, 1 / std):
                fixed.append(name)
                break
            scales[group] /= std
    if fixed:
        warnings.warn(f"lsuv cannot calibrate {', '.join(repr(n) for n in fixed)}: rescaling the "
                      "tensor a parametrized weight is computed from does not scale the weight "
                      "(spectral_norm or another normalization), so the orthogonal init's scale "
                      "is kept", stacklevel=2)
    groups = {g: replace(r, scale=r.scale * scales.get(g, 1.0)) for g, r in scheme.groups.items()}
    return replace(scheme, groups=groups)


def _is_weight(name: str, module_name: str) -> bool:
    """Whether the parameter ``name`` is its layer's ``weight``, or the tensor a parametrized
    ``weight`` is drawn into."""
    own = f"{module_name}.weight" if module_name else "weight"  # the model itself a layer
    return name == own or module_name.endswith("parametrizations.weight")


def _rescaled(module: nn.Module, drawn: nn.Parameter, factor: float) -> bool:
    """Multiply ``drawn`` (``module.weight`` or the original it is computed from) by ``factor``,
    and weight norm's magnitude with it; ``False``, with nothing changed, when ``module.weight``
    did not scale by ``factor`` with it."""
    plist = getattr(getattr(module, "parametrizations", None), "weight", None)
    norm = plist.original0 if plist is not None and isinstance(
        plist[0], parametrizations._WeightNorm) else None
    with torch.no_grad():
        before = None if plist is None else module.weight.detach().clone()  # a plain weight scales
        for tensor in (drawn, norm):
            if tensor is not None:
                tensor.mul_(factor)
        if before is None or torch.allclose(module.weight, before * factor, rtol=1e-4, atol=1e-7):
            return True
        for tensor in (drawn, norm):
            if tensor is not None:
                tensor.div_(factor)
    return False


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
