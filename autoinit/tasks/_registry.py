"""The task registry: benchmark tasks by name, each a model factory and a data factory."""

from __future__ import annotations

import fnmatch
import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from autoinit.errors import ConfigError

__all__ = ["Task", "get_task", "list_tasks", "register_task"]


@dataclass(frozen=True)
class Task:
    """A benchmark task: where its model and data factories live and what they are called with.

    Attributes:
        name: registry key, also the stem of its study file in ``studies/``.
        model: the model factory as ``"package.module:function"``.
        data: the data factory as ``"package.module:function"``; it returns
            ``(train_loader, val_loader)``, or ``(train_loader, test_loader)`` with ``split="test"``.
        model_kwargs, data_kwargs: the keyword arguments the study file uses.
        summary: one line for ``list_tasks`` and the docs.
        fit_kwargs: options of :func:`autoinit.fit` the task needs (its own training loop,
            groups); a string with a ``:`` names a function, ``"package.module:function"``.
        report: ``"package.module:function"`` of ``report(model, held_out_batches) -> dict``,
            the task's own final evaluation (``None``: loss and accuracy).
    """

    name: str
    model: str
    data: str
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    data_kwargs: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
    report: str | None = None

    def build_model(self, **overrides: Any) -> nn.Module:
        """The model, built with the task's keyword arguments updated by ``overrides``."""
        return _resolve(self.model)(**{**self.model_kwargs, **overrides})

    def loaders(self, split: str = "val", **overrides: Any) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, val_loader)``, or ``(train_loader, test_loader)`` for ``split="test"``."""
        return _resolve(self.data)(**{**self.data_kwargs, **overrides, "split": split})

    def fit_options(self) -> dict[str, Any]:
        """:attr:`fit_kwargs` with every function reference resolved."""
        return {k: _resolve(v) if isinstance(v, str) and ":" in v else v
                for k, v in self.fit_kwargs.items()}

    def report_function(self) -> Callable[..., dict[str, Any]] | None:
        """The task's own final evaluation, resolved, or ``None``."""
        return _resolve(self.report) if self.report else None


def _resolve(ref: str) -> Callable[..., Any]:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_TASKS: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    """Add ``task`` to the registry (a duplicate name replaces the old one, with a warning)."""
    if task.name in _TASKS:
        warnings.warn(f"task {task.name!r} replaced", stacklevel=2)
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task called ``name``.

    Example:
        >>> get_task("deep_relu_mlp").model
        'autoinit.tasks.mlp:deep_relu_mlp'
    """
    if name not in _TASKS:
        raise ConfigError(f"task must be one of {sorted(_TASKS)}, got {name!r}")
    return _TASKS[name]


def list_tasks(pattern: str = "*") -> list[str]:
    """Registered task names matching the shell-style ``pattern``, sorted."""
    return sorted(n for n in _TASKS if fnmatch.fnmatchcase(n, pattern))
