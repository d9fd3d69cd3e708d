"""``apply_scheme``: write an :class:`InitScheme` into a model, deterministically.

Every parameter draws from its own ``torch.Generator``, seeded from the scheme's seed and the
parameter's name, on CPU and on one torch thread; values are then copied to the parameter's device
and dtype. So the same scheme and seed give bit-identical weights in any process, whatever its
thread count, changing one group leaves the others' draws unchanged, and the global RNG is never
touched. A rule's multiplier and depth factor
``L**α`` then scale the drawn weights and, in a group of norms (a ResNet's branch-ending
``bn2``), their gains; a group mixing weights and norms scales only its weights (a factor of
exactly 0 writes exact zeros). An
embedding's ``padding_idx`` row is zero under every family, as ``reset_parameters`` leaves it;
a ``weight_norm`` direction drawn by a family gets the norm that makes the weight the draw.
``pytorch_default`` gives a norm layer without a reset method (``T5LayerNorm``, a hand-written
RMSNorm) ones and zeros, as torch's norms reset.

Example:
    >>> import torch.nn as nn
    >>> from autoinit.plan import uniform_scheme
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> s = uniform_scheme(net, "orthogonal")
    >>> w1 = apply_scheme(net, s)[0].weight.clone()
    >>> torch.equal(w1, apply_scheme(net, s)[0].weight)
    True
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from autoinit.errors import ConfigError, SchemeError
from autoinit.families import Fans, bias_values, gain_of, get_family
from autoinit.layers import ParamSpec, describe_params, eager
from autoinit.model_init import MODEL_DEFAULT, model_default_values
from autoinit.scheme import GroupRule, InitScheme

__all__ = ["apply_scheme", "block_factors", "check_model", "default_values", "model_parameters"]

_QUERY = re.compile(r"(^|\.)(q|query|q_proj)$")
_VALUE = re.compile(r"(^|\.)(v|value|v_proj)$")


def model_parameters(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``model`` (tied ones once) with its shape."""
    model = eager(model)
    for name, p in model.named_parameters():
        if isinstance(p, nn.parameter.UninitializedParameter):  # its shape is unknown yet
            raise ConfigError(f"parameter {name!r} of a lazy module is not materialized; "
                              "run one batch through the model first")
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def check_model(model: nn.Module, scheme: InitScheme) -> None:
    """Raise :class:`SchemeError` listing missing, extra and mismatched parameters, if any."""
    have = model_parameters(model)
    want = scheme.parameters
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    shapes = [f"{k}: model {have[k]}, scheme {want[k]}" for k in want
              if k in have and tuple(have[k]) != tuple(want[k])]
    if missing or extra or shapes:
        parts = [f"{label} ({len(v)}): {', '.join(v[:20])}{' ...' if len(v) > 20 else ''}"
                 for label, v in (("missing from the model", missing),
                                  ("not in the scheme", extra), ("shape mismatch", shapes)) if v]
        raise SchemeError(
            f"scheme was made for a different model ({scheme.model_class or 'unknown class'}); "
            + "; ".join(parts)
        )


def apply_scheme(model: nn.Module, scheme: InitScheme) -> nn.Module:
    """Initialize ``model`` in place with ``scheme`` and return it.

    Raises:
        SchemeError: ``scheme`` is no :class:`InitScheme` (a path: ``load_scheme`` reads it), the
            model's parameters differ from the scheme's, or a group's family does not fit one
            of its parameters.
    """
    if not isinstance(scheme, InitScheme):
        raise SchemeError(f"scheme must be an InitScheme (autoinit.load_scheme(path_or_run) reads "
                          f"one), got {type(scheme).__name__} {str(scheme)[:80]!r}")
    check_model(model, scheme)
    compiled, model = model, eager(model)  # the same parameters, named without the wrapper
    params = dict(model.named_parameters())
    specs = {s.name: s for s in describe_params(model, include_frozen=True)}
    modules = dict(model.named_modules())
    defaults: dict[str, dict[str, torch.Tensor]] = {}
    with torch.no_grad(), _one_thread():
        for group, rule in scheme.groups.items():
            gains = not any(s.param_type == "weight" for n in rule.members if (s := specs.get(n)))
            for name in rule.members:
                spec = specs.get(name)
                if spec is None:
                    raise SchemeError(f"group {group!r} names {name!r}, which autoinit cannot "
                                      "initialize in this model")
                tensor = params[name]
                if tensor.numel() == 0:
                    warnings.warn(f"parameter {name!r} is empty; nothing to initialize",
                                  stacklevel=2)
                    continue
                value = _values(spec, rule, group, scheme.seed, modules, defaults, model)
                if spec.param_type == "weight":
                    value = _scaled(value, spec, block_factors(spec, rule, scheme.depth))
                elif spec.param_type == "norm_weight" and gains:  # a group of norms: gains scaled
                    value = _gain_scaled(value, spec, block_factors(spec, rule, scheme.depth)[0])
                tensor.copy_(value.reshape(tensor.shape))
                module = modules[spec.module_name]
                if isinstance(module, nn.modules.batchnorm._NormBase):
                    module.reset_running_stats()
                if spec.param_type == "weight" and (row := _padding_row(module)) is not None:
                    tensor[row] = 0  # as torch's reset: padding reads zeros
                if (dim := _weight_norm_of(module)) is not None:  # the weight is the drawn one
                    module.original0.copy_(torch.norm_except_dim(tensor, 2, dim))
    return compiled


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Draw on one torch thread: a QR of 64 or more rows (orthogonal, delta-orthogonal) rounds
    differently on more threads, so the same scheme would give other bits in another process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _padding_row(module: nn.Module) -> int | None:
    """The row of an embedding table that padding tokens read (and never train), if any."""
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return module.padding_idx
    return None


