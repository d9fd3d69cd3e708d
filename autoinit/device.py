"""Where trainings run: one place that picks the default device and checks a requested one.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device(None) == default_device()
    True
"""

from __future__ import annotations

import torch

from autoinit.errors import ConfigError

__all__ = ["default_device", "resolve_device"]


def default_device() -> torch.device:
    """CUDA when it is available here, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` checked (``'cpu'`` or ``'cuda[:n]'``, CUDA only where it is available), or the
    default for ``None``; a bad value is a :class:`~autoinit.errors.ConfigError` naming it."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                          f"{device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} was asked for but CUDA is not available here")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev
