"""The model's own initialization, offered as the ``model_default`` family and baseline.

A model has its own init when a rule registered for its class says so (Hugging Face
``PreTrainedModel``: its ``_init_weights`` run through ``init_weights``, see
:mod:`autoinit.layers_hf`), or when its class, not torch, defines ``init_weights`` or
``reset_parameters`` (timm's models, hand-written ones; an ``init_weights(module)`` is applied
to every module, as ``self.apply(self.init_weights)`` does; a method needing other arguments is
no init); a wrapper holding all its parameters in one such model (a LightningModule around a
Hugging Face model) has that model's init. ``model_default`` is what that code draws: it runs
on a float32 CPU copy of the model with the global RNG seeded from the scheme, so it is
reproducible, the same whatever the model's dtype, and never touches the model itself or the
global RNG. Models without one (an
``nn.Sequential``) have no ``model_default``: PyTorch's default already is their own init.

Example:
    >>> import torch, torch.nn as nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def reset_parameters(self):
    ...         nn.init.eye_(self.fc.weight)
    >>> values = model_default_values(Net(), torch.Generator().manual_seed(0))
    >>> torch.equal(values["fc.weight"], torch.eye(4))
    True
    >>> model_init_of(nn.Sequential(nn.Linear(2, 2))) is None
    True
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable

import torch
from torch import nn

from autoinit.errors import ConfigError
from autoinit.layers import _load_provider, eager

__all__ = ["MODEL_DEFAULT", "ModelInit", "model_default_values", "model_init_of",
           "register_model_init"]

MODEL_DEFAULT = "model_default"

ModelInit = Callable[[nn.Module], None]
"""``init(model)`` initializes every parameter of ``model`` in place, drawing from the global RNG."""

_INITS: dict[type, ModelInit] = {}
_OWN_METHODS = ("init_weights", "reset_parameters")
_RULE = "init_weights"  # may be a rule taking one module, applied to every module


def register_model_init(model_type: type, init: ModelInit) -> None:
    """Use ``init(model)`` as the own init of ``model_type`` and its subclasses."""
    if not isinstance(model_type, type) or not issubclass(model_type, nn.Module):
        raise ConfigError(f"model_type must be an nn.Module subclass, got {model_type!r}")
    if model_type in _INITS:
        warnings.warn(f"model init for {model_type.__name__} replaced", stacklevel=2)
    _INITS[model_type] = init


def model_init_of(model: nn.Module) -> ModelInit | None:
    """The model's own init, or ``None`` when it has none beyond its layers' ``reset_parameters``."""
    model = eager(model)
    _load_provider(model)
    for cls in type(model).__mro__:
        if cls in _INITS:
            return _INITS[cls]
    for name in _OWN_METHODS:
        owner = next((c for c in type(model).__mro__ if name in vars(c)), None)
        if owner is not None and not owner.__module__.startswith("torch."):
            init = _method_caller(name, _required_args(getattr(model, name)), per_module=name == _RULE)
            if init is not None:
                return init
    return _wrapped_init(model)


def _wrapped_init(model: nn.Module) -> ModelInit | None:
    """The init of the one child that holds every parameter of ``model``, if it has one."""
    total = {id(p) for p in model.parameters()}
    for child_name, child in model.named_children():
        if total and {id(p) for p in child.parameters()} == total:
            init = model_init_of(child)
            if init is None:
                return None

            def wrapped(m: nn.Module, child_name: str = child_name, init: ModelInit = init
                        ) -> None:
                init(getattr(m, child_name))

            return wrapped
    return None


def _method_caller(name: str, required: int, per_module: bool) -> ModelInit | None:
    """``model.<name>()``; ``model.apply(model.<name>)`` for an ``init_weights`` taking one
    module (the ``self.apply(self.init_weights)`` pattern); ``None`` for a method needing
    arguments autoinit cannot know."""
    if required > (1 if per_module else 0):
        return None

    def init(model: nn.Module) -> None:
        method = getattr(model, name)
        if required:
            model.apply(method)
        else:
            method()

    init.__name__ = name
    return init


def _required_args(method: object) -> int:
    """How many arguments bound ``method`` requires (a static one: all of its own; 0 where it
    cannot be told)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return 0
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in params)


def model_default_values(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Every parameter of ``model`` (tied ones once) as its own init draws it from ``generator``'s
    state; the generator advances, the model and the global RNG are left as they were.

    Raises:
        ConfigError: the model has no own init.
    """
    model = eager(model)
    init = model_init_of(model)
    if init is None:
        raise ConfigError(f"{MODEL_DEFAULT!r} needs a model with its own init (a Hugging Face or "
                          f"timm model, or a class defining init_weights / reset_parameters); "
                          f"{type(model).__name__} has none")
    clone = copy.deepcopy(model).to("cpu").float()  # float64 would draw other numbers
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(generator.get_state())
        with torch.no_grad():
            init(clone)
        generator.set_state(torch.get_rng_state())
    return {name: p.detach() for name, p in clone.named_parameters()}
