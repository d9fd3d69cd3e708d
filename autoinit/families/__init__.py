"""Initializer families: a registry of named, seeded, in-place-free samplers.

Each family draws one block of a weight on CPU from an explicit ``torch.Generator`` and never
touches the global RNG. :mod:`autoinit.apply` splits packed weights into blocks, transposes
``(in, out)`` layouts and writes the values under ``torch.no_grad()``.

Example:
    >>> import torch
    >>> from autoinit.families import Fans, get_family
    >>> w = get_family("orthogonal").sampler(Fans((4, 4), 4, 4), scale=1.0,
    ...                                        generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
    True
"""

from autoinit.families import (  # noqa: F401  (registers the built-ins)
    _dcgan,
    _idinit,
    _mimetic,
    _structured,
    _variance,
)
from autoinit.families._bias import BIAS_RULES, GATES, bias_values, check_bias_rule, fitting_bias_rules
from autoinit.families._gains import GAINS, gain_of
from autoinit.families._registry import Family, Fans, get_family, list_families, register_family

__all__ = [
    "BIAS_RULES",
    "GAINS",
    "GATES",
    "Family",
    "Fans",
    "bias_values",
    "gain_of",
    "check_bias_rule",
    "fitting_bias_rules",
    "get_family",
    "list_families",
    "register_family",
]
