"""Exceptions raised by autoinit: one root, each message states the rule and the value received."""

from __future__ import annotations

__all__ = ["AutoinitError", "ConfigError", "MissingDependency", "SchemeError"]


class AutoinitError(Exception):
    """Root of every error autoinit raises on purpose."""


class ConfigError(AutoinitError, ValueError):
    """An argument, option or input has a value autoinit cannot use.

    Example:
        >>> raise ConfigError("n_trials must be a positive integer, got -3")
        Traceback (most recent call last):
        ...
        autoinit.errors.ConfigError: n_trials must be a positive integer, got -3
    """


class SchemeError(AutoinitError, ValueError):
    """A scheme file is malformed, or a scheme does not match the model it is applied to."""


class MissingDependency(AutoinitError, ImportError):
    """An optional library an integration needs is not installed; the message names the extra.

    Example:
        >>> raise MissingDependency("lightning is not installed; "
        ...                         "pip install 'torch-autoinit[lightning]'")
        Traceback (most recent call last):
        ...
        autoinit.errors.MissingDependency: lightning is not installed; pip install 'torch-autoinit[lightning]'
    """
