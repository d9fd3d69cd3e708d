"""Presets: initializations from the literature, queued as named candidates after the baselines.

A preset is a point of the search space: the trial parameters of :mod:`autoinit.space` that
stand for it on a given model, or ``None`` where the model lacks the roles it needs. It is queued
like a baseline (``user_attrs["baseline"]`` holds its name), so the table, the summary, MLflow
and ``autoinit status`` show it by name, and the selection round treats it as a named
candidate. ``L`` below is :attr:`~autoinit.plan.ModelPlan.depth`, the residual branches (one per
attention and one per MLP block in a Transformer).

Built in: ``fixup``, ``skipinit``, ``t_fixup``, ``gpt2``, ``small_init_emb``, ``zero_readout``,
``chrono``, ``irnn``, ``mimetic``. Add your own with :func:`register_preset`.

Example:
    >>> import torch.nn as nn
    >>> from autoinit.plan import ModelPlan
    >>> from autoinit.space import SearchSpace
    >>> plan = ModelPlan.of(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    >>> preset_names(plan, SearchSpace())
    ('zero_readout',)
    >>> preset_params(plan, SearchSpace(), "zero_readout")["head.linear.multiplier"]
    0.0
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from autoinit.errors import ConfigError
from autoinit.plan import ModelPlan
from autoinit.space import SearchSpace, baseline_params, distributions, has_depth, multiplier_part

__all__ = ["Preset", "get_preset", "list_presets", "preset_names", "preset_params",
           "register_preset"]

Params = dict[str, object]


@dataclass(frozen=True)
class Preset:
    """A named initialization.

    Attributes:
        name: registry key, shown wherever the candidate is.
        params: ``params(plan, space)``: the trial parameters it stands for on ``plan``, or
            ``None`` where the model lacks the roles it needs.
        summary: one line with the rule and its paper.
    """

    name: str
    params: Callable[[ModelPlan, SearchSpace], Params | None]
    summary: str = ""


_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> Preset:
    """Add ``preset`` to the registry (a duplicate name replaces the old one, with a warning).

    Example:
        >>> p = register_preset(Preset("my_zero_head", lambda plan, space: None))
        >>> "my_zero_head" in list_presets()
        True
    """
    if preset.name in _PRESETS:
        warnings.warn(f"preset {preset.name!r} replaced", stacklevel=2)
    _PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a :class:`ConfigError` listing the known."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known: {sorted(_PRESETS)}") from None


def list_presets(pattern: str = "*") -> list[str]:
    """Registered preset names matching a shell-style ``pattern``, in registration order."""
    return [n for n in _PRESETS if fnmatch.fnmatch(n, pattern)]


def preset_params(plan: ModelPlan, space: SearchSpace, name: str, lr: float | None = None
                  ) -> Params | None:
    """The trial parameters of preset ``name`` on ``plan``, or ``None`` where it does not apply
    (a role it needs is missing, or a value it needs lies outside ``space``)."""
    params = get_preset(name).params(plan, space)
    if params is None:
        return None
    if space.search_lr and lr is not None:
        params = {**params, "lr": lr}
    dists = distributions(plan, space, lr or 1.0)
    for key, value in params.items():
        dist = dists.get(key)
        try:
            if dist is None or not dist._contains(dist.to_internal_repr(value)):  # noqa: SLF001
                return None
        except ValueError:  # a category the space does not have
            return None
    return params


def preset_names(plan: ModelPlan, space: SearchSpace) -> tuple[str, ...]:
    """The presets that apply to ``plan`` within ``space``, in registration order."""
    return tuple(n for n in _PRESETS if preset_params(plan, space, n) is not None)


# ----------------------------------------------------------------------------------- helpers

def _groups(plan: ModelPlan, roles: Iterable[str]) -> list[str]:
    """Groups whose weights all have one of ``roles``."""
    wanted = set(roles)
    return [g for g in plan.grouping.groups if plan.roles(g) and plan.roles(g) <= wanted]


def _set(params: Params, groups: Iterable[str], **values: object) -> Params:
    """``params`` with ``<group>.<key>`` set for each group (a bias only where it has one)."""
    for group in groups:
        for key, value in values.items():
            if key != "bias" or f"{group}.bias" in params:
                params[f"{group}.{key}"] = value
    return params


def _zero(params: Params, plan: ModelPlan, groups: Iterable[str]) -> Params:
    """Zero weights (multiplier 0) and zero biases on ``groups``."""
    groups = [g for g in groups if multiplier_part(plan, g) == "all"]
    return _set(params, groups, multiplier=0.0, bias="zeros")


def _depth_groups(plan: ModelPlan, roles: Iterable[str]) -> list[str]:
    return [g for g in _groups(plan, roles) if has_depth(plan, g)]


# ----------------------------------------------------------------------------------- presets

def _fixup(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Zhang et al. 2019: He init, each branch's last layer and the readout zero, the branch's
    other layers scaled by ``L^(-1/(2m-2))`` (m = 2 or 3 layers per branch)."""
    m = plan.branch_layers
    ends, heads = _groups(plan, ["residual_out"]), _groups(plan, ["head"])
    if m not in (2, 3) or not ends or not heads or _groups(plan, ["attn_out"]):
        return None
    params = baseline_params(plan, space, "kaiming_normal")
    _set(params, _depth_groups(plan, ["hidden"]), depth_exponent=-1 / (2 * m - 2))
    return _zero(_zero(params, plan, ends), plan, heads)


