"""The search space: the only module that calls ``trial.suggest_*``.

Per group: the family (categorical, only families that fit the group), a log-scale multiplier
around the family's own gain (embeddings: down to 1e-4, SmallInitEmb's scale), the bias rule and
its value (norm groups: gamma and beta), and optionally the learning rate. Conditional,
define-by-run parameters named ``<group>.family``, ``<group>.scale``, ``<group>.bias``,
``<group>.bias_value`` and ``lr``. Where the role exists, two more:

- ``<group>.multiplier`` in ``[0, 2]`` (linear, so exactly 0 is a point of the space) on a
  branch output (``residual_out``, ``attn_out``), the readout (``head``) and the query part of an
  attention input projection (``attn_qkv``): Fixup, SkipInit, ReZero, μP's zero readout;
- ``<group>.depth_exponent`` ``α ∈ {-1/2, -1/4, 0}``, a factor ``L**α`` with ``L`` the model's
  residual branches (:attr:`ModelPlan.depth`), on the layers inside residual branches (only the
  value part of ``attn_qkv``): GPT-2's ``1/sqrt(2·layers)``, T-Fixup, Fixup. A model without
  residual branches has no depth dimension.

Example:
    >>> import optuna, torch.nn as nn
    >>> from autoinit.plan import ModelPlan
    >>> plan = ModelPlan.of(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    >>> space = SearchSpace()
    >>> trial = optuna.trial.FixedTrial(baseline_params(plan, space, "orthogonal"))
    >>> scheme, lr = suggest_scheme(trial, plan, space, lr=1e-3)
    >>> scheme.groups["input.linear"].family, lr
    ('orthogonal', 0.001)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna

from autoinit.errors import ConfigError
from autoinit.families import get_family, list_families
from autoinit.model_init import MODEL_DEFAULT
from autoinit.plan import ModelPlan
from autoinit.scheme import InitScheme

__all__ = ["BASELINES", "DEPTH_EXPONENTS", "SearchSpace", "baseline_names", "baseline_params",
           "distributions", "has_depth", "multiplier_part", "suggest_scheme"]

BASELINES = ("pytorch_default", "xavier_normal", "kaiming_normal", "lecun_normal", "orthogonal")
_NORM_FAMILIES = ("pytorch_default", "constant", "zeros", "gamma_normal")
# A baseline's family for norm gammas, where it has its own: DCGAN draws them from N(1, 0.02²).
_NORM_RULE = {"dcgan": "gamma_normal"}
_CONV_KINDS = {"conv", "conv_transpose"}
_MULTIPLIED = {"residual_out", "attn_out", "head"}  # roles whose whole weight takes the multiplier
_IN_BRANCH = {"hidden", "residual_out", "attn_qkv", "attn_out"}  # roles that take L**α
DEPTH_EXPONENTS = (-0.5, 0.0)  # the exponent's range, searched in steps of 1/4


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the search.

    Attributes:
        families: candidate family names (``None``: every registered family).
        scale_range: multiplier range, searched on a log scale.
        bias_range: range of a constant bias offset.
        multiplier_range: range of the branch-output multiplier (linear; must start at 0).
        embedding_scale_low: the lowest scale of an embedding group.
        t_max_range: the range of chrono's ``T_max`` (recurrent gate biases), searched on a log
            scale.
        t_max: the ``T_max`` of the ``chrono`` preset: the longest dependency the data holds,
            about the sequence length (Tallec & Ollivier 2018).
        lr_factor: with ``search_lr``, the learning rate is searched in ``[lr/f, lr*f]``.
        search_lr: search the learning rate jointly with the initialization.
    """

    families: tuple[str, ...] | None = None
    scale_range: tuple[float, float] = (0.25, 4.0)
    bias_range: tuple[float, float] = (-0.1, 0.3)
    multiplier_range: tuple[float, float] = (0.0, 2.0)
    embedding_scale_low: float = 1e-4
    t_max_range: tuple[float, float] = (3.0, 1000.0)
    t_max: float = 100.0
    lr_factor: float = 10.0
    search_lr: bool = False

    def __post_init__(self) -> None:
        if self.families is not None:
            if isinstance(self.families, str) or not self.families:
                raise ConfigError(f"families must be a non-empty list of names, got "
                                  f"{self.families!r}")
            for name in self.families:
                get_family(name)
        low, high = self.scale_range
        if not (0 < low <= 1 <= high and math.isfinite(high)):
            raise ConfigError(f"scale_range must satisfy 0 < low <= 1 <= high, got {self.scale_range}")
        if not self.bias_range[0] <= 0 <= self.bias_range[1]:
            raise ConfigError(f"bias_range must contain 0, got {self.bias_range}")
        if self.multiplier_range[0] != 0 or not 1 <= self.multiplier_range[1] < math.inf:
            raise ConfigError(f"multiplier_range must be (0, high) with high >= 1, got "
                              f"{self.multiplier_range}")
        if not 0 < self.embedding_scale_low <= low:
            raise ConfigError(f"embedding_scale_low must be in (0, {low}], got "
                              f"{self.embedding_scale_low!r}")
        if not (2 < self.t_max_range[0] <= self.t_max <= self.t_max_range[1] < math.inf):
            raise ConfigError(f"t_max must lie in t_max_range, both above 2, got t_max="
                              f"{self.t_max!r}, t_max_range={self.t_max_range}")
        if not self.lr_factor > 1:
            raise ConfigError(f"lr_factor must be > 1, got {self.lr_factor!r}")

    def choices(self, plan: ModelPlan, group: str) -> list[str]:
        """The families searched for ``group`` (always including the baselines' families;
        ``model_default`` only for a model with its own init)."""
        own = [MODEL_DEFAULT] if plan.model_init else []
        if plan.is_norm(group):
            pool = [*_NORM_FAMILIES, *own]
        else:  # the baselines' families are always in the space, so they can be enqueued
            pool = [*BASELINES, *own] + [f for f in self.families or list_families()
                                         if f not in BASELINES and f != MODEL_DEFAULT]
        return plan.families_for(group, pool)

    def bias_rules(self, plan: ModelPlan, group: str) -> list[str]:
        """Bias rules searched for ``group`` (a fixed list: Optuna's choices must not change)."""
        rules = ["default", "zeros", "constant"]
        gated = {lay.kind for lay in plan.grouping.groups[group] if "_ih" in lay.local_name}
        if "lstm" in gated:
            rules.append("forget_gate")
        if "gru" in gated:
            rules.append("update_gate")
        if gated & {"lstm", "gru"}:
            rules.append("chrono")
        return rules

    def scale_bounds(self, plan: ModelPlan, group: str) -> tuple[float, float]:
        """The scale's range for ``group``: embeddings reach down to ``embedding_scale_low``."""
        low, high = self.scale_range
        return (self.embedding_scale_low, high) if plan.roles(group) == {"embedding"} else (low, high)


