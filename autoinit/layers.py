"""Layer kinds and fan rules: what every initializable parameter of a model is.

A *layer rule* looks at a module and one of its own parameters and says what the parameter is
(a weight, a bias, a norm gamma or beta), its fans, how many gate blocks it packs and whether it
is stored ``(out, in)`` like ``nn.Linear`` or ``(in, out)`` like some transformer libraries'
``Conv1D``. Rules are registered per module class and found through the class's MRO, so
subclasses inherit them. Users describe their own layers with :func:`register_layer_kind`, and
parameters that pack several matrices (a fused ``qkv``) with :func:`register_packed`. A class no
rule knows whose name ends in ``Norm`` (LLaMA's hand-written ``RMSNorm``) is a norm. Rules for
other libraries' layers (Hugging Face transformers) live in their own modules, imported the first
time a model holds a module of that library (see :data:`PROVIDERS`).

Example:
    >>> import torch.nn as nn
    >>> specs = describe_params(nn.LSTM(8, 16))
    >>> [(s.name, s.param_type, s.blocks, s.fan_in, s.fan_out) for s in specs][:2]
    [('weight_ih_l0', 'weight', 4, 8, 16), ('weight_hh_l0', 'weight', 4, 16, 16)]
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from autoinit.errors import ConfigError

__all__ = [
    "PROVIDERS",
    "LayerParam",
    "ParamSpec",
    "describe_params",
    "eager",
    "in_out_rule",
    "register_layer_kind",
    "register_layer_resolver",
    "register_packed",
]


@dataclass(frozen=True)
class LayerParam:
    """What a layer rule says about one parameter (fans are per gate block)."""

    kind: str
    param_type: str  # "weight", "bias", "norm_weight" or "norm_bias"
    fan_in: int = 0
    fan_out: int = 0
    blocks: int = 1
    # "out_in" (torch), "in_out" (stored transposed), "conv_transpose", "experts" (E matrices
    # (out, in) stacked: ``(E, out, in)``, one block each) and "experts_in_out" (``(E, in, out)``)
    layout: str = "out_in"
    # a norm gain stored as an offset from this value: Gemma's RMSNorm computes x·(1 + w), so a
    # family's gain g is written as g - 1 (the model's own init stays as it is)
    offset: float = 0.0


@dataclass(frozen=True)
class ParamSpec(LayerParam):
    """One initializable parameter of a model: its names, shape and layer facts."""

    name: str = ""
    module_name: str = ""
    module_type: str = ""
    shape: tuple[int, ...] = ()
    known: bool = True  # False when no rule matched and torch's convention was assumed

    @property
    def local_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


LayerRule = Callable[[nn.Module, str, torch.Tensor], "LayerParam | None"]
_RULES: dict[type, LayerRule] = {}


def register_layer_kind(module_type: type, rule: LayerRule) -> None:
    """Describe the parameters of ``module_type`` (and its subclasses) with ``rule``.

    ``rule(module, local_name, tensor)`` returns a :class:`LayerParam`, or ``None`` for a
    parameter autoinit should leave alone.

    Example:
        >>> class Conv1D(nn.Module):  # stores its matrix as (in, out)
        ...     def __init__(self, nx, nf):
        ...         super().__init__()
        ...         self.weight = nn.Parameter(torch.empty(nx, nf))
        ...         self.bias = nn.Parameter(torch.zeros(nf))
        >>> register_layer_kind(Conv1D, in_out_rule)
        >>> [(s.fan_in, s.fan_out, s.layout) for s in describe_params(Conv1D(3, 5))][0]
        (3, 5, 'in_out')
    """
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise ConfigError(f"module_type must be an nn.Module subclass, got {module_type!r}")
    if module_type in _RULES:
        warnings.warn(f"layer kind for {module_type.__name__} replaced", stacklevel=2)
    _RULES[module_type] = rule


_PACKED: dict[re.Pattern, tuple[int, type[nn.Module]]] = {}

# Top-level package of a module class -> the autoinit module holding that library's layer rules.
PROVIDERS: dict[str, str] = {"transformers": "autoinit.layers_hf"}
_loaded_providers: set[str] = set()


def register_packed(pattern: str, blocks: int, module_type: type[nn.Module] = nn.Module) -> None:
    """Parameters whose full name matches ``pattern`` (``re.search``), of a ``module_type``
    module, pack ``blocks`` equal blocks along their output dimension (a fused ``qkv`` projection:
    3); fans are per block. Give the library's own class (transformers' ``Conv1D``) so that a
    module of that name elsewhere (nanoGPT's ``nn.Linear`` ``c_attn``) keeps the fans of the
    layer as written, whatever was loaded before.

    Example:
        >>> register_packed(r"(^|\\.)my_fused_qkv\\.", 3)
        >>> net = nn.Sequential(); net.my_fused_qkv = nn.Linear(4, 12)
        >>> [(s.blocks, s.fan_in, s.fan_out) for s in describe_params(net)]
        [(3, 4, 4), (3, 12, 0)]
    """
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ConfigError(f"blocks must be a positive integer, got {blocks!r}")
    if not isinstance(module_type, type) or not issubclass(module_type, nn.Module):
        raise ConfigError(f"module_type must be an nn.Module subclass, got {module_type!r}")
    _PACKED[_compile_patterns(pattern, "pattern")[0]] = (blocks, module_type)


LayerResolver = Callable[[type], "LayerRule | None"]
_RESOLVERS: list[LayerResolver] = []
_resolved: dict[type, LayerRule | None] = {}


def register_layer_resolver(resolver: LayerResolver) -> None:
    """Ask ``resolver(module_class)`` for a rule when no registered kind matches the class.

    For families of classes that share a shape but no base class (every model's own
    ``XxxRMSNorm`` in Hugging Face transformers); the answer is remembered per class.

    Example:
        >>> class UnitGain(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.weight = nn.Parameter(torch.ones(4))
        >>> def norms(cls):
        ...     return _norm_rule if cls.__name__ == "UnitGain" else None
        >>> register_layer_resolver(norms)
        >>> [s.param_type for s in describe_params(UnitGain())]
        ['norm_weight']
    """
    if not callable(resolver):
        raise ConfigError(f"resolver must be callable, got {resolver!r}")
    _RESOLVERS.append(resolver)
    _resolved.clear()


def _resolve(cls: type) -> LayerRule | None:
    if cls not in _resolved:
        _resolved[cls] = next((r for r in (res(cls) for res in _RESOLVERS) if r), None)
    return _resolved[cls]


def _load_provider(module: nn.Module) -> None:
    package = type(module).__module__.split(".", 1)[0]
    if package in PROVIDERS and package not in _loaded_providers:
        _loaded_providers.add(package)
        importlib.import_module(PROVIDERS[package])


def _rule_for(module: nn.Module) -> LayerRule | None:
    _load_provider(module)
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return _resolve(type(module))


def _receptive(shape: torch.Size) -> int:
    return math.prod(shape[2:]) if len(shape) > 2 else 1


def _linear_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    if name == "weight":
        return LayerParam("linear", "weight", t.shape[1], t.shape[0])
    return LayerParam("linear", "bias", t.shape[0]) if name == "bias" else None


def _bilinear_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    # y_k = x1ᵀ W_k x2 sums in1·in2 products: the second input's size counts as a kernel does
    if name == "weight":
        return LayerParam("linear", "weight", t.shape[1] * t.shape[2], t.shape[0] * t.shape[2])
    return LayerParam("linear", "bias", t.shape[0]) if name == "bias" else None


def in_out_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    """Rule for layers that store their matrix as ``(in, out)`` and compute ``x @ W + b``."""
    if t.dim() >= 2:
        return LayerParam("in_out", "weight", t.shape[0], t.shape[1], layout="in_out")
    return LayerParam("in_out", "bias", 0)


def _conv_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    groups = getattr(module, "groups", 1)
    rf = _receptive(t.shape)
    if getattr(module, "transposed", False):
        # weight is (in, out / groups, *k): the opposite of Conv.
        if name == "weight":
            fan_in, fan_out = t.shape[0] // groups * rf, t.shape[1] * rf
            return LayerParam("conv_transpose", "weight", fan_in, fan_out, layout="conv_transpose")
        return LayerParam("conv_transpose", "bias", t.shape[0]) if name == "bias" else None
    if name == "weight":
        return LayerParam("conv", "weight", t.shape[1] * rf, t.shape[0] // groups * rf)
    return LayerParam("conv", "bias", t.shape[0]) if name == "bias" else None


def _embedding_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    # A lookup is a product with a one-hot vector: one input is active, so fan_in is 1.
    return LayerParam("embedding", "weight", 1, t.shape[1]) if name == "weight" else None


_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
_CELL_MODES = {nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}  # cells pack their gates as RNNs do


def _rnn_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    mode = getattr(module, "mode", None) or next(
        (m for cls, m in _CELL_MODES.items() if isinstance(module, cls)), "RNN_TANH")
    kind = {"LSTM": "lstm", "GRU": "gru"}.get(mode, "rnn")
    gates = _RNN_GATES.get(mode, 1)
    if name.startswith("weight_hr"):  # LSTM projection (proj, hidden)
        return LayerParam(kind, "weight", t.shape[1], t.shape[0])
    if name.startswith("weight_"):
        return LayerParam(kind, "weight", t.shape[1], t.shape[0] // gates, blocks=gates)
    if name.startswith("bias_"):
        return LayerParam(kind, "bias", 0, blocks=gates)
    return None


def _mha_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    if name == "in_proj_weight":
        return LayerParam("mha", "weight", t.shape[1], t.shape[0] // 3, blocks=3)
    if name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
        return LayerParam("mha", "weight", t.shape[1], t.shape[0])
    if name == "in_proj_bias":
        return LayerParam("mha", "bias", 0, blocks=3)
    if name in ("bias_k", "bias_v"):
        return LayerParam("mha", "bias", 0)
    return None


def _norm_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    if name == "weight":
        return LayerParam("norm", "norm_weight", offset=_gain_offset(type(module)))
    return LayerParam("norm", "norm_bias") if name == "bias" else None


# ``(1.0 + self.weight...)`` or ``self.weight + 1.0`` in a norm's forward
_UNIT_OFFSET = re.compile(r"\b1(\.0)?\s*\+\s*self\.weight\b|\bself\.weight(\.float\(\))?\s*\+\s*1(\.0)?\b")


@functools.cache
def _gain_offset(cls: type) -> float:
    """1.0 for a norm class whose forward scales by ``1 + weight`` (Gemma, Qwen3-Next, Nemotron
    and a dozen more in transformers), else 0.0; read from the forward's source."""
    try:
        source = inspect.getsource(cls.forward)
    except (OSError, TypeError):
        return 0.0
    return 1.0 if _UNIT_OFFSET.search(source) else 0.0


# a hand-written norm class, named as norms are: RMSNorm, ScaleNorm, T5LayerNorm, LayerNorm2d
_NORM_CLASS = re.compile(r"Norm(\dd)?$")


def _named_norm(cls: type) -> LayerRule | None:
    """A class no rule knows whose name ends in ``Norm`` (LLaMA's reference ``RMSNorm``): a norm.
    Transformers' classes have a resolver of their own (:mod:`autoinit.layers_hf`)."""
    if cls.__module__.split(".", 1)[0] in PROVIDERS or not _NORM_CLASS.search(cls.__name__):
        return None
    return _named_norm_rule


def _named_norm_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    """Its 1-D ``weight`` a gain and ``bias`` a shift; a matrix by torch's convention."""
    return _norm_rule(module, name, t) if t.dim() == 1 else _fallback(name, t)


register_layer_kind(nn.Linear, _linear_rule)
register_layer_kind(nn.Bilinear, _bilinear_rule)
register_layer_kind(nn.modules.conv._ConvNd, _conv_rule)
register_layer_kind(nn.Embedding, _embedding_rule)
register_layer_kind(nn.EmbeddingBag, _embedding_rule)
register_layer_kind(nn.RNNBase, _rnn_rule)
register_layer_kind(nn.RNNCellBase, _rnn_rule)
register_layer_kind(nn.MultiheadAttention, _mha_rule)
for _cls in (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
):
    register_layer_kind(_cls, _norm_rule)


register_layer_resolver(_named_norm)


# learned tokens and position tables a model holds itself (timm's ViT, DeiT, Swin, BEiT)
_RAW_EMBEDDING = re.compile(r"(^|_)(cls|dist|reg|mask)_token$|pos_embed|position_embedding|"
                            r"position_bias_table$")


def _raw_embedding(name: str, t: torch.Tensor) -> LayerParam | None:
    """A learned token or position table held by a module without a rule: an embedding."""
    if t.dim() >= 2 and _RAW_EMBEDDING.search(name):
        return LayerParam("embedding", "weight", 1, t.shape[-1])
    return None


def _fallback(name: str, t: torch.Tensor) -> LayerParam | None:
    """torch's convention: ``(out, in, *k)`` for 2+ dims; 1-D tensors named ``bias*`` are biases.

    Other 1-D tensors of unknown modules (PReLU's slopes, a LayerScale's ``gamma``) are left
    alone; a hand-written norm's gain is a norm's when its class is named ``...Norm``.
    """
    if t.dim() >= 2:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(t)
        return LayerParam("unknown", "weight", fan_in, fan_out)
    return LayerParam("unknown", "bias", 0) if name.startswith("bias") else None


_warned_types: set[str] = set()


_WRAPPERS = (nn.DataParallel, nn.parallel.DistributedDataParallel)  # hold the model as .module


def eager(model: nn.Module) -> nn.Module:
    """The module ``torch.compile(model)``, ``nn.DataParallel(model)`` or
    ``DistributedDataParallel(model)`` wraps (through any nesting of them), else ``model``.
    autoinit describes, names and initializes a wrapped model through it (it shares the
    parameters), so a scheme carries the same parameter names, and draws the same weights, with
    and without the wrapper (no ``_orig_mod.`` or ``module.`` prefix); and forward hooks
    registered after a compiled graph was traced do not fire in the graph.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> eager(torch.compile(net)) is net and eager(nn.DataParallel(net)) is net
        True
    """
    while True:
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
        elif isinstance(model, _WRAPPERS):
            model = model.module
        else:
            return model


def describe_params(
    model: nn.Module,
    *,
    include_frozen: bool = False,
    only: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
) -> list[ParamSpec]:
    """Every initializable parameter of ``model``, in registration order.

    Tied parameters appear once, under their first name (a table an embedding shares is described
    as the embedding's, whichever module comes first). Frozen parameters
    (``requires_grad=False``) are left out unless ``include_frozen``. ``only`` and ``exclude``
    are regular expressions matched (``re.search``) against full parameter names.
    Parameters of modules no rule knows are described by torch's convention, with one warning
    per module class; their specs have ``known=False``. Complex parameters are left alone, with
    one warning each. A tensor under ``torch.nn.utils.parametrize`` is described by its
    module's rule through its original (``spectral_norm``'s, ``weight_norm``'s direction); an
    ``orthogonal`` one is left alone.
    """
    model = eager(model)
    only_re = _compile_patterns(only, "only")
    exclude_re = _compile_patterns(exclude, "exclude")
    seen: set[int] = set()
    specs: list[ParamSpec] = []
    embeddings = _embedding_tables(model)
    for module_name, module in model.named_modules():
        for local, tensor in module.named_parameters(recurse=False):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            name = f"{module_name}.{local}" if module_name else local
            if isinstance(tensor, nn.parameter.UninitializedParameter):
                raise ConfigError(
                    f"parameter {name!r} of lazy module {type(module).__name__} is not "
                    "materialized; run one batch through the model first"
                )
            if not (tensor.requires_grad or include_frozen):
                continue
            if only_re and not any(p.search(name) for p in only_re):
                continue
            if exclude_re and any(p.search(name) for p in exclude_re):
                continue
            if tensor.is_complex():
                _warn_once(f"complex {name}", f"parameter {name!r} is complex; autoinit's "
                           "families draw real values, so it is left as it is")
                continue
            if tensor.requires_grad and (hooked := _hooked_weight(module)):  # frozen: left alone
                raise ConfigError(
                    f"module {module_name!r} uses {hooked[0]}, whose forward hook keeps its "
                    f"weight outside the parameters, where it cannot be copied; {hooked[1]}"
                )
            owner, as_name = embeddings.get(id(tensor), (module, local))  # a tied table: the embedding's
            if isinstance(module, parametrize.ParametrizationList):
                if not _drawn_original(module, local):
                    continue
                owner, as_name = _parametrized(model, module_name)
            rule = _rule_for(owner)
            fact = rule(owner, as_name, tensor) if rule else _raw_embedding(as_name, tensor)
            known = fact is not None
            if fact is None and rule is None:
                fact = _fallback(as_name, tensor)
                if fact is not None:  # a parameter left alone assumes nothing
                    _warn_once(type(owner).__name__, _unknown(owner, name))
            if fact is None:
                continue
            specs.append(
                ParamSpec(
                    **vars(_packed(fact, name, owner)),
                    name=name,
                    module_name=module_name,
                    module_type=type(module).__name__,
                    shape=tuple(tensor.shape),
                    known=known,
                )
            )
    return specs


def _embedding_tables(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """Each embedding table's tensor -> (its embedding, its name there): a table tied to an output
    layer registered before the embedding is still described as the embedding it is."""
    return {id(t): (m, local) for m in model.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)
            for local, t in m.named_parameters(recurse=False)}


# the module of an old hook that recomputes a weight before every forward -> what to do instead
_HOOKS = {"torch.nn.utils.spectral_norm": "use torch.nn.utils.parametrizations.spectral_norm "
                                          "instead",
          "torch.nn.utils.weight_norm": "use torch.nn.utils.parametrizations.weight_norm instead",
          "torch.nn.utils.prune": "search before pruning, or make the pruning permanent "
                                  "(torch.nn.utils.prune.remove) first"}


def _hooked_weight(module: nn.Module) -> tuple[str, str] | None:
    """``(hook's module, advice)`` when ``module`` carries an old, hook-based spectral norm,
    weight norm or pruning: it recomputes ``weight`` from ``weight_orig`` (``weight_g``,
    ``weight_v``; ``weight_orig`` and ``weight_mask``) before every forward and holds it as a
    plain tensor that cannot be copied."""
    return next(((type(h).__module__, _HOOKS[type(h).__module__])
                 for h in module._forward_pre_hooks.values() if type(h).__module__ in _HOOKS),
                None)


def _drawn_original(plist: parametrize.ParametrizationList, local: str) -> bool:
    """Whether an original of a parametrized tensor takes a family's draw: not under
    ``orthogonal`` (orthogonal whatever its original holds) and not weight norm's magnitude
    ``original0`` (:func:`autoinit.apply.apply_scheme` sets it to the drawn direction's norm)."""
    if any(isinstance(p, parametrizations._Orthogonal) for p in plist):
        return False
    return not (local == "original0" and isinstance(plist[0], parametrizations._WeightNorm))


def _parametrized(model: nn.Module, list_name: str) -> tuple[nn.Module, str]:
    """The module holding a parametrized tensor and the tensor's name, from the name of its
    ``ParametrizationList`` (``<module>.parametrizations.<tensor>``)."""
    holder, _, tensor = list_name.rpartition(".")
    return model.get_submodule(holder.rpartition(".")[0]), tensor


def _packed(fact: LayerParam, name: str, module: nn.Module) -> LayerParam:
    blocks = next((b for p, (b, kind) in _PACKED.items() if p.search(name) and isinstance(module, kind)),
                  None)
    if blocks is None or fact.blocks != 1:
        return fact
    if fact.param_type == "weight" and fact.fan_out % blocks:
        raise ConfigError(f"parameter {name!r} is registered as {blocks} packed blocks, but its "
                          f"output size {fact.fan_out} does not split into {blocks}")
    return replace(fact, blocks=blocks, fan_out=fact.fan_out // blocks)


def _unknown(module: nn.Module, name: str) -> str:
    return (f"no layer rule for {type(module).__name__} (parameter {name!r}); assuming torch's "
            "(out, in, *kernel) convention. Describe it with autoinit.register_layer_kind.")


def _warn_once(key: str, message: str) -> None:
    """Warn (at ``describe_params``' caller) the first time ``key`` comes up in this process."""
    if key not in _warned_types:
        _warned_types.add(key)
        warnings.warn(message, stacklevel=3)


def _compile_patterns(patterns: Iterable[str] | str | None, field: str) -> list[re.Pattern]:
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p))
        except (re.error, TypeError) as exc:
            raise ConfigError(f"{field} pattern must be a valid regular expression, got {p!r}: "
                              f"{exc}") from None
    return compiled

