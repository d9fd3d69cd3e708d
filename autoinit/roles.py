"""Roles: where each layer sits in the network, and the activation that follows it.

Roles are ``embedding``, ``input``, ``hidden``, ``residual_out`` (the last layer of a residual
branch), ``attn_qkv``, ``attn_out``, ``rnn_ih``, ``rnn_hh``, ``norm`` and ``head`` (the layer
that feeds the output). They come from a ``torch.fx`` trace when the model traces (residual adds,
the activation after each layer, execution order), and from layer kinds, names and registration
order when it does not. A residual branch's last layer also records ``branch_layers``, the layers
with weights on its branch (the ``m`` of Fixup's ``L^(-1/(2m-2))``, a layer applied twice counted
twice; 0 where the trace cannot tell), and ``calls``, the branches it ends in one forward (a
block applied three times ends three). Libraries whose models neither trace nor follow torch's names (Hugging
Face transformers) add rules by parameter name with :func:`register_role_rule`, and say how often
a shared block runs (ALBERT's, from its config) with :func:`register_calls_rule`; the first rule
that answers wins.

Example:
    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> [(l.module_name, l.role, l.nonlinearity) for l in assign_roles(net, describe_params(net))
    ...  if l.param_type == "weight"]
    [('0', 'input', 'relu'), ('2', 'hidden', 'relu'), ('4', 'head', 'linear')]
"""

from __future__ import annotations

import contextlib
import operator
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import fx, nn

from autoinit.layers import (
    PROVIDERS,
    ParamSpec,
    _load_provider,
    _named_norm_rule,
    _norm_rule,
    _rule_for,
    describe_params,
    eager,
)

__all__ = ["ROLES", "CallsRule", "Layer", "RoleRule", "assign_roles", "describe_model", "layer_of",
           "register_calls_rule", "register_role_rule"]

ROLES = (
    "embedding", "input", "hidden", "residual_out", "attn_qkv", "attn_out",
    "rnn_ih", "rnn_hh", "norm", "head",
)


@dataclass(frozen=True)
class Layer(ParamSpec):
    """A :class:`ParamSpec` with its role and the activation that follows its layer."""

    role: str = "hidden"
    nonlinearity: str = "linear"
    branch_layers: int = 0
    calls: int = 1  # the times a residual branch's last layer runs in one forward (shared blocks)


RoleRule = Callable[[nn.Module, ParamSpec], "tuple[str, str] | None"]
_ROLE_RULES: list[RoleRule] = []


def register_role_rule(rule: RoleRule) -> None:
    """Consult ``rule(model, spec)`` before autoinit's own: it returns ``(role, nonlinearity)``,
    or ``None`` to leave the parameter to the next rule.

    Example:
        >>> def gates(model, spec):
        ...     return ("hidden", "sigmoid") if spec.module_name == "my_gate" else None
        >>> register_role_rule(gates)
        >>> net = nn.Sequential(); net.my_gate = nn.Linear(2, 2)
        >>> [(l.role, l.nonlinearity) for l in describe_model(net)][0]
        ('hidden', 'sigmoid')
    """
    if not callable(rule):
        raise TypeError(f"rule must be callable, got {rule!r}")
    if rule not in _ROLE_RULES:
        _ROLE_RULES.append(rule)


CallsRule = Callable[[nn.Module, ParamSpec], "int | None"]
_CALLS_RULES: list[CallsRule] = []


def register_calls_rule(rule: CallsRule) -> None:
    """Consult ``rule(model, spec)`` before the trace for the residual branches a branch's last
    layer ends in one forward (its runs: a block shared by several layers, as ALBERT's, runs
    once per layer); it returns a positive int, or ``None`` to leave the parameter to the trace.

    Example:
        >>> class Looped(nn.Module):  # say a forward the trace cannot read runs it 3 times
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.looped_fc = nn.Linear(2, 2)
        ...     def forward(self, x):
        ...         return x + self.looped_fc(x)
        >>> def thrice(model, spec):
        ...     return 3 if spec.module_name.endswith("looped_fc") else None
        >>> register_calls_rule(thrice)
        >>> net = nn.Sequential(Looped(), nn.Linear(2, 1))
        >>> [(l.role, l.calls) for l in describe_model(net) if l.name == "0.looped_fc.weight"]
        [('residual_out', 3)]
    """
    if not callable(rule):
        raise TypeError(f"rule must be callable, got {rule!r}")
    if rule not in _CALLS_RULES:
        _CALLS_RULES.append(rule)


