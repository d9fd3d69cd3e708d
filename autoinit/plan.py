"""``ModelPlan``: a model's initializable layers and groups, and schemes built from them.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> plan = ModelPlan.of(net)
    >>> sorted(plan.grouping.groups)
    ['head.linear', 'input.linear']
    >>> plan.uniform("kaiming_normal").groups["input.linear"].nonlinearity
    'relu'
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from autoinit.apply import model_parameters
from autoinit.errors import ConfigError
from autoinit.families import get_family
from autoinit.groups import Grouping, GroupSpec, fitting_families, group_layers
from autoinit.layers import eager
from autoinit.model_init import model_init_of
from autoinit.roles import Layer, describe_model
from autoinit.scheme import GroupRule, InitScheme, current_versions

__all__ = ["BRANCH_OUTPUTS", "ModelPlan", "uniform_scheme"]

BRANCH_OUTPUTS = ("residual_out", "attn_out")  # the roles whose layers end a residual branch
_GAINS = ("weight", "norm_weight")  # what a branch's last layer scales its output by


@dataclass(frozen=True)
class ModelPlan:
    """What a search over one model works with: layers with roles, their groups, the shapes."""

    layers: list[Layer]
    grouping: Grouping
    parameters: dict[str, tuple[int, ...]]
    model_class: str
    select: dict = field(default_factory=dict)  # the only / exclude / include_frozen it was made with
    model_init: bool = False  # the model has its own init (the model_default family fits it)

    @property
    def depth(self) -> int:
        """``L``: the residual branches the role pass found (layers ending one, each as often as
        the forward runs it: a block applied three times, ALBERT's sharing, is three), 0 for none."""
        return sum({lay.module_name: lay.calls for lay in self.layers
                    if lay.role in BRANCH_OUTPUTS and lay.param_type in _GAINS}.values())

    @property
    def branch_layers(self) -> int:
        """``m``: the most common number of layers with weights per residual branch (0: unknown)."""
        sizes = Counter(lay.branch_layers for lay in self.layers
                        if lay.role == "residual_out" and lay.param_type in _GAINS
                        and lay.branch_layers)
        return sizes.most_common(1)[0][0] if sizes else 0

    def roles(self, group: str) -> set[str]:
        """The roles of ``group``'s weights; in a group without weights, of its norm gains (a
        group mixing weights and norms scales only its weights, :func:`~autoinit.apply.apply_scheme`)."""
        layers = self.grouping.groups[group]
        gain = "weight" if any(lay.param_type == "weight" for lay in layers) else "norm_weight"
        return {lay.role for lay in layers if lay.param_type == gain}

    def is_norm(self, group: str) -> bool:
        """Whether ``group`` holds only norm layers (gains and shifts, no weight)."""
        return all(lay.kind == "norm" for lay in self.grouping.groups[group])

    @classmethod
    def of(
        cls,
        model: nn.Module,
        groups: GroupSpec = "role",
        *,
        only: Iterable[str] | str | None = None,
        exclude: Iterable[str] | str | None = None,
        include_frozen: bool = False,
    ) -> ModelPlan:
        model = eager(model)  # a compiled model is planned as the module it wraps
        layers = describe_model(model, only=only, exclude=exclude, include_frozen=include_frozen)
        if not layers:
            raise ConfigError(
                f"model {type(model).__name__} has no parameter to initialize (all frozen, "
                "excluded or absent); pass include_frozen=True or loosen only=/exclude="
            )
        grouping = group_layers(layers, groups)
        if not grouping.groups:  # every parameter would keep its value: no scheme differs
            names = [lay.name for lay in layers]
            raise ConfigError(f"groups={groups!r} match none of the model's parameters "
                              f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}): "
                              "nothing to initialize")
        if grouping.unmatched:
            warnings.warn(f"{len(grouping.unmatched)} parameters match no group and keep their "
                          f"values: {', '.join(grouping.unmatched[:10])}", stacklevel=2)
        return cls(layers, grouping, model_parameters(model),
                   type(model).__name__,
                   {"only": only, "exclude": exclude, "include_frozen": include_frozen},
                   model_init_of(model) is not None)

    def families_for(self, group: str, allowed: list[str] | None = None) -> list[str]:
        """Families that fit every parameter of ``group``."""
        return fitting_families(self.grouping.groups[group], allowed)

    def scheme(self, rules: Mapping[str, GroupRule], seed: int = 0) -> InitScheme:
        """A scheme giving each group its rule (members are filled in from the grouping)."""
        unknown = sorted(set(rules) - set(self.grouping.groups))
        if unknown:
            raise ConfigError(f"rules name unknown groups {unknown}; groups are "
                              f"{sorted(self.grouping.groups)}")
        groups = {
            name: replace(rule, members=tuple(lay.name for lay in self.grouping.groups[name]))
            for name, rule in rules.items()
        }
        return InitScheme(groups, seed=seed, parameters=self.parameters,
                          model_class=self.model_class, depth=self.depth, **current_versions())

    def rule(self, group: str, family: str, scale: float = 1.0, **kw: Any) -> GroupRule:
        """A rule for ``group`` with the family's default bias and the group's activation."""
        fam = get_family(family)
        return GroupRule(family, scale=scale, bias=kw.pop("bias", fam.default_bias),
                         bias_value=kw.pop("bias_value", _default_bias_value(fam.default_bias)),
                         nonlinearity=kw.pop("nonlinearity", self.grouping.nonlinearity(group)),
                         options=kw.pop("options", {}), **kw)

    def uniform(self, family: str, scale: float = 1.0, seed: int = 0) -> InitScheme:
        """``family`` for every group it fits; PyTorch's default for the others (norms, say)."""
        get_family(family)
        rules = {}
        for group in self.grouping.groups:
            name = family if family in self.families_for(group) else "pytorch_default"
            rules[group] = self.rule(group, name, scale if name == family else 1.0)
        return self.scheme(rules, seed)


def _default_bias_value(rule: str) -> float:
    return {"normal": 0.001, "forget_gate": 1.0}.get(rule, 0.0)


def uniform_scheme(model: nn.Module, family: str, *, scale: float = 1.0, seed: int = 0,
                   groups: GroupSpec = "role") -> InitScheme:
    """The scheme that applies ``family`` everywhere it fits (see :meth:`ModelPlan.uniform`)."""
    return ModelPlan.of(model, groups).uniform(family, scale, seed)
