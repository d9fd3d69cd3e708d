"""GradInit (Zhu et al., NeurIPS 2021), written from the paper: one learned scale per parameter block.

Every parameter block (each weight and each bias tensor) gets a non-negative scale ``α``; the
model is evaluated at ``α ⊙ θ0`` with ``θ0`` frozen at its initial values (through
``torch.func.functional_call``). Each iteration draws two mini-batches ``S1`` and ``S2`` and
computes ``g = ∇θ L(S1; α⊙θ0)`` with a graph, then

* if ``‖g‖_p > γ``: takes an Adam step on ``α`` that lowers ``‖g‖_p`` (the constraint step);
* else: takes an Adam step on ``α`` that lowers the loss after one step of the training
  optimizer, ``L(S2; α⊙θ0 − η·A[g]) / η`` (the look-ahead objective), where ``A[g] = g`` for
  SGD (differentiated through ``g``: a Hessian-vector product) and ``A[g] = sign(g)`` for Adam
  (Adam's first update, ``m̂/√v̂``, up to its ``eps``);

then clamps ``α`` from below (0.01 for weights, 0 for biases, as in the authors' code). At the
end ``α ⊙ θ0`` is written into the model.

Defaults: Adam with ``η = 1e-3`` (the later training), ``p = 1`` and ``γ = 1/η`` (= 1000 at
η = 1e-3, the authors' value for Adam on the IWSLT Transformer, whose η was 1e-3): with Adam's
first step ``−η·sign(g)`` the loss changes to first order by ``−η‖g‖₁``, so ``γ = 1/η`` bounds
that predicted change at one nat whatever the model size. For SGD: ``p = 2`` and ``γ = 1`` (the
paper's CIFAR-10 setting). Scales are learned with Adam at ``lr = 2.5e-3`` (the authors' IWSLT
run), 100 iterations by default (the paper runs one epoch: 390 to 780 iterations).

Where the authors' code differs, this follows the paper: ``S1`` and ``S2`` are two distinct
batches (their code overlaps them by half) and the SGD look-ahead is differentiated through ``g``
(their code detaches the step). Attention runs through the math SDPA kernel (the flash kernel
has no double backward); a model with another operation lacking one gets ``applies=False``.

Example:
    >>> import torch, torch.nn as nn, torch.nn.functional as F
    >>> g = torch.Generator().manual_seed(0)
    >>> batches = [(torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g))
    ...            for _ in range(4)]
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    >>> facts = init_gradinit(net, batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]),
    ...                       seed=0, budget=5)
    >>> facts["iterations"], facts["applies"]
    (5, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call

from ._common import (
    LossFn,
    Timer,
    check_batches,
    check_budget,
    double_backward_attention,
    local_rng,
    no_double_backward,
    not_applicable,
    restore_on_error,
)

__all__ = ["DEFAULT_ITERATIONS", "ScaledModel", "init_gradinit"]

DEFAULT_ITERATIONS = 100
_OPTIMIZERS = ("adam", "sgd")


class _LossModule(nn.Module):
    """``forward(batch) = loss_fn(model, batch)``, so ``functional_call`` can swap the model's tensors."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: object) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