def _skipinit(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """De & Smith 2020: every residual branch starts at zero (its output layer zero); the rest
    keeps PyTorch's default."""
    ends = _groups(plan, ["residual_out", "attn_out"])
    if not ends or not plan.depth:
        return None
    return _zero(baseline_params(plan, space, "pytorch_default"), plan, ends)


def _t_fixup(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Huang et al. 2020 (encoder rule): Xavier everywhere; the value and output projections of
    every attention block and the MLP weights times ``0.67·N^(-1/4)`` (N = attention blocks),
    written as scale ``0.67·(L/N)^(1/4)`` and ``L^(-1/4)``; embeddings N(0, 1/d)·(9N)^(-1/4)
    (PyTorch's N(0, 1) times ``d^(-1/2)·(9N)^(-1/4)``). The value block, packed with query and
    key, takes ``L^(-1/4)`` alone (0.84·N^(-1/4) in a Transformer, not 0.67)."""
    blocks = sum({lay.module_name: lay.calls for lay in plan.layers if lay.role == "attn_out"}.values())
    if not blocks or not plan.depth:
        return None
    params = baseline_params(plan, space, "xavier_uniform")
    scale = 0.67 * (plan.depth / blocks) ** 0.25
    _set(params, _depth_groups(plan, ["hidden", "residual_out", "attn_out"]), scale=scale,
         depth_exponent=-0.25)
    _set(params, _depth_groups(plan, ["attn_qkv"]), depth_exponent=-0.25)
    embeddings = [lay for lay in plan.layers if lay.role == "embedding" and lay.param_type == "weight"]
    if embeddings:
        d = embeddings[0].shape[-1]
        _set(params, _groups(plan, ["embedding"]), family="pytorch_default",
             scale=d ** -0.5 * (9 * blocks) ** -0.25, bias="default")
    return params


def _gpt2(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Radford et al. 2019 / nanoGPT: every weight N(0, 0.02²), residual and attention output
    projections N(0, 0.02²/L) (``L = 2·layers``: 0.02/sqrt(2·layers)), zero biases, norms at
    one and zero."""
    ends = _depth_groups(plan, ["residual_out", "attn_out"])
    if not _groups(plan, ["attn_out"]) or not ends:
        return None
    params = baseline_params(plan, space, "dcgan")
    norms = [g for g in plan.grouping.groups if plan.is_norm(g)]
    _set(params, norms, family="pytorch_default", scale=1.0, bias="default")  # ones and zeros
    return _set(params, ends, depth_exponent=-0.5)


def _small_init_emb(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Bo Peng's SmallInitEmb: embeddings N(0, 1e-4²) (0.02·0.005), the rest PyTorch's default."""
    groups = _groups(plan, ["embedding"])
    if not groups:
        return None
    return _set(baseline_params(plan, space, "pytorch_default"), groups, family="dcgan",
                scale=0.005, bias="zeros")


def _zero_readout(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """μP's and the ViT head's zero readout: the output layer's weights and bias zero, the rest
    PyTorch's default."""
    heads = _groups(plan, ["head"])
    return _zero(baseline_params(plan, space, "pytorch_default"), plan, heads) if heads else None


def _kinds(plan: ModelPlan, group: str) -> set[str]:
    return {lay.kind for lay in plan.grouping.groups[group]}


def _chrono(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Tallec & Ollivier 2018: LSTM forget-gate biases ``log U(1, T_max − 1)`` and input-gate
    biases their negative (GRU: the update gate's), ``T_max`` = ``space.t_max``; ``bias_hh``
    zero, so the offset is not doubled; weights PyTorch's default."""
    gated = [g for g in _groups(plan, ["rnn_ih"]) if _kinds(plan, g) <= {"lstm", "gru"}]
    if not gated:
        return None
    params = _set(baseline_params(plan, space, "pytorch_default"), gated, bias="chrono",
                  t_max=space.t_max)
    return _set(params, _groups(plan, ["rnn_hh"]), bias="zeros")


def _irnn(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Le, Jaitly & Hinton 2015: a ReLU RNN's recurrent matrix the identity, its biases zero; the
    input weights PyTorch's default."""
    recurrent = [g for g in _groups(plan, ["rnn_hh"]) if _kinds(plan, g) == {"rnn"}
                 and {lay.nonlinearity for lay in plan.grouping.groups[g]} == {"relu"}]
    if not recurrent:
        return None
    params = _set(baseline_params(plan, space, "pytorch_default"), recurrent, family="identity",
                  scale=1.0, bias="zeros")
    return _set(params, [g for g in _groups(plan, ["rnn_ih"]) if _kinds(plan, g) == {"rnn"}],
                bias="zeros")


def _mimetic(plan: ModelPlan, space: SearchSpace) -> Params | None:
    """Trockman & Kolter 2023: ``W_qᵀW_k ≈ 0.7(I + Z)``, ``W_o W_v ≈ −0.4 I`` in every packed
    attention (``nn.MultiheadAttention``), zero attention biases; the rest PyTorch's default."""
    qkv = [g for g in _groups(plan, ["attn_qkv"]) if _kinds(plan, g) == {"mha"}]
    out = _groups(plan, ["attn_out"])
    if not qkv or not out:
        return None
    params = _set(baseline_params(plan, space, "pytorch_default"), qkv, family="mimetic",
                  scale=1.0, bias="zeros")
    return _set(params, out, family="mimetic_out", scale=1.0, bias="zeros")


for _preset in (
    Preset("fixup", _fixup, "branch ends and readout zero, branch layers L^(-1/(2m-2)) (Fixup)"),
    Preset("skipinit", _skipinit, "every residual branch's output layer zero (SkipInit)"),
    Preset("t_fixup", _t_fixup, "Xavier, v/out/MLP × 0.67·N^(-1/4) (T-Fixup)"),
    Preset("gpt2", _gpt2, "N(0, 0.02²), branch outputs 0.02/sqrt(L) (GPT-2, nanoGPT)"),
    Preset("small_init_emb", _small_init_emb, "embeddings N(0, 1e-4²) (SmallInitEmb)"),
    Preset("zero_readout", _zero_readout, "output layer zero (μP, ViT head)"),
    Preset("chrono", _chrono, "gate biases log U(1, T_max − 1) (chrono init)"),
    Preset("irnn", _irnn, "ReLU RNN, recurrent matrix the identity (IRNN)"),
    Preset("mimetic", _mimetic, "W_qᵀW_k ≈ αI, W_o W_v ≈ −βI (mimetic attention)"),
):
    register_preset(_preset)
