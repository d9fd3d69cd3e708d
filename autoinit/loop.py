"""Your own training loop in the probe: ``train_step``, ``score`` and ``make_state``.

autoinit's probe normally trains a candidate with one optimizer on ``loss_fn(model, batch)`` and
scores it by the held-out loss. A :class:`TrainLoop` runs the user's own step instead (two
optimizers and alternating updates for a GAN, gradient clipping, a scheduler, a momentum
encoder) and may replace the held-out loss by the user's score. Everything else holds: the
batches are fetched once and replayed in the same order with the same RNG seed for every
candidate (common random numbers), the values the step returns are watched for divergence,
the curves and the selection round are the same, and the cost unit is the user's step.

The contract:

- ``make_state(model)`` returns what the step needs (optimizers, schedulers, a step counter).
  It is called at the start of every probe, so every candidate starts fresh. A
  ``make_state(model, lr)`` also gets the learning rate (needed for ``search_lr``). Default:
  the optimizer that ``optimizer`` and ``lr`` name, over the trainable parameters.
- ``train_step(model, batch, state)`` runs one step and returns ``{name: number}`` (floats or
  0-dim tensors), the same names at every step. It is called in train mode. A non-finite value,
  or a median magnitude over the last 10 steps above ``explode_factor`` (10) times the first
  value's (a brief spike is allowed), marks the candidate as diverged.
- ``score(model, val_batches)`` returns a float, lower is better. It is called in eval mode under
  ``torch.no_grad()`` with the global RNG seeded the same way at every call. Default: the mean
  of ``loss_fn`` over the held-out batches.

A step that raises, returns something other than named numbers, or adds, removes or replaces a
parameter of the model is a :class:`~autoinit.errors.ConfigError` naming the function; so is a
score that raises or is not a number.

Example:
    >>> import torch, torch.nn as nn
    >>> def make_state(model):
    ...     opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ...     return {"opt": opt, "sched": torch.optim.lr_scheduler.StepLR(opt, 10)}
    >>> def train_step(model, batch, state):
    ...     x, y = batch
    ...     state["opt"].zero_grad()
    ...     loss = nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    ...     state["opt"].step(); state["sched"].step()
    ...     return {"loss": loss.item()}
    >>> def score(model, val_batches):
    ...     return sum(nn.functional.mse_loss(model(x), y).item() for x, y in val_batches)
    >>> loop = TrainLoop(train_step, score, make_state)
    >>> net = nn.Linear(3, 1)
    >>> batch = (torch.ones(4, 3), torch.zeros(4, 1))
    >>> sorted(loop.step(net, batch, loop.start(net, "adam", 1e-3)))
    ['loss']
    >>> loop.evaluate(net, [batch], seed=0) >= 0
    True
    >>> TrainLoop("text", score)
    Traceback (most recent call last):
    ...
    autoinit.errors.ConfigError: train_step must be a function(model, batch, state), got 'text'
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autoinit.batches import LossFn
from autoinit.errors import AutoinitError, ConfigError, first_line
from autoinit.probe import ProbeConfig, ProbeData, flush_denormal, make_optimizer

__all__ = ["MakeState", "ScoreFn", "TrainLoop", "TrainStep", "make_loop", "parameter_ids",
           "preflight"]

TrainStep = Callable[[nn.Module, Any, Any], Mapping[str, float]]
ScoreFn = Callable[[nn.Module, Sequence[Any]], float]
MakeState = Callable[..., Any]

_SIGNATURES = {"train_step": "function(model, batch, state)", "score": "function(model, val_batches)",
               "make_state": "function(model) or function(model, lr)"}


def parameter_ids(model: nn.Module) -> dict[str, int]:
    """Every parameter's name with the identity of its tensor (what a step must not change)."""
    return {name: id(p) for name, p in model.named_parameters()}


@dataclass(frozen=True)
class TrainLoop:
    """The user's training step, score and state factory (see the module docstring)."""

    train_step: TrainStep
    score: ScoreFn
    make_state: MakeState | None = None

    def __post_init__(self) -> None:
        for field in ("train_step", "score", "make_state"):
            value = getattr(self, field)
            if not callable(value) and not (value is None and field == "make_state"):
                raise ConfigError(f"{field} must be a {_SIGNATURES[field]}, got {value!r}")

    def start(self, model: nn.Module, optimizer: str | Callable, lr: float) -> Any:
        """A fresh state for one probe."""
        if self.make_state is None:
            return make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad],
                                  lr)
        args = (model, lr) if _takes_two(self.make_state) else (model,)
        return _call("make_state", self.make_state, *args)

    def step(self, model: nn.Module, batch: Any, state: Any) -> dict[str, float | torch.Tensor]:
        """One checked step of the user's loop: its named values."""
        before = parameter_ids(model)
        values = _call("train_step", self.train_step, model, batch, state)
        _check_parameters(self.train_step, before, parameter_ids(model))
        return _numbers(self.train_step, values)

    def evaluate(self, model: nn.Module, val: Sequence[Any], seed: int) -> float:
        """``score(model, val)`` in eval mode, without gradients, on a freshly seeded RNG."""
        model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=_cuda(model)):
                torch.manual_seed(seed)
                value = _call("score", self.score, model, val)
        finally:
            model.train()
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"score {_name(self.score)} must return a number, got "
                              f"{_show(value)}")
        return float(value)