class ScaledModel:
    """The model evaluated at ``α ⊙ θ0``: one scale per non-zero trainable tensor.

    Tensors that are all zero (biases initialized to 0) get no scale: it could not change them.
    They still take part in the look-ahead step, as leaves of their own.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, min_scale: float = 0.01) -> None:
        self.module = _LossModule(model, loss_fn)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.theta0 = {n: p.detach().clone() for n, p in named}
        self.scaled = [n for n in self.names if bool(self.theta0[n].ne(0).any())]
        self.fixed = {n: self.theta0[n].clone().requires_grad_(True)
                      for n in self.names if n not in self.scaled}
        self.lower = torch.tensor([0.0 if n.rsplit(".", 1)[-1].startswith("bias") else min_scale
                                   for n in self.scaled])
        self.buffers = {n: b for n, b in model.named_buffers()}

    def params(self, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(self.fixed)
        for k, n in enumerate(self.scaled):
            out[n] = alpha[k] * self.theta0[n]
        return out

    def loss(self, params: dict[str, torch.Tensor], batch: object) -> torch.Tensor:
        # Cloned buffers: BatchNorm may update running statistics; the model's stay untouched.
        tensors = {f"model.{n}": t for n, t in params.items()}
        tensors.update({f"model.{n}": b.clone() for n, b in self.buffers.items()})
        return functional_call(self.module, tensors, (batch,))

    def write(self, model: nn.Module, alpha: torch.Tensor) -> None:
        """Write ``α ⊙ θ0`` into ``model`` in place."""
        own = dict(model.named_parameters())
        with torch.no_grad():
            for k, n in enumerate(self.scaled):
                own[n].copy_(alpha[k] * self.theta0[n])


def gradient_norm(grads: Sequence[torch.Tensor], p: int) -> torch.Tensor:
    """``‖g‖_p`` over all blocks together (p = 1 or 2)."""
    if p == 1:
        return sum(g.abs().sum() for g in grads)
    return torch.sqrt(sum(g.square().sum() for g in grads))


def lookahead_loss(scaled: ScaledModel, alpha: torch.Tensor, s1: object, s2: object, *,
                   optimizer: str, lr: float, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L(S2; θ − η·A[g(S1; θ)]), ‖g(S1; θ)‖_p)`` at ``θ = α ⊙ θ0``, both differentiable in ``α``."""
    if not alpha.requires_grad:  # g(S1; θ) needs θ in a graph
        alpha = alpha.detach().requires_grad_(True)
    params = scaled.params(alpha)
    names = list(params)
    grads = torch.autograd.grad(scaled.loss(params, s1), [params[n] for n in names], create_graph=True)
    gnorm = gradient_norm(grads, p)
    # Adam's first update is m̂/(√v̂ + eps) = g/(|g| + eps) ≈ sign(g); SGD's is g itself.
    steps = [g.detach().sign() for g in grads] if optimizer == "adam" else list(grads)
    stepped = {n: params[n] - lr * s for n, s in zip(names, steps, strict=True)}
    return scaled.loss(stepped, s2), gnorm


def _clip(grad: torch.Tensor, clip: float | None) -> torch.Tensor:
    return grad if clip is None else grad.clamp(-clip, clip)


