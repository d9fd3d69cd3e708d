"""The user's code a study file names: ``"package.module:function"`` or ``"path/file.py:function"``
references imported (never before they are needed), factories called with their kwargs, and
every failure a one-line :class:`~autoinit.errors.StudyFileError` naming the key.

Example:
    >>> resolve_callable("autoinit.tasks.mlp:deep_relu_mlp", "model.factory").__name__
    'deep_relu_mlp'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from autoinit.errors import AutoinitError, StudyFileError, first_line

__all__ = ["make_data", "make_model", "resolve_callable", "resolve_loss"]


def resolve_callable(ref: str, key: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """The object ``ref`` names: ``"package.module:attr"`` (imported with the current folder on
    the path) or ``"path/to/file.py:attr"`` (relative to ``base_dir``). Errors name ``key``."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise StudyFileError(f"{key} must be 'package.module:function', got {ref!r}")
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(base_dir or Path.cwd()) / module_name)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except FileNotFoundError as exc:
        raise StudyFileError(f"{key}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure while importing user code is bad input
        raise StudyFileError(f"{key}: cannot import {module_name!r}: "
                             f"{type(exc).__name__}: {first_line(exc, '(no message)')}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise StudyFileError(f"{key}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise StudyFileError(f"{key}: {ref!r} is a {type(obj).__name__}, not a callable")
    return obj


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"no file {str(path)!r}")
    name = f"autoinit_user_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _call(section: str, ref: str, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as exc:
        raise StudyFileError(f"{section}.kwargs do not fit {ref!r}: {exc}") from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass
    try:
        return fn(**kwargs)
    except AutoinitError as exc:
        raise StudyFileError(f"{section}.factory {ref!r} failed: {first_line(exc, '(no message)')}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's factory failing is bad input, not ours
        raise StudyFileError(f"{section}.factory {ref!r} raised {type(exc).__name__}: "
                             f"{first_line(exc, '(no message)')}") from exc


def make_model(ref: str, kwargs: Mapping[str, Any], base_dir: Path | None = None,
               seed: int | None = None) -> nn.Module:
    """Call the model factory ``ref`` with ``kwargs``; anything but an ``nn.Module`` is an error.
    With ``seed`` the global RNG is seeded for the call (the model's default init is then
    reproducible) and the caller's RNG state is left as it was."""
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = _call("model", ref, resolve_callable(ref, "model.factory", base_dir), kwargs)
    if not isinstance(model, nn.Module):
        raise StudyFileError(f"model.factory {ref!r} must return a torch.nn.Module, got "
                             f"{type(model).__name__}")
    return model


def make_data(ref: str, kwargs: Mapping[str, Any], base_dir: Path | None = None,
              split: str | None = None) -> tuple[Iterable[Any], Iterable[Any] | None]:
    """``(train_loader, val_loader or None)`` from the data factory ``ref``; ``split="test"``
    asks the factory for its test split (it must take a ``split`` argument)."""
    kwargs = dict(kwargs)
    if split is not None:
        kwargs["split"] = split
    out = _call("data", ref, resolve_callable(ref, "data.factory", base_dir), kwargs)
    if isinstance(out, tuple | list) and len(out) in (1, 2) and not _is_batch(out):
        train, val = out[0], (out[1] if len(out) == 2 else None)
    else:
        train, val = out, None
    for what, loader in (("training loader", train), ("validation loader", val)):
        if loader is not None and not hasattr(loader, "__iter__"):
            raise StudyFileError(f"data.factory {ref!r} must return a training loader or "
                                 f"(train_loader, val_loader); its {what} is a "
                                 f"{type(loader).__name__}")
    return train, val


def _is_batch(out: Sequence[Any]) -> bool:
    """A pair of tensors is a batch, not two loaders."""
    return any(isinstance(v, torch.Tensor) for v in out)


def resolve_loss(loss: str | None, base_dir: Path | None = None) -> str | Callable[..., Any] | None:
    """``None``, a loss name, or the callable a ``module:function`` reference names (a criterion
    class is instantiated)."""
    if loss is None or ":" not in loss:
        return loss
    obj = resolve_callable(loss, "train.loss", base_dir)
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        obj = obj()
    return obj
