"""The family registry: names to initializer functions, with the parameter kinds each one fits."""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from autoinit.errors import ConfigError

__all__ = ["Family", "Fans", "get_family", "list_families", "register_family"]


@dataclass(frozen=True)
class Fans:
    """What a family needs to know about one block of a parameter.

    ``shape`` is the block in torch's canonical ``(out, in, *kernel)`` layout; ``fan_in`` and
    ``fan_out`` are already right for the layer kind; ``gain`` is the following activation's gain.
    A parameter that packs several blocks (a recurrent layer's gates, attention's q, k, v) is
    drawn block by block, in order, from one generator: ``block`` is this one's index among
    ``blocks``.
    """

    shape: tuple[int, ...]
    fan_in: int
    fan_out: int
    gain: float = 1.0
    block: int = 0
    blocks: int = 1


Sampler = Callable[..., torch.Tensor]
"""``sampler(fans, *, scale, generator, **options) -> Tensor`` of shape ``fans.shape``, on CPU."""


@dataclass(frozen=True)
class Family:
    """A named initializer.

    Attributes:
        name: registry key, e.g. ``"kaiming_normal"``.
        sampler: draws one block (see :data:`Sampler`); ``None`` for module-level families
            (``pytorch_default``), which :mod:`autoinit.apply` handles itself.
        targets: the parameter types it may initialize (``"weight"``, ``"norm_weight"``).
        embeddings: whether it may initialize an embedding table.
        kinds: the layer kinds it fits (``"mha"``, ``"lstm"``, ...); ``None``: any kind.
        roles: the roles it fits (``"attn_qkv"``, ...; see :mod:`autoinit.roles`); ``None``: any.
        blocks: the packed blocks a weight must have (mimetic: q, k, v, 3); ``None``: any.
        default_bias: the bias rule used when a scheme names none.
        options: allowed option names with their default values.
        summary: one line for ``list_families`` and the docs.
    """

    name: str
    sampler: Sampler | None
    targets: frozenset[str] = frozenset({"weight"})
    embeddings: bool = True
    kinds: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    blocks: int | None = None
    default_bias: str = "zeros"
    options: dict[str, float | str] = field(default_factory=dict)
    summary: str = ""

    def fits(self, param_type: str, kind: str, role: str | None = None,
             blocks: int | None = None) -> bool:
        """Whether this family may initialize a parameter of ``param_type`` in a ``kind`` layer
        (and, when ``role`` or ``blocks`` is given, in that role, packing that many blocks)."""
        if param_type not in self.targets or (kind == "embedding" and not self.embeddings):
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        if blocks is not None and self.blocks is not None and blocks != self.blocks:
            return False
        return role is None or self.roles is None or role in self.roles


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to the registry (a duplicate name replaces the old one, with a warning).

    Example:
        >>> import torch
        >>> from autoinit.families import Family, register_family
        >>> def ones(fans, *, scale, generator):
        ...     return torch.full(fans.shape, scale)
        >>> _ = register_family(Family("my_ones", ones, summary="all weights equal scale"))
        >>> "my_ones" in list_families()
        True
    """
    if not family.name.isidentifier():
        raise ConfigError(f"family name must be an identifier, got {family.name!r}")
    if family.name in _FAMILIES:
        warnings.warn(f"family {family.name!r} was registered already; replacing it", stacklevel=2)
    _FAMILIES[family.name] = family
    return family


def list_families(pattern: str = "*") -> list[str]:
    """Registered family names matching a shell-style ``pattern``, sorted.

    Example:
        >>> list_families("kaiming*")
        ['kaiming_normal', 'kaiming_uniform']
    """
    return sorted(name for name in _FAMILIES if fnmatch.fnmatchcase(name, pattern))


def get_family(name: str) -> Family:
    """The family called ``name``; a :class:`ConfigError` lists the known names otherwise."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown family {name!r}; known families: {', '.join(list_families())}"
        ) from None