def _weight_norm_of(module: nn.Module) -> int | None:
    """The ``dim`` of ``weight_norm`` (``torch.nn.utils.parametrizations``) when ``module`` is
    the ``ParametrizationList`` of a weight-normalized tensor, else ``None``."""
    if isinstance(module, parametrize.ParametrizationList) and isinstance(
            module[0], parametrizations._WeightNorm):
        return module[0].dim
    return None


def block_factors(spec: ParamSpec, rule: GroupRule, depth: int) -> list[float]:
    """The factor on each block of a weight: ``multiplier · depth**α`` on every block, or under
    ``part="query"`` the multiplier on the query block and ``depth**α`` on the value block of a
    packed q/k/v (k/v) projection, or on a separate query or value layer found by its name.

    Example:
        >>> spec = ParamSpec("mha", "weight", 4, 4, blocks=3, name="attn.in_proj_weight")
        >>> block_factors(spec, GroupRule("xavier_uniform", multiplier=0.0, part="query",
        ...                               depth_exponent=-0.5), depth=4)
        [0.0, 1.0, 0.5]
    """
    depth_factor = float(depth) ** rule.depth_exponent if rule.depth_exponent else 1.0
    if rule.part == "all":
        return [rule.multiplier * depth_factor] * spec.blocks
    if spec.blocks == 3:  # q, k, v packed along the output dimension
        return [rule.multiplier, 1.0, depth_factor]
    if spec.blocks == 2:  # k, v (cross-attention)
        return [1.0, depth_factor]
    if _QUERY.search(spec.module_name):
        return [rule.multiplier]
    return [depth_factor if _VALUE.search(spec.module_name) else 1.0]


def _scaled(value: torch.Tensor, spec: ParamSpec, factors: list[float]) -> torch.Tensor:
    """``value`` with each block multiplied by its factor (1: untouched, 0: exact zeros)."""
    if all(f == 1.0 for f in factors):
        return value
    canonical = _to_canonical(value.reshape(spec.shape), spec)
    blocks = canonical.chunk(len(factors))
    out = torch.cat([b if f == 1.0 else torch.zeros_like(b) if f == 0.0 else b * f
                     for b, f in zip(blocks, factors, strict=True)])
    return _from_canonical(out, spec)


def _gain_scaled(value: torch.Tensor, spec: ParamSpec, factor: float) -> torch.Tensor:
    """A norm's stored gain (``gain - offset``) with the gain times ``factor`` (0: exact zeros)."""
    if factor == 1.0:
        return value
    gain = torch.zeros_like(value) if factor == 0.0 else (value + spec.offset) * factor
    return gain - spec.offset


def _to_canonical(value: torch.Tensor, spec: ParamSpec) -> torch.Tensor:
    if spec.layout in ("in_out", "conv_transpose"):
        return value.transpose(0, 1)
    if spec.layout == "experts":  # (E, out, in): the experts' matrices stacked along out
        return value.reshape(-1, spec.shape[2])
    if spec.layout == "experts_in_out":  # (E, in, out)
        return value.transpose(1, 2).reshape(-1, spec.shape[1])
    return value