# An activation without a gain of its own takes the nearest known one: PReLU and RReLU a leaky
# ReLU's (their slopes start at 0.25 and average 0.23: gains 1.37 and 1.38 against 1.41),
# Hardswish and Mish SiLU's, Hardsigmoid sigmoid's, CELU ELU's, ReLU6 and Softplus ReLU's.
# Others (Hardtanh, Softsign, GLU, LogSigmoid, the shrinks) are unknown: a layer before one is
# followed by ``linear``. LeakyReLU's own slope is not read (0.2 has gain 1.39, 0.01's is used).
_ACT_MODULES: dict[type, str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid", nn.GELU: "gelu", nn.SiLU: "silu", nn.SELU: "selu", nn.ELU: "elu",
    nn.Mish: "silu", nn.Softplus: "relu", nn.PReLU: "leaky_relu", nn.RReLU: "leaky_relu",
    nn.Hardswish: "silu", nn.Hardsigmoid: "sigmoid", nn.CELU: "elu",
}
_ACT_FUNCS = {
    F.relu: "relu", torch.relu: "relu", F.relu_: "relu", torch.relu_: "relu", F.relu6: "relu",
    F.leaky_relu: "leaky_relu", F.prelu: "leaky_relu", F.rrelu: "leaky_relu",
    torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.hardsigmoid: "sigmoid", F.gelu: "gelu", F.silu: "silu", F.mish: "silu",
    F.hardswish: "silu", F.selu: "selu", F.elu: "elu", F.celu: "elu", F.softplus: "relu",
}
_ACT_METHODS = {"relu": "relu", "relu_": "relu", "tanh": "tanh", "tanh_": "tanh",
                "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_ADDS = {operator.add, operator.iadd, torch.add}
# a low-rank adapter (LoRA: y = W x + B A x beside a frozen W; PEFT's, loralib's and hand-written
# ones by these names): B ends a branch added to the layer's output (zero in the paper, so that the
# adapted model starts as the pretrained one: the skipinit preset), A feeds B with no activation
_ADAPTER_OUT = re.compile(r"(^|\.)lora_(B|b|up)(\.|$)")
_ADAPTER_IN = re.compile(r"(^|\.)lora_(A|a|down)(\.|$)")
_NORM_FUNCS = {F.layer_norm, F.group_norm, F.batch_norm, F.instance_norm, F.rms_norm}
_QKV = re.compile(r"(^|\.)(q|k|v|qkv|query|key|value|c_attn)(_proj)?$")
_PASS_THROUGH = {nn.Dropout, nn.Identity, nn.Flatten}
# methods and functions that only move values about (channels-last blocks, Swin's windows)
_SHAPE_ONLY = {"permute", "reshape", "view", "transpose", "contiguous", "flatten", torch.permute,
               torch.reshape, torch.transpose, torch.flatten, torch.roll}
# functions applying a layer's weight as ``f(x, weight, ...)`` (a layer used through its weight)
_WEIGHT_FUNCS = {F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d,
                 F.conv_transpose3d, operator.matmul, torch.matmul}  # matmul: ``x @ w.t()``
_WEIGHTED = (nn.Linear, nn.modules.conv._ConvNd)
_PARAMETRIZED = re.compile(r"(^|\.)parametrizations\.[^.]+$")
_NOT_LAYERS = (nn.Embedding, nn.EmbeddingBag, nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)


def describe_model(model: nn.Module, *, include_frozen: bool = False,
                   only: Iterable[str] | str | None = None,
                   exclude: Iterable[str] | str | None = None) -> list[Layer]:
    """:func:`describe_params` followed by :func:`assign_roles` (keywords go to the former)."""
    return assign_roles(model, describe_params(model, include_frozen=include_frozen, only=only,
                                               exclude=exclude))


def assign_roles(model: nn.Module, specs: list[ParamSpec]) -> list[Layer]:
    """Give every spec a role and a following activation."""
    model = eager(model)
    for module in model.modules():  # a library's role rules, also where its classes hold no
        _load_provider(module)      # parameter of their own (BERT's classifier: all torch layers)
    graph = _trace(model)
    order = graph.order if graph else [n for n, _ in model.named_modules()]
    rank = {name: i for i, name in enumerate(order)}
    # Every module holding a matrix counts for "which layer is last", also when its weight is
    # tied to an embedding or frozen (and so not among the specs).
    owners = [layer_of(n) for n, m in model.named_modules()
              if not isinstance(m, _NOT_LAYERS) and any(p.dim() >= 2 for p in m.parameters(False))]
    layers = sorted(owners, key=lambda n: rank.get(n, len(rank)))
    first_param_module = min((layer_of(s.module_name) for s in specs),
                             key=lambda n: rank.get(n, len(rank)), default=None)
    modules = dict(model.named_modules())
    fallback_act = _dominant_activation(model)
    out = []
    for s in specs:
        at = replace(s, module_name=layer_of(s.module_name))
        role, act = next((r for r in (rule(model, s) for rule in _ROLE_RULES) if r), None) or \
            _role_of(at, modules, graph, layers, first_param_module, fallback_act)
        branch = graph.branch_layers.get(at.module_name, 0) if graph and role == "residual_out" else 0
        calls = (_ruled_calls(model, s) or _calls(at.module_name, graph)) \
            if role in ("residual_out", "attn_out") else 1
        out.append(Layer(**vars(s), role=role, nonlinearity=act, branch_layers=branch, calls=calls))
    return out


def layer_of(module_name: str) -> str:
    """The layer a module belongs to: a parametrized tensor's ``ParametrizationList``
    (``<layer>.parametrizations.<tensor>``, ``torch.nn.utils.parametrize``) belongs to its layer.

    Example:
        >>> layer_of("enc.0.parametrizations.weight"), layer_of("enc.0")
        ('enc.0', 'enc.0')
    """
    return _PARAMETRIZED.sub("", module_name)


def _role_of(s: ParamSpec, modules: dict[str, nn.Module], graph: _Graph | None, layers: list[str],
             first_module: str | None, fallback_act: str) -> tuple[str, str]:
    if s.kind == "norm":  # the last layer of a branch (a ResNet's bn2): its gain is the branch's
        ends = graph is not None and s.module_name in graph.residual
        return ("residual_out" if ends else "norm"), "linear"
    if s.kind == "embedding":
        return "embedding", "linear"
    if s.kind in ("lstm", "gru", "rnn"):
        local = s.local_name
        role = "rnn_ih" if "_ih" in local else "rnn_hh"
        module = modules.get(s.module_name)
        act = "relu" if getattr(module, "nonlinearity", "tanh") == "relu" else "tanh"
        return role, act if s.kind == "rnn" else "linear"
    if s.kind == "mha":
        return "attn_qkv", "linear"
    name = s.module_name
    parent = modules.get(name.rsplit(".", 1)[0] if "." in name else "")
    if name.rsplit(".", 1)[-1] == "out_proj" and isinstance(parent, nn.MultiheadAttention):
        into_norm = graph is not None and name.rsplit(".", 1)[0] in graph.into_norm_end
        return ("hidden" if into_norm else "attn_out"), "linear"  # a norm after it ends the branch
    if _ADAPTER_OUT.search(s.name):
        return "residual_out", "linear"
    if _ADAPTER_IN.search(s.name):
        return "hidden", "linear"
    if _QKV.search(name):
        return "attn_qkv", "linear"
    seen = graph is not None and name in graph.traced
    act = graph.activation.get(name, "linear") if seen else fallback_act
    last = layers and name == layers[-1] and not (graph is not None and graph.tied_readout)
    if last or (seen and name in graph.outputs):
        return "head", act if seen else "linear"
    if seen and name in graph.residual:  # beside a q/k/v projection: the attention's output
        siblings = (n for n in modules if n.rpartition(".")[0] == name.rpartition(".")[0])
        return ("attn_out" if any(_QKV.search(n) for n in siblings) else "residual_out"), act
    if not seen and re.search(r"(^|\.)(linear2|fc2|c_proj|o_proj|down_proj|w2)$", name):
        return "residual_out", "linear"
    return ("input" if name == first_module else "hidden"), act


def _ruled_calls(model: nn.Module, spec: ParamSpec) -> int | None:
    return next((c for c in (rule(model, spec) for rule in _CALLS_RULES) if c), None)


def _calls(name: str, graph: _Graph | None) -> int:
    """The residual branches the layer ``name`` ends in one forward: its calls that the trace sees
    end one; for a layer inside a module the trace does not enter (an
    ``nn.TransformerEncoderLayer``, an ``nn.MultiheadAttention``'s ``out_proj``), the calls of
    the nearest module around it that the trace calls; 1 where neither is known."""
    if graph is None or name in graph.traced:
        return max(graph.calls[name], 1) if graph else 1
    parts = name.split(".")
    around = (".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1))
    return next((graph.runs[m] for m in around if m in graph.runs), 1)


@dataclass
class _Graph:
    order: list[str]
    activation: dict[str, str]
    residual: set[str]
    traced: set[str]  # modules that are nodes of the graph (not hidden inside a leaf)
    branch_layers: dict[str, int]  # a residual branch's last layer -> layers with weights on it
    outputs: set[str]  # modules whose result the model returns (a tuple's members too)
    into_norm_end: set[str | None] = field(default_factory=set)  # modules a branch's last norm takes
    calls: Counter[str] = field(default_factory=Counter)  # a branch's last layer -> its runs
    runs: Counter[str] = field(default_factory=Counter)  # a module the graph calls -> its calls
    tied_readout: bool = False  # the output computed from a called layer's weight (no head layer)


class _LayerTracer(fx.Tracer):
    """Traces into every container; stops at modules without children and at known layers."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return _rule_for(m) is not None or not any(True for _ in m.children())


def _trace(model: nn.Module) -> _Graph | None:
    """Execution order, following activations and residual-branch outputs from an fx trace.

    Tries a trace into every container first, then torch's default (``torch.nn`` modules are
    leaves). Submodules of a leaf take the leaf's place in the order, in registration order. A
    model that does not trace as a whole gets the graphs of its parts that do
    (:func:`_traced_parts`).
    """
    traced = None
    for tracer in (_LayerTracer(), fx.Tracer()):
        try:  # the model put back after each attempt: a failed one leaves no proxies to the next
            with _model_kept(model), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = tracer.trace(model)  # the graph alone: no module compiled from it
            break
        except Exception:  # noqa: BLE001 - a model that does not trace falls back to heuristics
            continue
    if traced is None:
        return _traced_parts(model)
    modules = dict(model.named_modules())
    order: list[str] = []
    for node in traced.nodes:
        if node.op == "call_module":
            prefix = f"{node.target}."
            order += [node.target] + [n for n in modules if n.startswith(prefix)]
        elif node.op == "get_attr":  # a parameter used in a forward (``x @ self.w``) where it is used
            owner = layer_of(node.target.rpartition(".")[0])
            if owner not in order:
                order.append(owner)
    graph = _Graph(order, {}, set(), set(), {}, set())
    ends: set[fx.Node] = set()  # a module called again (ALBERT's shared block) ends more branches
    for node in traced.nodes:
        if node.op != "call_module":
            continue
        graph.traced.add(node.target)
        act = next((a for user in _downstream(node, modules, through_norms=True)
                    if (a := _activation_of(user, modules))), None)
        if act and node.target not in graph.activation:
            graph.activation[node.target] = act
        for user in _downstream(node, modules):
            if user.op == "output":
                graph.outputs.add(node.target)
            skip = _skip_operand(user, node, modules) if _is_add(user) else None
            if skip is not None:
                ends.add(node)
                graph.residual.add(node.target)
                graph.branch_layers[node.target] = _weighted_layers(node, skip, modules)
                params = list(modules[node.target].parameters())
                if params and all(p.dim() < 2 for p in params):  # a norm (not a dropout) ends it
                    graph.into_norm_end |= {_module_before(a, modules) for a in node.all_input_nodes}
    graph.tied_readout = _tied_readout(traced, modules, graph.traced)
    calls = Counter(node.target for node in ends)
    for owner, uses in _functional_uses(traced, modules, graph.traced):
        graph.traced.add(owner)
        act = next((a for user in _downstream(uses[0], modules, through_norms=True)
                    if (a := _activation_of(user, modules))), None)
        if act:
            graph.activation[owner] = act
        for use in uses:
            for user in _downstream(use, modules):
                if user.op == "output":
                    graph.outputs.add(owner)
                skip = _skip_operand(user, use, modules) if _is_add(user) else None
                if skip is not None:  # the use itself is one of the branch's layers
                    calls[owner] += 1
                    graph.residual.add(owner)
                    graph.branch_layers[owner] = _weighted_layers(use, skip, modules) + 1
                    break
    graph.calls = calls
    graph.runs = Counter(node.target for node in traced.nodes if node.op == "call_module")
    return graph


def _functional_uses(traced: fx.Graph, modules: dict, called: set[str]
                     ) -> Iterator[tuple[str, list[fx.Node]]]:
    """A layer the graph never calls whose weight a function applies (a masked linear written
    in its parent, ``F.linear(x, self.fc.weight * self.mask, self.fc.bias)``): the layer and
    those calls in graph order, which stand for the layer's outputs. A layer the graph calls
    keeps its calls (a tied autoencoder's ``F.linear(h, self.enc.weight.t())`` is not the
    encoder's output)."""
    position = {node: i for i, node in enumerate(traced.nodes)}
    for node in traced.nodes:
        owner = layer_of(node.target.rpartition(".")[0]) if node.op == "get_attr" else ""
        if owner and node.target.endswith(".weight") and owner not in called and isinstance(
                modules.get(owner), _WEIGHTED) and (uses := _weight_uses(node, modules)):
            yield owner, sorted(uses, key=position.__getitem__)


def _tied_readout(traced: fx.Graph, modules: dict, called: set[str]) -> bool:
    """Whether the model's output is computed from the weight of a layer it also calls, with no
    layer after that use: a language model's ``(h @ self.wte.weight.t())[:, -1]``, a tied
    autoencoder's ``F.linear(h, self.enc.weight.t())``. The output layer is then that layer (an
    embedding, an input layer), not the last one called."""
    output = next((n for n in traced.nodes if n.op == "output"), None)
    if output is None:
        return False
    feeding = _ancestors(output)
    return any(use in feeding and not any(_holds_matrix(n, modules) for n in _descendants(use) & feeding)
               for node in traced.nodes
               if node.op == "get_attr" and layer_of(node.target.rpartition(".")[0]) in called
               for use in _weight_uses(node, modules))


def _descendants(node: fx.Node) -> set[fx.Node]:
    """The nodes computed from ``node``."""
    return _reach(node.users, lambda n: n.users)


def _holds_matrix(node: fx.Node, modules: dict) -> bool:
    return node.op == "call_module" and any(p.dim() >= 2 for p in modules[node.target].parameters())


def _with_bias(use: fx.Node, owner: str) -> fx.Node:
    """``use`` plus the layer's own bias where the forward adds it next (``x @ w.t() + b``)."""
    add = next(iter(use.users)) if len(use.users) == 1 else None
    if add is not None and _is_add(add) and any(
            isinstance(a, fx.Node) and a.op == "get_attr" and a.target == f"{owner}.bias" for a in add.args):
        return add
    return use


def _weight_uses(weight: fx.Node, modules: dict) -> list[fx.Node]:
    """The calls that apply ``weight`` (through a mask, a transpose or a reshape) as the weight
    of a linear map or a convolution (their second argument), each with the layer's bias where
    the forward adds it next."""
    uses, frontier = [], [weight]
    for _ in range(4):
        nxt = []
        for node in frontier:
            for user in node.users:
                if user.op == "call_function" and user.target in _WEIGHT_FUNCS and \
                        len(user.args) > 1 and user.args[1] is node:
                    uses.append(_with_bias(user, weight.target.rpartition(".")[0]))
                elif _is_pass_through(user, modules) or (user.op == "call_method" and user.target == "t"):
                    nxt.append(user)
        frontier = nxt
    return uses


def _traced_parts(model: nn.Module) -> _Graph | None:
    """The graphs of the children that trace (of their children where they do not), merged under
    their names, in registration order: a forward that branches on the data (``if x.mean() > 0``)
    around blocks that trace keeps their activations and residual branches. What the model
    returns stays unknown (no part's output is the model's); ``None`` where no part traces, and
    for a model of a library with role rules of its own (Hugging Face: its names tell, and its
    deep models would be traced block by block for nothing)."""
    if type(model).__module__.split(".", 1)[0] in PROVIDERS:
        return None
    parts = [(name, graph) for name, child in model.named_children()
             if _rule_for(child) is None and any(True for _ in child.children())
             and (graph := _trace(child)) is not None]
    if not parts:
        return None
    merged = _Graph([n for n, _ in model.named_modules()], {}, set(), set(), {}, set())
    for name, graph in parts:
        merged.activation |= {f"{name}.{k}": v for k, v in graph.activation.items()}
        merged.residual |= {f"{name}.{k}" for k in graph.residual}
        # a part's output may end a residual branch in the untraced parent: its role is left to
        # the names, as for a model that does not trace at all (nanoGPT's mlp.c_proj)
        merged.traced |= {f"{name}.{k}" for k in graph.traced - graph.outputs}
        merged.branch_layers |= {f"{name}.{k}": v for k, v in graph.branch_layers.items()}
        merged.into_norm_end |= {k and f"{name}.{k}" for k in graph.into_norm_end}
        merged.calls.update({f"{name}.{k}": v for k, v in graph.calls.items()})
        merged.runs.update({f"{name}.{k}": v for k, v in graph.runs.items()})
    return merged


@contextlib.contextmanager
def _model_kept(model: nn.Module) -> Iterator[None]:
    """The model as it was: a trace runs ``forward`` on the real modules, and a forward that
    updates a buffer in place (a step counter, a running mean) or sets an attribute (a weight
    created on the first call, a memory kept between calls) would leave it changed, or holding
    the trace's proxies."""
    saved = [(module, dict(vars(module)),
              [(d, dict(d)) for d in (module._parameters, module._buffers, module._modules)])
             for module in model.modules()]
    values = [(buf, buf.detach().clone()) for module in model.modules()
              for buf in module._buffers.values() if buf is not None]
    try:
        yield
    finally:
        for module, attributes, dicts in saved:
            vars(module).clear()
            vars(module).update(attributes)
            for d, entries in dicts:
                d.clear()
                d.update(entries)
        with torch.no_grad():
            for buf, value in values:
                buf.copy_(value)


def _downstream(node: fx.Node, modules: dict, depth: int = 8, *,
                through_norms: bool = False) -> Iterator[fx.Node]:
    """Nodes reached from ``node`` through at most ``depth`` parameter-free, shape-only steps;
    ``through_norms`` also through norms (the activation after ``conv -> BN -> ReLU`` is ReLU:
    a norm rescales, the nonlinearity still follows; a residual add, never looked through, comes
    first in ``conv -> BN -> add -> ReLU``)."""
    frontier = list(node.users)
    for _ in range(depth):
        nxt = []
        for user in frontier:
            yield user
            if _activation_of(user, modules) or _is_pass_through(user, modules) or (
                    through_norms and _is_norm(user, modules)):
                nxt.extend(user.users)
        frontier = nxt


def _is_norm(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return _rule_for(modules[node.target]) in (_norm_rule, _named_norm_rule)
    return node.op == "call_function" and node.target in _NORM_FUNCS


def _activation_of(node: fx.Node, modules: dict) -> str | None:
    if node.op == "call_module":
        return _ACT_MODULES.get(type(modules[node.target]))
    if node.op == "call_function":
        return _ACT_FUNCS.get(node.target)
    if node.op == "call_method":
        return _ACT_METHODS.get(node.target)
    return None


def _is_pass_through(node: fx.Node, modules: dict) -> bool:
    """A step that keeps a layer's output what it is: dropout, identity, reshapes, and (timm's
    blocks) a parameter-free or gain-only module of one input (``DropPath``, ``LayerScale``) or
    a product with a learned scale (``x.mul(self.gamma)``) or a number (a Neural-ODE step's
    ``dt * f(h)``, Conformer's half-step ``0.5 * ff(x)``); a norm layer is not one."""
    if node.op == "call_module":
        module = modules[node.target]
        return type(module) in _PASS_THROUGH or (
            len(node.all_input_nodes) == 1 and type(module) not in _ACT_MODULES
            and _rule_for(module) is None and all(p.dim() < 2 for p in module.parameters()))
    if node.op not in ("call_function", "call_method"):
        return False
    if node.target in _SHAPE_ONLY or node.target is F.dropout:
        return True
    return node.target in (operator.mul, torch.mul, "mul") and any(
        _is_learned_constant(a) if isinstance(a, fx.Node) else isinstance(a, (int, float))
        for a in node.args)


def _is_learned_constant(node: fx.Node) -> bool:
    """A value computed from parameters alone (no input reaches it): a learned scale."""
    return node.op == "get_attr" or (node.op != "placeholder" and bool(node.all_input_nodes) and all(
        n.op != "placeholder" for n in _ancestors(node)))


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in _ADDS) or (
        node.op == "call_method" and node.target in ("add", "add_")
    )


def _skip_operand(add: fx.Node, branch_layer: fx.Node, modules: dict) -> fx.Node | None:
    """Another operand of ``add`` that is an ancestor of the branch (a skip connection), if any;
    an operand that is the skip through pass-through steps (timm's ``self.shortcut(x)``, an
    ``nn.Identity``) counts as the skip. Else a projection shortcut (torchvision's
    ``downsample``, a 1x1 conv and a norm): an operand forking from the branch's input with
    fewer layers with weights than the branch. Not a sum whose operands meet only in a shape read
    (``self.proj(x) + self.pos(torch.arange(x.size(1)))``), nor one the model returns (wide &
    deep: ``sigmoid(self.deep(x) + self.wide(x))``, two readouts)."""
    ancestors = _ancestors(branch_layer)
    others = [_source(a, modules) for a in add.args if isinstance(a, fx.Node)
              and branch_layer not in _ancestors(a) and a is not branch_layer]
    skip = next((a for a in others if a in ancestors), None)
    if skip is not None or any(user.op == "output" for user in _downstream(add, modules)):
        return skip
    data = _ancestors(branch_layer, through_metadata=False)
    return next((a for a in others if data & _ancestors(a, through_metadata=False)
                 and _weighted_layers(a, branch_layer, modules)
                 < _weighted_layers(branch_layer, a, modules)), None)


def _module_before(node: fx.Node, modules: dict) -> str | None:
    """The module whose output ``node`` is, through pass-through steps and a tuple's item
    (``nn.MultiheadAttention(...)[0]``); ``None`` where none is."""
    node = _source(node, modules)
    if node.op == "call_function" and node.target is operator.getitem:
        node = _source(node.args[0], modules)
    return node.target if node.op == "call_module" else None


def _source(node: fx.Node, modules: dict) -> fx.Node:
    while _is_pass_through(node, modules) and len(node.all_input_nodes) == 1:
        node = node.all_input_nodes[0]
    return node


def _weighted_layers(branch_layer: fx.Node, skip: fx.Node, modules: dict) -> int:
    """Calls of modules holding a matrix between the skip's source and ``branch_layer``
    (inclusive): a layer applied twice on the branch is two of its layers."""
    shared = _ancestors(skip) | {skip}
    nodes = (_ancestors(branch_layer) | {branch_layer}) - shared
    return sum(_holds_matrix(n, modules) for n in nodes)


def _ancestors(node: fx.Node, *, through_metadata: bool = True) -> set[fx.Node]:
    """The nodes ``node`` is computed from; without ``through_metadata``, a shape, dtype or device
    read (``x.size(1)``, ``x.shape``) is one, but not the tensor it reads."""
    return _reach(node.all_input_nodes, lambda n: n.all_input_nodes
                  if through_metadata or not _reads_metadata(n) else ())


def _reach(start: Iterable[fx.Node], step: Callable[[fx.Node], Iterable[fx.Node]]
           ) -> set[fx.Node]:
    """Every node reached from ``start`` by ``step`` (``start`` included)."""
    seen: set[fx.Node] = set()
    stack = list(start)
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(step(n))
    return seen


def _reads_metadata(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target in ("size", "dim")) or (
        node.op == "call_function" and node.target is getattr
        and node.args[1:2] in (("shape",), ("dtype",), ("device",), ("ndim",)))


def _dominant_activation(model: nn.Module) -> str:
    counts = Counter(_ACT_MODULES[type(m)] for m in model.modules() if type(m) in _ACT_MODULES)
    for m in model.modules():  # nn.TransformerEncoderLayer keeps its activation as a function
        act = getattr(m, "activation", None)
        if callable(act) and act in _ACT_FUNCS:
            counts[_ACT_FUNCS[act]] += 1
    return counts.most_common(1)[0][0] if counts else "linear"
