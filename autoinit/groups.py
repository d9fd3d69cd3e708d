"""Grouping: which parameters share one initialization choice during a search.

Modes: ``"role"`` (default; layers of the same role and kind share a choice, so a 100-layer net
has a handful of groups), ``"layer"`` (every layer its own group), ``"global"`` (one choice for
all weights, one for all norms), or a mapping ``{group_name: regex}`` matched with ``re.match``
against full parameter names, first match winning. Groups are data, not code.

Example:
    >>> import torch.nn as nn
    >>> from autoinit.roles import describe_model
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> g = group_layers(describe_model(net), "role")
    >>> {name: [l.name for l in ls] for name, ls in g.groups.items()}["hidden.linear"]
    ['2.weight', '2.bias']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from autoinit.errors import ConfigError
from autoinit.families import get_family, list_families
from autoinit.roles import Layer

__all__ = ["GROUP_MODES", "Grouping", "fitting_families", "group_layers"]

GROUP_MODES = ("role", "layer", "global")
GroupSpec = str | Mapping[str, str]


@dataclass(frozen=True)
class Grouping:
    """Groups of layers (parameters) in model order, and the names no group matched."""

    groups: dict[str, list[Layer]]
    unmatched: list[str]

    def nonlinearity(self, group: str) -> str:
        """The most common activation after the group's weights."""
        acts = Counter(lay.nonlinearity for lay in self.groups[group] if lay.param_type == "weight")
        return acts.most_common(1)[0][0] if acts else "linear"


def group_layers(layers: list[Layer], groups: GroupSpec = "role") -> Grouping:
    """Split ``layers`` into named groups under ``groups`` (a mode or regex patterns)."""
    if isinstance(groups, Mapping):
        return _by_patterns(layers, groups)
    if groups not in GROUP_MODES:
        raise ConfigError(
            f"groups must be one of {list(GROUP_MODES)} or a {{name: regex}} mapping, got {groups!r}"
        )
    key = {"role": _role_key, "layer": _layer_key(layers), "global": _global_key}[groups]
    out: dict[str, list[Layer]] = {}
    for lay in layers:
        out.setdefault(key(lay), []).append(lay)
    return Grouping(out, [])


def _role_key(lay: Layer) -> str:
    return lay.role if lay.role in ("norm", "embedding") else f"{lay.role}.{lay.kind}"


def _global_key(lay: Layer) -> str:
    return "norm" if lay.kind == "norm" else "global"


def _layer_key(layers: list[Layer]) -> Callable[[Layer], str]:
    roles: dict[str, set[str]] = {}
    for lay in layers:
        roles.setdefault(lay.module_name, set()).add(lay.role)

    def key(lay: Layer) -> str:
        name = lay.module_name or "<model>"
        return f"{name}:{lay.role}" if len(roles[lay.module_name]) > 1 else name

    return key


def _by_patterns(layers: list[Layer], patterns: Mapping[str, str]) -> Grouping:
    compiled = {}
    for name, pattern in patterns.items():
        try:
            compiled[name] = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise ConfigError(f"groups[{name!r}] must be a regular expression, got {pattern!r}: "
                              f"{exc}") from None
    out: dict[str, list[Layer]] = {name: [] for name in compiled}
    unmatched = []
    for lay in layers:
        group = next((g for g, p in compiled.items() if p.match(lay.name)), None)
        if group is None:
            unmatched.append(lay.name)
        else:
            out[group].append(lay)
    return Grouping({k: v for k, v in out.items() if v}, unmatched)


def fitting_families(layers: list[Layer], allowed: list[str] | None = None) -> list[str]:
    """Families that fit every weight (or norm gamma) in ``layers``, their kinds, roles and
    packed blocks, in ``allowed``'s order."""
    names = allowed if allowed is not None else list_families()
    targets = {(lay.param_type, lay.kind, lay.role, lay.blocks) for lay in layers
               if lay.param_type.endswith("weight")}
    return [n for n in names if all(get_family(n).fits(*target) for target in targets)]