def _generator(seed: int, key: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _values(spec: ParamSpec, rule: GroupRule, group: str, seed: int, modules: Mapping[str, nn.Module],
            defaults: dict[str, dict[str, torch.Tensor]], model: nn.Module) -> torch.Tensor:
    generator = _generator(seed, spec.name)
    own = rule.family == MODEL_DEFAULT
    if spec.param_type in ("bias", "norm_bias"):
        if rule.bias == "default":
            return _own(spec, seed, model, defaults) if own else _default(spec, seed, modules, defaults)
        return bias_values(spec.shape, rule.bias, rule.bias_value, kind=spec.kind,
                           param_name=spec.name, generator=generator)
    family = get_family(rule.family)
    if not family.fits(spec.param_type, spec.kind):
        raise SchemeError(f"group {group!r}: family {rule.family!r} cannot initialize "
                          f"{spec.name!r} ({spec.param_type} of a {spec.kind} layer)")
    if spec.param_type == "norm_weight" and spec.offset and (own or family.sampler is None):
        # a gain stored as gain - offset: the scale multiplies the gain
        stored = _own(spec, seed, model, defaults) if own \
            else _default(spec, seed, modules, defaults)
        return (stored + spec.offset) * rule.scale - spec.offset
    if own:
        return _own(spec, seed, model, defaults) * rule.scale
    if family.sampler is None:
        return _default(spec, seed, modules, defaults) * rule.scale
    gain = gain_of(rule.nonlinearity)
    if spec.param_type == "norm_weight":
        return family.sampler(Fans(spec.shape, 1, 1, gain), scale=rule.scale, generator=generator,
                              **rule.options) - spec.offset
    canonical = _canonical_shape(spec)
    rows = canonical[0] // spec.blocks
    blocks = [
        family.sampler(Fans((rows, *canonical[1:]), spec.fan_in, spec.fan_out, gain,
                            block=i, blocks=spec.blocks),
                       scale=rule.scale, generator=generator, **rule.options)
        for i in range(spec.blocks)
    ]
    return _from_canonical(torch.cat(blocks), spec)


def _canonical_shape(spec: ParamSpec) -> tuple[int, ...]:
    """The weight's shape in torch's ``(out, in, *kernel)`` layout."""
    shape = spec.shape
    if len(shape) == 1:  # a learned vector (CLIP's class_embedding): one row
        return (1, shape[0])
    if spec.layout in ("in_out", "conv_transpose"):
        return (shape[1], shape[0], *shape[2:])
    if spec.layout == "experts":
        return (shape[0] * shape[1], shape[2])
    if spec.layout == "experts_in_out":
        return (shape[0] * shape[2], shape[1])
    return shape


def _from_canonical(value: torch.Tensor, spec: ParamSpec) -> torch.Tensor:
    if spec.layout in ("in_out", "conv_transpose"):
        return value.transpose(0, 1).contiguous()
    if spec.layout == "experts":
        return value.reshape(spec.shape)
    if spec.layout == "experts_in_out":
        experts, fan_in, fan_out = spec.shape
        return value.reshape(experts, fan_out, fan_in).transpose(1, 2).contiguous()
    return value


def _default(spec: ParamSpec, seed: int, modules: Mapping[str, nn.Module],
             cache: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
    if spec.kind == "norm" and _reset_of(modules[spec.module_name]) is None:
        # a norm without a reset method (T5LayerNorm, LlamaRMSNorm): torch's norms' convention,
        # not a random gain
        if spec.param_type == "norm_weight":
            return torch.ones(spec.shape) - spec.offset  # a gain of 1, as the norm stores it
        return torch.zeros(spec.shape)
    if spec.module_name not in cache:
        generator = _generator(seed, f"{spec.module_name}#reset_parameters")
        cache[spec.module_name] = default_values(modules[spec.module_name], generator)
    return cache[spec.module_name][spec.local_name]


def _own(spec: ParamSpec, seed: int, model: nn.Module,
         cache: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
    key = f"#{MODEL_DEFAULT}"  # no module name starts with '#'
    if key not in cache:
        cache[key] = model_default_values(model, _generator(seed, key))
    return cache[key][spec.name]


def default_values(module: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """What ``module.reset_parameters()`` draws for its own parameters from ``generator``'s state.

    The module is copied to CPU in float32 (the same draws whatever the model's dtype) and reset
    with the global RNG temporarily set to the generator's state, so the result equals
    ``torch.manual_seed(s); module.reset_parameters()`` bit for bit for a generator seeded with
    ``s`` and a float32 module. The generator advances as if it had been used; the global
    RNG is restored. Modules without a reset method get torch's convention (Kaiming uniform with
    ``a=sqrt(5)``, biases uniform in ``±1/sqrt(fan_in)``).
    """
    clone = copy.deepcopy(module).to("cpu").float()  # float64 draws other numbers
    reset = _reset_of(clone)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(generator.get_state())
        with torch.no_grad():
            if callable(reset):
                reset()
            else:
                _torch_convention(clone)
        generator.set_state(torch.get_rng_state())
    return {name: p.detach() for name, p in clone.named_parameters(recurse=False)}


def _reset_of(module: nn.Module) -> Callable[[], object] | None:
    return getattr(module, "reset_parameters", None) or getattr(module, "_reset_parameters", None)


def _torch_convention(module: nn.Module) -> None:
    own = dict(module.named_parameters(recurse=False))
    fan_in = next((nn.init._calculate_fan_in_and_fan_out(p)[0] for p in own.values()
                   if p.dim() >= 2), 1)
    for p in own.values():
        if p.dim() >= 2:
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))
        else:
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(p, -bound, bound)