def _call(field: str, fn: Callable, *args: Any) -> Any:
    try:
        return fn(*args)
    except AutoinitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's function failing is bad input, named
        raise ConfigError(f"{field} {_name(fn)} raised {type(exc).__name__}: "
                          f"{first_line(exc, '(no message)')}") from exc


def _numbers(fn: Callable, values: Any) -> dict[str, float | torch.Tensor]:
    bad = f"train_step {_name(fn)} must return a non-empty dict of names to numbers, got"
    if not isinstance(values, Mapping) or not values:
        raise ConfigError(f"{bad} {_show(values)}")
    out: dict[str, float | torch.Tensor] = {}
    for key, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[str(key)] = value.detach().reshape(()).float()
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[str(key)] = float(value)
        else:
            raise ConfigError(f"{bad} {key!r}: {_show(value)}")
    return out


def _check_parameters(fn: Callable, before: dict[str, int], after: dict[str, int]) -> None:
    if before == after:
        return
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    replaced = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{what} {names[:3]}" for what, names in
             (("added", added), ("removed", removed), ("replaced", replaced)) if names]
    raise ConfigError(f"train_step {_name(fn)} changed the model's parameters ("
                      f"{'; '.join(parts)}); a step may update their values, not the set")


def make_loop(train_step: TrainStep | None, score: ScoreFn | None, make_state: MakeState | None,
              loss: LossFn | None, search_lr: bool = False) -> TrainLoop | None:
    """The loop ``fit``'s options describe; ``None`` for autoinit's own.

    ``score`` alone keeps autoinit's step (one optimizer on ``loss``) and replaces the held-out
    loss; ``train_step`` without ``score`` is scored by the held-out ``loss``.
    """
    if train_step is None and score is None and make_state is None:
        return None
    if train_step is None and make_state is not None:
        raise ConfigError(f"make_state builds the state of a train_step; pass train_step too, got "
                          f"make_state={_name(make_state)} alone")
    if score is None and loss is None:
        raise ConfigError("train_step needs score(model, val_batches) or loss_fn to score a probe")
    loop = TrainLoop(train_step or _loss_step(loss), score or _held_out(loss), make_state)
    if search_lr and make_state is not None and not _takes_two(make_state):
        raise ConfigError(f"search_lr=True needs make_state(model, lr) to build the optimizers "
                          f"with the searched rate; make_state {_name(make_state)} takes only "
                          "the model")
    return loop


def _loss_step(loss: LossFn) -> TrainStep:
    def loss_step(model: nn.Module, batch: Any, optimizer: torch.optim.Optimizer) -> dict:
        optimizer.zero_grad(set_to_none=True)
        value = loss(model, batch)
        value.backward()
        optimizer.step()
        return {"loss": value.detach()}

    return loss_step


def _held_out(loss: LossFn) -> ScoreFn:
    def held_out_loss(model: nn.Module, val: Sequence[Any]) -> float:
        return sum(float(loss(model, b)) for b in val) / len(val)

    return held_out_loss


def preflight(loop: TrainLoop, model: nn.Module, data: ProbeData, config: ProbeConfig) -> None:
    """One step and one score on a copy of ``model`` with its own weights, so that a bad
    ``train_step``, ``score`` or ``make_state`` fails before any trial, in one line."""
    scratch = copy.deepcopy(model)
    with torch.random.fork_rng(devices=_cuda(scratch)), flush_denormal():
        torch.manual_seed(config.seed)
        scratch.train()
        state = loop.start(scratch, config.optimizer, config.lr)
        values = loop.step(scratch, data.train[0], state)
        bad = {k: float(v) for k, v in values.items() if not math.isfinite(float(v))}
        if bad:
            raise ConfigError(f"train_step {_name(loop.train_step)} returned no finite value for "
                              f"{sorted(bad)} on the first batch with the model's own weights: "
                              f"{bad}")
        value = loop.evaluate(scratch, data.val, config.seed)
    if not math.isfinite(value):
        raise ConfigError(f"score {_name(loop.score)} returned {value} for the model's own "
                          "weights after one step; it must be a finite number")


def _takes_two(fn: Callable) -> bool:
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin)
        return False
    return True


def _cuda(model: nn.Module) -> list[torch.device]:
    return sorted({p.device for p in model.parameters() if p.device.type == "cuda"}, key=str)


def _name(fn: Callable) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{name!r}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
