"""Helpers shared by the baselines: local seeding, the not-applicable record, timing, RNN check."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

LossFn = Callable[[nn.Module, object], torch.Tensor]

_RECURRENT = (nn.RNNBase, nn.RNNCellBase)


@contextlib.contextmanager
def local_rng(seed: int) -> Iterator[None]:
    """Seed torch's RNGs for the block and give the caller's RNG state back afterwards."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def not_applicable(method: str, reason: str) -> dict:
    """The record of a method that left the model at PyTorch's default."""
    return {"method": method, "applies": False, "reason": reason}


def recurrent_modules(model: nn.Module) -> list[str]:
    """Names of the RNN/LSTM/GRU modules (and cells) in ``model``."""
    return [name or type(m).__name__ for name, m in model.named_modules() if isinstance(m, _RECURRENT)]


def check_budget(budget: int | None, default: int) -> int:
    """``budget`` iterations, or ``default`` when ``None``; must be a positive int."""
    if budget is None:
        return default
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int or None, got {budget!r}")
    return budget


def check_batches(batches: list) -> None:
    if not isinstance(batches, (list, tuple)) or not batches:
        raise ValueError(f"batches must be a non-empty list of (x, y) batches, got {type(batches).__name__}"
                         f" of length {len(batches) if hasattr(batches, '__len__') else '?'}")


@contextlib.contextmanager
def restore_on_error(model: nn.Module) -> Iterator[None]:
    """Put the parameters and buffers back when the block raises (a wrapped package failed midway)."""
    saved = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    try:
        yield
    except BaseException:
        with torch.no_grad():
            for k, v in model.state_dict(keep_vars=True).items():
                v.copy_(saved[k])
        raise


@contextlib.contextmanager
def double_backward_attention() -> Iterator[None]:
    """Scaled-dot-product attention through its math kernel, the one with a double backward."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def no_double_backward(exc: BaseException) -> bool:
    """Whether ``exc`` says an operation of the model has no second derivative."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("derivative for" in text or "double backward" in text
                                              or "twice differentiable" in text)


class Timer:
    """Wall seconds since construction (``perf_counter``)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def model_input(batch: object) -> torch.Tensor:
    """The ``x`` of an ``(x, y)`` batch (or the batch itself when it is a tensor)."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (list, tuple)) and batch:
        return batch[0]
    raise TypeError(f"a batch must be an (x, y) pair or a tensor, got {type(batch).__name__}")