# A gate rule's value and its trial parameter: the gate's constant offset, or chrono's T_max.
_GATE_VALUES = {"forget_gate": "forget_bias", "update_gate": "update_bias", "chrono": "t_max"}


def _gate_range(space: SearchSpace, rule: str) -> tuple[float, float]:
    return space.t_max_range if rule == "chrono" else (0.0, 3.0)


def multiplier_part(plan: ModelPlan, group: str) -> str | None:
    """What the multiplier scales in ``group`` (``"all"``, ``"query"``), or ``None``: no multiplier."""
    roles = plan.roles(group)
    if roles and roles <= _MULTIPLIED:
        return "all"
    return "query" if roles == {"attn_qkv"} else None


def has_depth(plan: ModelPlan, group: str) -> bool:
    """Whether ``group`` has a depth exponent: the model has residual branches and the group's
    layers sit inside them."""
    roles = plan.roles(group)
    return plan.depth > 0 and bool(roles) and roles <= _IN_BRANCH


def distributions(plan: ModelPlan, space: SearchSpace, lr: float
                  ) -> dict[str, optuna.distributions.BaseDistribution]:
    """Every parameter :func:`suggest_scheme` may ask for, with its distribution."""
    D = optuna.distributions
    out: dict[str, D.BaseDistribution] = {}
    for group, layers in plan.grouping.groups.items():
        out[f"{group}.family"] = D.CategoricalDistribution(space.choices(plan, group))
        out[f"{group}.scale"] = D.FloatDistribution(*space.scale_bounds(plan, group), log=True)
        if multiplier_part(plan, group):
            out[f"{group}.multiplier"] = D.FloatDistribution(*space.multiplier_range)
        if has_depth(plan, group):
            out[f"{group}.depth_exponent"] = D.FloatDistribution(*DEPTH_EXPONENTS, step=0.25)
        if any(lay.param_type.endswith("bias") for lay in layers):
            rules = space.bias_rules(plan, group)
            out[f"{group}.bias"] = D.CategoricalDistribution(rules)
            out[f"{group}.bias_value"] = D.FloatDistribution(*space.bias_range)
            for rule, name in _GATE_VALUES.items():
                if rule in rules:
                    out[f"{group}.{name}"] = D.FloatDistribution(*_gate_range(space, rule),
                                                                 log=rule == "chrono")
    if space.search_lr:
        out["lr"] = D.FloatDistribution(lr / space.lr_factor, lr * space.lr_factor, log=True)
    return out


