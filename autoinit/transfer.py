"""``transfer_scheme``: carry a scheme made for one model over to a wider or deeper one, by group.

A scheme searched on a small proxy of a model (the same factory with smaller width and depth)
names role groups (``hidden.linear``, ``residual_out.linear``, ``head.linear``, ...) whose rules
are relative: a family's standard deviation follows each layer's own fan-in and fan-out, and a
depth factor ``L**α`` follows the model's residual depth ``L``. So a rule means the same thing on
the full model, and transferring it is re-planning the target with the scheme's grouping and
giving each target group the rule of the scheme group of the same name. The target's depth is
the target's own (its plan's ``L``), and the weights are drawn from the scheme's seed, so the
same scheme and model give the same weights every time.

The contract: every scheme group must have a counterpart in the target and every target group a
rule in the scheme, else a one-line :class:`~autoinit.errors.SchemeError` names the groups. To
keep some of the target's parameters as they are, leave them out with ``only``/``exclude`` (the
same selection a search takes); a target group the scheme does not cover is never silently left
at its old values. Layer-level groups (``groups="layer"``, and the LSUV baseline's per-layer
calibration) name single layers and cannot transfer across depths: they are refused.

Example:
    >>> import torch.nn as nn
    >>> from autoinit.apply import apply_scheme
    >>> from autoinit.plan import uniform_scheme
    >>> def mlp(width, depth):
    ...     return nn.Sequential(nn.Linear(4, width), nn.ReLU(),
    ...                          *[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())],
    ...                          nn.Linear(width, 2))
    >>> small = uniform_scheme(mlp(8, 2), "kaiming_normal", seed=3)
    >>> moved = transfer_scheme(small, mlp(64, 6))
    >>> [(g.group, g.source_parameters, g.target_parameters) for g in moved.groups]
    [('input.linear', 2, 2), ('hidden.linear', 4, 12), ('head.linear', 2, 2)]
    >>> _ = apply_scheme(mlp(64, 6), moved.scheme)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from torch import nn

from autoinit.errors import SchemeError
from autoinit.groups import GROUP_MODES, GroupSpec
from autoinit.plan import ModelPlan
from autoinit.roles import ROLES
from autoinit.scheme import InitScheme

__all__ = ["GroupMap", "Transfer", "check_transferable", "refuse_layer_groups", "transfer_scheme"]


@dataclass(frozen=True)
class GroupMap:
    """One group carried over: its name and its parameter count in the source and the target."""

    group: str
    source_parameters: int
    target_parameters: int


@dataclass(frozen=True)
class Transfer:
    """A transferred scheme and the record of how its groups mapped.

    Attributes:
        scheme: the scheme for the target model (its parameters, members and depth).
        groups: every group, in the target's order, with its parameter counts.
        grouping: how the groups were matched: ``"role"``, ``"global"`` or ``"patterns"``.
        source_depth, target_depth: ``L`` of the scheme and of the target.
    """

    scheme: InitScheme
    groups: tuple[GroupMap, ...]
    grouping: str
    source_depth: int
    target_depth: int

    def describe(self) -> str:
        """One line: the groups that mapped and the depths."""
        parts = [f"{g.group} {g.source_parameters} -> {g.target_parameters}"
                 for g in sorted(self.groups, key=lambda g: g.group)]
        if parts:
            parts[0] += " parameters"
        return (f"transferred {len(self.groups)} groups by {self.grouping} (depth "
                f"{self.source_depth} -> {self.target_depth}): {', '.join(parts)}")


def transfer_scheme(
    scheme: InitScheme,
    model: nn.Module,
    *,
    groups: GroupSpec | None = None,
    only: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
    include_frozen: bool = False,
) -> Transfer:
    """The scheme for ``model`` that gives each of its groups the rule of ``scheme``'s group of
    the same name (see the module's docstring for the contract).

    Args:
        scheme: a scheme made with ``"role"`` or ``"global"`` groups, or with ``{name: regex}``
            patterns (then pass the same patterns as ``groups``).
        model: the target; its own depth ``L`` sets the rules' depth factors.
        groups: the grouping the scheme was made with; default: read from its group names
            (``"role"`` or ``"global"``).
        only, exclude, include_frozen: the parameters of ``model`` to initialize, as in a search;
            the others keep their values.

    Raises:
        SchemeError: layer-level groups; a scheme group with no counterpart in ``model``; a group
            of ``model`` with no rule in the scheme; a depth exponent on a model without residual
            branches.
    """
    mode = _grouping(scheme) if groups is None else groups
    refuse_layer_groups(mode)
    plan = ModelPlan.of(model, mode, only=only, exclude=exclude, include_frozen=include_frozen)
    check_transferable(scheme.groups, plan)
    for name, rule in scheme.groups.items():
        if rule.depth_exponent and not plan.depth:
            raise SchemeError(f"group {name!r} has depth exponent {rule.depth_exponent:g} but "
                              f"{plan.model_class} has no residual branch (depth L = 0)")
    target = plan.scheme({name: scheme.groups[name] for name in plan.grouping.groups}, scheme.seed)
    target = replace(target, origin=_origin(scheme))
    record = tuple(GroupMap(name, len(scheme.groups[name].members), len(target.groups[name].members))
                   for name in plan.grouping.groups)
    return Transfer(target, record, mode if isinstance(mode, str) else "patterns", scheme.depth,
                    plan.depth)


def check_transferable(source_groups: Iterable[str], target: ModelPlan, source: str = "scheme"
                       ) -> None:
    """Raise :class:`SchemeError` unless ``source_groups`` (of the ``source``: the scheme, the
    proxy) and ``target``'s groups are the same names; one line names the groups without
    counterpart, each way."""
    names, have = set(source_groups), set(target.grouping.groups)
    if missing := sorted(names - have):
        raise SchemeError(f"{source} groups {missing} have no counterpart in {target.model_class}, "
                          f"whose groups are {sorted(have)}")
    if uncovered := sorted(have - names):
        raise SchemeError(f"groups {uncovered} of {target.model_class} have no counterpart in the "
                          f"{source}; leave their parameters out (exclude=...) to keep their values")


def refuse_layer_groups(groups: GroupSpec) -> None:
    """Raise :class:`SchemeError` for ``groups="layer"``, which cannot transfer across depths."""
    if groups == "layer":
        raise SchemeError("groups='layer' gives every layer its own rule, which cannot transfer "
                          "to a model of another depth; search the proxy with groups='role'")


def _grouping(scheme: InitScheme) -> str:
    """``"role"`` or ``"global"``, read from the scheme's group names; layer-level groups and
    unnamed patterns are refused."""
    names = set(scheme.groups)
    if "global" in names and names <= {"global", "norm"}:
        return "global"
    if all(_role_key(name) for name in names):
        return "role"
    if all(_layer_group(name, rule.members) for name, rule in scheme.groups.items()):
        refuse_layer_groups("layer")
    raise SchemeError(f"scheme groups {sorted(names)[:8]} are neither role nor global groups; "
                      f"pass groups={{name: regex}} with the patterns the scheme was made with "
                      f"(modes: {list(GROUP_MODES)})")


def _role_key(name: str) -> bool:
    role, _, kind = name.partition(".")
    return name in ("norm", "embedding") or (role in ROLES and bool(kind))


def _layer_group(name: str, members: tuple[str, ...]) -> bool:
    module = name.split(":")[0].replace("<model>", "")
    return all(member.rpartition(".")[0] == module for member in members)


def _origin(scheme: InitScheme) -> str:
    made_for = scheme.model_class or "another model"
    what = scheme.origin or "a scheme"
    return f"{what}, transferred from {made_for} by group"
