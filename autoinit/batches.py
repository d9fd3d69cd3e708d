"""Batches and losses: how autoinit runs a model on the user's data.

A batch may be ``(inputs, target)`` (tuple or list), a dict with a ``target``/``y``/``label(s)``
key (the other keys are the inputs), or anything a user ``loss_fn(model, batch)`` understands.
The default loss is cross-entropy for integer targets and mean squared error for float targets;
a model whose ``forward`` takes ``labels`` and returns a ``loss`` (a Hugging Face model, given a
dict batch with ``labels``) is trained on its own loss, as its Trainer does (a causal LM's is the
shifted next-token loss; plain cross-entropy on its logits would train it to copy its input).
A ``loss_fn`` may also be ``"cross_entropy"``, ``"mse"``, or a criterion module such as
``nn.CrossEntropyLoss()`` (called as ``criterion(output, target)``).

Example:
    >>> import torch, torch.nn as nn
    >>> loss = make_loss(None)
    >>> batch = (torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0]))
    >>> loss(nn.Linear(3, 2), batch).dim()
    0
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autoinit.errors import ConfigError

__all__ = ["LossFn", "fetch_batches", "make_loss", "move_batch", "own_loss", "split_batch"]

LossFn = Callable[[nn.Module, Any], torch.Tensor]
_TARGET_KEYS = ("target", "targets", "y", "label", "labels")


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(inputs, target)`` from a tuple/list pair or a dict with a target key."""
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        key = next((k for k in _TARGET_KEYS if k in batch), None)
        if key is not None:
            rest = {k: v for k, v in batch.items() if k != key}
            return (next(iter(rest.values())) if len(rest) == 1 else rest), batch[key]
    raise ConfigError(
        "batch must be an (inputs, target) pair or a dict with one of the keys "
        f"{list(_TARGET_KEYS)}, got {_describe(batch)}; pass loss_fn(model, batch) for other formats"
    )


def _describe(batch: Any) -> str:
    if isinstance(batch, Mapping):
        return f"a dict with keys {sorted(map(str, batch))}"
    if isinstance(batch, tuple | list):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return type(batch).__name__


def _call(model: nn.Module, inputs: Any) -> torch.Tensor:
    return _prediction(model(**inputs) if isinstance(inputs, Mapping) else model(inputs))


def _prediction(out: Any) -> torch.Tensor:
    if isinstance(out, tuple | list):  # e.g. nn.LSTM returns (output, state)
        out = out[0]
    if isinstance(out, Mapping) and "logits" not in out and len(out) != 1:
        raise ConfigError(f"the model returned a dict with keys {sorted(map(str, out))} and no "
                          "'logits': autoinit cannot tell which is the prediction; pass "
                          "loss_fn(model, batch)")
    if isinstance(out, Mapping):
        out = out.get("logits", next(iter(out.values())))
    return out


def default_criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer targets, mean squared error for float targets."""
    if not isinstance(target, torch.Tensor):
        raise ConfigError(f"target must be a tensor, got {type(target).__name__}")
    if target.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        return _cross_entropy(output, target.long())
    if target.is_floating_point():
        return F.mse_loss(output, target.reshape(output.shape) if target.numel() == output.numel()
                          else target)
    raise ConfigError(f"cannot choose a loss for targets of dtype {target.dtype}; "
                      "pass loss_fn='cross_entropy', 'mse', a criterion or loss_fn(model, batch)")


def _cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over classes on the last dimension (``(B, C)``, sequence logits
    ``(B, T, C)``), or on dimension 1 as torch has them (``(B, C, d1, ...)`` against a
    ``(B, d1, ...)`` target: a segmentation's or a 1-D convolution's per-position logits)."""
    if output.dim() > 2 and target.shape != output.shape[:-1] \
            and target.shape == output.shape[:1] + output.shape[2:]:
        return F.cross_entropy(output, target)
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


_NAMED = {"cross_entropy": _cross_entropy, "mse": F.mse_loss}


def make_loss(loss_fn: str | nn.Module | LossFn | None) -> LossFn:
    """Normalize the user's ``loss_fn`` to ``loss(model, batch) -> scalar tensor``."""
    if loss_fn is None:
        criterion = default_criterion
    elif isinstance(loss_fn, str):
        if loss_fn not in _NAMED:
            raise ConfigError(f"loss_fn must be one of {sorted(_NAMED)}, a criterion or a "
                              f"callable(model, batch), got {loss_fn!r}")
        named = _NAMED[loss_fn]

        def criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return named(output, target)
    elif isinstance(loss_fn, nn.Module):
        criterion = loss_fn
    elif callable(loss_fn):
        return _checked(loss_fn)
    else:
        raise ConfigError(f"loss_fn must be a name, a criterion or a callable, got {loss_fn!r}")

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        if loss_fn is None and own_loss(model, batch):
            out = model(**batch)
            own = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
            if isinstance(own, torch.Tensor):
                return own
            return criterion(_prediction(out), batch["labels"])
        inputs, target = split_batch(batch)
        return criterion(_call(model, inputs), target)

    return _checked(loss)


def own_loss(model: nn.Module, batch: Any) -> bool:
    """Whether the default loss asks ``model`` for its own (a dict batch with ``labels`` and a
    ``forward`` that takes them); the model returning no ``loss`` falls back to the default."""
    return isinstance(batch, Mapping) and "labels" in batch and _takes_labels(type(model))


@functools.cache
def _takes_labels(cls: type) -> bool:
    """Whether a module class's ``forward`` takes ``labels`` (and so may compute its own loss)."""
    try:
        return "labels" in inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):
        return False


def _checked(loss: LossFn) -> LossFn:
    def checked(model: nn.Module, batch: Any) -> torch.Tensor:
        value = loss(model, batch)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(f"loss must be a scalar tensor, got {shape}")
        return value.reshape(())

    return checked


def move_batch(batch: Any, device: torch.device | str) -> Any:
    """``batch`` with every tensor in it moved to ``device`` (tuples, lists and dicts kept)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(move_batch(v, device) for v in batch)
    return batch


def fetch_batches(loader: Any, count: int, device: torch.device | str, what: str) -> list[Any]:
    """Up to ``count`` batches from ``loader``, moved to ``device`` once."""
    out = []
    try:
        iterator = iter(loader)
    except TypeError:
        raise ConfigError(f"{what} must be iterable (a DataLoader), got "
                          f"{type(loader).__name__}") from None
    for batch in iterator:
        out.append(move_batch(batch, device))
        if len(out) >= count:
            break
    if not out:
        raise ConfigError(f"{what} yielded no batch")
    return out
