"""The probe's learning-rate cooldown: its last steps anneal the rate linearly towards 0.

A probe trained at a constant rate is scored on a loss that still carries the rate's noise, and
inits whose losses fall fast early but stay noisy rank first (the short-horizon bias, Wu et al.
2018). Ending each probe with a short linear decay (as the warmup-stable-decay schedules do)
scores the annealed loss instead. It is off by default (``cooldown=0``,
:data:`~autoinit.settings.DEFAULTS`): on the benchmark tasks a 0.15 cooldown ranked inits worse
than the constant rate (docs/probe_ranking.md). Over the last ``k = round(fraction * steps)``
steps, step ``i`` of the cooldown (``1..k``) runs at ``lr * (k + 1 - i) / (k + 1)``: the rate
falls on a line that reaches 0 one step after the probe ends, so the last step runs at
``lr / (k + 1)``.

The rate is scaled in every param group of every optimizer the loop's state holds (an optimizer,
or one found in a dict, list, tuple or attribute of the state) around each step, and put back
after it. A step whose own scheduler changed a scaled rate gets that change carried over
(``new / factor``): the chainable form every ``torch.optim.lr_scheduler`` uses by default.

Example:
    >>> import torch
    >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    >>> [round(cooldown_factor(s, steps=10, length=3), 2) for s in range(7, 11)]
    [1.0, 0.75, 0.5, 0.25]
    >>> with scaled_lr([opt], 0.25):
    ...     round(opt.param_groups[0]["lr"], 3)
    0.025
    >>> opt.param_groups[0]["lr"]
    0.1
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch

__all__ = ["cooldown_factor", "cooldown_length", "find_optimizers", "scaled_lr"]


def cooldown_length(steps: int, fraction: float) -> int:
    """How many of ``steps`` cool down (0: none)."""
    return round(fraction * steps)


def cooldown_factor(step: int, steps: int, length: int) -> float:
    """The factor on the rate of ``step`` (1-based) in a probe of ``steps`` ending in a cooldown
    of ``length`` steps."""
    into = step - (steps - length)
    return 1.0 if into <= 0 else (length + 1 - into) / (length + 1)


def find_optimizers(state: Any, depth: int = 3) -> list[torch.optim.Optimizer]:
    """Every optimizer in a training loop's state (itself, or in its dicts, lists, tuples and
    attributes, ``depth`` levels down), each once."""
    found: dict[int, torch.optim.Optimizer] = {}

    def walk(item: Any, level: int) -> None:
        if isinstance(item, torch.optim.Optimizer):
            found.setdefault(id(item), item)
            return
        if level == 0 or isinstance(item, str | bytes | torch.Tensor | torch.nn.Module):
            return
        if isinstance(item, Mapping):
            children = list(item.values())
        elif isinstance(item, list | tuple | set):
            children = list(item)
        else:
            children = list(getattr(item, "__dict__", {}).values())
        for child in children:
            walk(child, level - 1)

    walk(state, depth)
    return list(found.values())


@contextlib.contextmanager
def scaled_lr(optimizers: list[torch.optim.Optimizer], factor: float) -> Iterator[None]:
    """Every param group's rate times ``factor`` (> 0) inside, put back on exit (with a change
    the step's own scheduler made carried over)."""
    if factor == 1.0 or not optimizers:
        yield
        return
    groups = [g for opt in optimizers for g in opt.param_groups]
    before = [g["lr"] for g in groups]
    scaled = [lr * factor for lr in before]
    for g, lr in zip(groups, scaled, strict=True):
        g["lr"] = lr
    try:
        yield
    finally:
        for g, lr, was in zip(groups, before, scaled, strict=True):
            g["lr"] = lr if bool(g["lr"] == was) else g["lr"] / factor