def init_gradinit(model: nn.Module, batches: list, loss_fn: LossFn, *, seed: int, budget: int | None = None,
                  optimizer: Literal["adam", "sgd"] = "adam", lr: float = 1e-3, gamma: float | None = None,
                  p: int | None = None, scale_lr: float = 2.5e-3, betas: tuple[float, float] = (0.9, 0.999),
                  min_scale: float = 0.01, grad_clip: float | None = None) -> dict:
    """GradInit: learn one scale per parameter block; the model ends at ``α ⊙ θ0``, in place.

    Args:
        model: the network, initialized already (GradInit rescales that initialization).
        batches: ``(x, y)`` training batches; ``S1`` and ``S2`` are drawn from them (seeded).
        loss_fn: ``loss_fn(model, batch) -> scalar``.
        seed: seeds the batch draws and anything random in the forward pass.
        budget: iterations (default 100).
        optimizer: the optimizer of the later training, ``"adam"`` or ``"sgd"``.
        lr: its learning rate ``η``.
        gamma: the gradient-norm bound ``γ`` (default ``1/η`` for Adam, 1 for SGD).
        p: the norm (default 1 for Adam, 2 for SGD).
        scale_lr: Adam learning rate for the scales ``τ``.
        min_scale: lower bound of the weight scales (bias scales are bounded by 0).
        grad_clip: per-scale clipping of the scale gradient (the authors' CIFAR runs: 1; off here,
            as in their Adam/IWSLT run).
    """
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r} not supported, please use one of {_OPTIMIZERS}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    iterations = check_budget(budget, DEFAULT_ITERATIONS)
    check_batches(batches)
    p = p if p is not None else (1 if optimizer == "adam" else 2)
    if p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p}")
    gamma = gamma if gamma is not None else (1.0 / lr if optimizer == "adam" else 1.0)
    timer = Timer()
    scaled = ScaledModel(model, loss_fn, min_scale)
    alpha = torch.ones(len(scaled.scaled), requires_grad=True)
    settings = {"optimizer": optimizer, "lr": lr, "gamma": gamma, "p": p, "scale_lr": scale_lr}
    try:
        with (local_rng(seed), _train_mode_without_dropout(model), restore_on_error(model),
              double_backward_attention()):
            record = _learn_scales(scaled, alpha, batches, iterations, seed, settings, betas, grad_clip)
            scaled.write(model, alpha.detach())
    except RuntimeError as exc:
        if no_double_backward(exc):
            return not_applicable("gradinit", f"the look-ahead needs a second derivative: {exc}")
        raise
    a = alpha.detach()
    return {"method": "gradinit", "applies": True, "iterations": iterations, **record, **settings,
            "blocks": len(scaled.scaled), "scale_min": float(a.min()) if len(a) else math.nan,
            "scale_max": float(a.max()) if len(a) else math.nan, "wall_s": timer.seconds}


def _learn_scales(scaled: ScaledModel, alpha: torch.Tensor, batches: list, iterations: int, seed: int,
                  settings: dict, betas: tuple[float, float], grad_clip: float | None) -> dict:
    """The GradInit loop (Algorithm 1 of the paper) on ``alpha``, in place."""
    # Separate Adam states for objective and constraint steps, as in the authors' RescaleAdam.
    opt_objective = torch.optim.Adam([alpha], lr=settings["scale_lr"], betas=betas)
    opt_constraint = torch.optim.Adam([alpha], lr=settings["scale_lr"], betas=betas)
    gen = torch.Generator().manual_seed(seed)
    lr = settings["lr"]
    counts = {"objective_steps": 0, "constraint_steps": 0}
    first = last = math.nan
    for _ in range(iterations):
        i, j = _two_indices(len(batches), gen)
        loss, gnorm = lookahead_loss(scaled, alpha, batches[i], batches[j], optimizer=settings["optimizer"],
                                     lr=lr, p=settings["p"])
        if gnorm.item() > settings["gamma"]:
            target, opt, kind = gnorm, opt_constraint, "constraint_steps"
        else:
            target, opt, kind = loss / lr, opt_objective, "objective_steps"
            first = loss.item() if math.isnan(first) else first
            last = loss.item()
        (grad,) = torch.autograd.grad(target, alpha)
        alpha.grad = _clip(grad, grad_clip)
        opt.step()
        counts[kind] += 1
        with torch.no_grad():
            alpha.copy_(torch.maximum(alpha, scaled.lower))
    return {**counts, "first_lookahead_loss": first, "last_lookahead_loss": last}


def _two_indices(n: int, gen: torch.Generator) -> tuple[int, int]:
    """Two different batch indices (the same one when there is only one batch)."""
    if n == 1:
        return 0, 0
    i, j = torch.randperm(n, generator=gen)[:2].tolist()
    return i, j


class _train_mode_without_dropout:  # noqa: N801 - used as a context manager
    """BatchNorm in training mode (batch statistics), dropout off, as in the authors' code."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modes = {m: m.training for m in model.modules()}

    def __enter__(self) -> None:
        self.model.train()
        for m in self.model.modules():
            if isinstance(m, (nn.modules.dropout._DropoutNd, nn.MultiheadAttention)):
                m.eval()  # nn.MultiheadAttention applies its attention dropout only in training

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes.items():
            m.training = mode
