"""``diagnose``: per-layer signal statistics from one forward and backward pass.

Records, per layer with weights: the output's mean and std, the weight gradient's RMS, the
fraction of dead ReLU units (never positive on the batch), the fraction of saturated tanh/sigmoid
outputs, and whether the weight's rows are all identical (symmetry: a constant init cannot learn
because every unit gets the same gradient). Flags vanishing and exploding signals. Measurement
only: plotting lives in the integrations.

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    >>> d = diagnose(net, (x, torch.zeros(16, dtype=torch.long)))
    >>> [r.name for r in d.records]
    ['0', '2']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoinit.batches import LossFn, loss_fn_for, make_loss
from autoinit.layers import eager
from autoinit.roles import Layer, describe_model, layer_of
from autoinit.search_input import checked_batches, materialize, unlabelled_by

__all__ = ["Diagnosis", "LayerRecord", "diagnose"]

VANISHING_STD = 1e-3
EXPLODING_STD = 1e3
VANISHING_GRAD = 1e-7
EXPLODING_GRAD = 1e3


@dataclass(frozen=True)
class LayerRecord:
    """Signal statistics of one layer."""

    name: str
    kind: str
    role: str
    act_mean: float
    act_std: float
    grad_rms: float
    dead_fraction: float
    saturated_fraction: float
    symmetric: bool
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Diagnosis:
    """All layer records, in execution order, and the flags raised anywhere."""

    records: list[LayerRecord]
    loss: float
    unknown: list[str] = field(default_factory=list)  # parameters no layer rule described

    @property
    def flags(self) -> set[str]:
        return {f for r in self.records for f in r.flags}

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "flags": sorted(self.flags), "unknown": self.unknown,
                "records": [asdict(r) for r in self.records]}

    def table(self) -> str:
        """The records as a fixed-width text table."""
        head = f"{'layer':<28} {'role':<13} {'act std':>9} {'grad rms':>9} {'dead':>5} " \
               f"{'sat':>5} {'sym':>3}  flags"
        rows = [head, "-" * len(head)]
        for r in self.records:
            rows.append(f"{r.name[:28]:<28} {r.role:<13} {r.act_std:>9.3g} {r.grad_rms:>9.3g} "
                        f"{r.dead_fraction:>5.2f} {r.saturated_fraction:>5.2f} "
                        f"{'yes' if r.symmetric else 'no':>3}  {','.join(r.flags)}")
        if self.unknown:
            rows.append(f"no layer rule (torch's convention assumed): {', '.join(self.unknown)}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


def diagnose(model: nn.Module, batch: Any, loss_fn: str | nn.Module | LossFn | None = None
             ) -> Diagnosis:
    """Run one forward and backward pass of ``model`` on ``batch`` and measure every layer.

    The model's gradients are cleared afterwards; its weights are not changed. Lazy modules
    (``nn.LazyLinear``, ...) first get their shapes from one pass of the loss on ``batch``, as
    in a search (:func:`~autoinit.search_input.materialize`). As a search does, a batch holding
    NaN or infinities, or whose labels the loss all ignores (-100), is refused
    (:func:`~autoinit.search_input.checked_batches`): its loss would be NaN.
    """
    checked_batches([batch], "diagnose's batches", unlabelled_by(loss_fn))
    loss = make_loss(loss_fn_for(loss_fn, model, [batch]))  # soft labels: as a search takes them
    layers = {}
    model = eager(model)  # a compiled graph would skip the hooks
    materialize(model, [batch], loss)
    described = describe_model(model, include_frozen=True)
    for lay in described:
        if lay.param_type in ("weight", "norm_weight"):
            layers.setdefault(layer_of(lay.module_name), lay)  # a parametrized one's layer
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    hooks = [modules[name].register_forward_hook(_recorder(name, outputs)) for name in layers]
    try:
        model.zero_grad(set_to_none=True)
        value = loss(model, batch)
        value.backward()
    finally:
        for h in hooks:
            h.remove()
    records = [_record(name, lay, modules[name], outputs[name]) for name, lay in layers.items()
               if name in outputs]
    model.zero_grad(set_to_none=True)
    unknown = [lay.name for lay in described if not lay.known]
    return Diagnosis(records, float(value.detach()), unknown)


def _recorder(name: str, outputs: dict[str, torch.Tensor]
              ) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if isinstance(output, tuple | list):
            output = output[0]
        if isinstance(output, torch.Tensor):
            outputs[name] = output.detach().float()

    return hook


def _own_parameters(module: nn.Module) -> list[nn.Parameter]:
    """A layer's own parameters, the originals of its parametrized tensors included."""
    own = list(module.parameters(recurse=False))
    if parametrize.is_parametrized(module):
        own += list(module.parametrizations.parameters())
    return own


def _record(name: str, lay: Layer, module: nn.Module, out: torch.Tensor) -> LayerRecord:
    mean, std = float(out.mean()), float(out.std()) if out.numel() > 1 else 0.0
    params = _own_parameters(module)
    grads = [p.grad for p in params if p.grad is not None]
    grad_rms = math.sqrt(sum(float(g.abs().float().pow(2).sum()) for g in grads) /  # complex: |g|
                         max(sum(g.numel() for g in grads), 1)) if grads else 0.0
    units = out.reshape(-1, out.shape[-1]) if lay.kind not in ("conv", "conv_transpose") else \
        out.transpose(0, 1).reshape(out.shape[1], -1).T
    dead = float((units <= 0).all(dim=0).float().mean()) if lay.nonlinearity == "relu" else 0.0
    saturated = 0.0
    if lay.nonlinearity == "tanh":
        saturated = float((out.tanh().abs() > 0.99).float().mean())
    elif lay.nonlinearity == "sigmoid":
        s = out.sigmoid()
        saturated = float(((s < 0.01) | (s > 0.99)).float().mean())
    weight = next((p for p in params if p.dim() >= 2), None)
    symmetric = bool(weight is not None and weight.shape[0] > 1 and
                     torch.equal(weight.detach().reshape(weight.shape[0], -1).amax(0),
                                 weight.detach().reshape(weight.shape[0], -1).amin(0)))
    flags = []
    if not (math.isfinite(std) and math.isfinite(grad_rms)):
        flags.append("non_finite")
    elif lay.kind != "norm":
        if std < VANISHING_STD:
            flags.append("vanishing_activation")
        if std > EXPLODING_STD:
            flags.append("exploding_activation")
        if grads and grad_rms < VANISHING_GRAD:
            flags.append("vanishing_gradient")
        if grad_rms > EXPLODING_GRAD:
            flags.append("exploding_gradient")
    if dead > 0.5:
        flags.append("dead_relu")
    if saturated > 0.5:
        flags.append("saturated")
    if symmetric:
        flags.append("symmetric")
    return LayerRecord(name, lay.kind, lay.role, mean, std, grad_rms, dead, saturated, symmetric,
                       tuple(flags))