def suggest_scheme(
    trial: optuna.trial.BaseTrial, plan: ModelPlan, space: SearchSpace, lr: float, seed: int = 0
) -> tuple[InitScheme, float]:
    """Sample a scheme (and learning rate) from ``trial``."""
    rules = {}
    for group in plan.grouping.groups:
        family = trial.suggest_categorical(f"{group}.family", space.choices(plan, group))
        scale = 1.0
        if family != "zeros":
            scale = trial.suggest_float(f"{group}.scale", *space.scale_bounds(plan, group), log=True)
        shape = {}
        if part := multiplier_part(plan, group):
            shape["multiplier"] = trial.suggest_float(f"{group}.multiplier", *space.multiplier_range)
            shape["part"] = part
        if has_depth(plan, group):
            shape["depth_exponent"] = trial.suggest_float(f"{group}.depth_exponent",
                                                          *DEPTH_EXPONENTS, step=0.25)
        has_bias = any(lay.param_type.endswith("bias") for lay in plan.grouping.groups[group])
        bias, bias_value = get_family(family).default_bias, 0.0
        if has_bias:
            bias = trial.suggest_categorical(f"{group}.bias",
                                             space.bias_rules(plan, group))
            if bias == "constant":
                bias_value = trial.suggest_float(f"{group}.bias_value", *space.bias_range)
            elif bias in _GATE_VALUES:
                bias_value = trial.suggest_float(f"{group}.{_GATE_VALUES[bias]}",
                                                 *_gate_range(space, bias), log=bias == "chrono")
        rules[group] = plan.rule(group, family, scale, bias=bias, bias_value=bias_value, **shape)
    if space.search_lr:
        lr = trial.suggest_float("lr", lr / space.lr_factor, lr * space.lr_factor, log=True)
    return plan.scheme(rules, seed), lr


def baseline_names(plan: ModelPlan) -> tuple[str, ...]:
    """The fixed baselines a search of ``plan`` queues, in order: :data:`BASELINES`,
    ``model_default`` (the model's own init, the selection's incumbent) for a model that has
    one, and the ``dcgan`` preset (N(0, 0.02²) weights, norm gamma N(1, 0.02²), zero biases)
    where the model has the convolutions and norm layers that rule was written for. A search of
    fewer trials runs the first of them."""
    kinds = {lay.kind for lay in plan.layers}
    return (BASELINES + ((MODEL_DEFAULT,) if plan.model_init else ())
            + (("dcgan",) if kinds & _CONV_KINDS and "norm" in kinds else ()))


def baseline_params(plan: ModelPlan, space: SearchSpace, family: str, lr: float | None = None
                    ) -> dict[str, object]:
    """Trial parameters that apply ``family`` everywhere it is searched (its norm rule on norm
    groups where it has one, PyTorch's default elsewhere), with scale 1 and zero biases
    (PyTorch's own biases under ``pytorch_default``)."""
    params: dict[str, object] = {}
    for group in plan.grouping.groups:
        choices = space.choices(plan, group)
        name = next((f for f in (family, _NORM_RULE.get(family)) if f in choices),
                    "pytorch_default")
        params[f"{group}.family"] = name
        if name != "zeros":
            params[f"{group}.scale"] = 1.0
        if multiplier_part(plan, group):
            params[f"{group}.multiplier"] = 1.0
        if has_depth(plan, group):
            params[f"{group}.depth_exponent"] = 0.0
        if any(lay.param_type.endswith("bias") for lay in plan.grouping.groups[group]):
            params[f"{group}.bias"] = "default" if name in ("pytorch_default", MODEL_DEFAULT) \
                else "zeros"
    if space.search_lr and lr is not None:
        params["lr"] = lr
    return params
