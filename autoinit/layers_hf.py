"""Hugging Face transformers: layer kinds, roles and the model's own init for its models.

Imported by :mod:`autoinit.layers` the first time a model holds a module of ``transformers`` (so
only where transformers is installed and used). It registers:

- ``transformers.pytorch_utils.Conv1D`` (GPT-2) as a linear layer stored ``(in, out)``; GPT-2's
  fused ``attn.c_attn`` packs q, k and v (3 blocks), ``crossattention.c_attn`` k and v (2);
- every model's own norm classes (``LlamaRMSNorm``, ``T5LayerNorm``, ...) as norms, and the raw
  parameters of embedding modules (ViT's ``cls_token`` and ``position_embeddings``) as
  embeddings, a head's own output bias (BERT's ``cls.predictions.bias``) as a bias;
- roles by HF's module names (data, in :data:`ROLE_PATTERNS`): q/k/v (fused or separate)
  ``attn_qkv``, the attention output ``attn_out``, MLP up and gate ``hidden`` (followed by the
  config's activation; the up projection of a gated MLP is linear; wav2vec2's, HuBERT's and
  WavLM's ``intermediate_dense``), MLP down ``residual_out`` (``output_dense`` there too, and
  a Mamba mixer's ``out_proj``, ALBERT's ``ffn_output``),
  patch embedding ``input`` (ViT's and CLIP's), an audio model's convolutional front end
  (wav2vec2's, Whisper's) followed by the config's activation, task heads and CLIP's two projections ``head``,
  a pooler ``hidden`` followed by the config's pooler activation (tanh where it names none); a
  tied LM head is the embedding it is tied to, initialized once, and the tie is kept;
- the runs of ALBERT's shared layers, from its config: ``num_hidden_layers`` layers share
  ``num_hidden_groups`` groups, so each group's branches count once per layer it serves (the
  model does not trace; ``plan.depth`` counts branches as the forward runs them);
- a mixture's experts (``MixtralExperts``: matrices stacked ``(E, out, in)``, or ``(E, in, out)``
  in GPT-OSS and Llama 4) with fans per expert, one block each; its router as a linear layer;
  a Mamba mixer's ``A_log``, ``D`` and ``dt_bias`` (the structured S4D init) and RWKV's
  ``time_*`` tensors left alone;
- ``PreTrainedModel``'s ``_init_weights`` (through ``init_weights``, which also re-ties) as the
  model's own init, the ``model_default`` baseline.

Example:
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> from autoinit import describe_model
    >>> gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    >>> [(l.role, l.blocks, l.fan_in, l.fan_out) for l in describe_model(gpt2)
    ...  if l.name == "transformer.h.0.attn.c_attn.weight"]
    [('attn_qkv', 3, 32, 32)]
"""

from __future__ import annotations

import re

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.pytorch_utils import Conv1D

from autoinit.layers import (
    LayerParam,
    LayerRule,
    ParamSpec,
    _linear_rule,
    _norm_rule,
    register_layer_kind,
    register_layer_resolver,
    register_packed,
)
from autoinit.model_init import register_model_init
from autoinit.roles import register_calls_rule, register_role_rule

__all__ = ["ROLE_PATTERNS"]

ACT = "act"  # stands for the model config's activation in ROLE_PATTERNS
POOLER_ACT = "pooler_act"  # the config's pooler activation (DeBERTa's gelu), tanh where it has none

# (regex searched in the module name, role, following activation); first match wins.
ROLE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (r"(^|\.)(patch_embeddings\.projection|embeddings\.patch_embedding)$", "input", "linear"),
    # audio front ends: wav2vec2's (HuBERT's, WavLM's) conv stack, Whisper's F.gelu(conv(x))
    (r"(^|\.)(feature_extractor\.conv_layers\.0\.conv|encoder\.conv1)$", "input", ACT),
    (r"(^|\.)(feature_extractor\.conv_layers\.\d+\.conv|encoder\.conv2)$", "hidden", ACT),
    (r"(^|\.)(c_attn|q_attn|qkv|qkv_proj|query_key_value|Wqkv|q|k|v|query|key|value|"
     r"q_proj|k_proj|v_proj|q_lin|k_lin|v_lin)$", "attn_qkv", "linear"),
    (r"(attn\.c_proj|attention\.output\.dense|(Self|EncDec)Attention\.o|(^|\.)o_proj|"
     r"attention\.out_proj|attn\.out_proj|(^|\.)out_lin|(^|\.)(self_)?attention\.dense|"
     r"self_attn\.dense|attn\.Wo)$",
     "attn_out", "linear"),
    (r"(^|\.)(gate_proj|wi_0|w1)$", "hidden", ACT),
    (r"(^|\.)(up_proj|wi_1|w3)$", "hidden", "linear"),  # multiplied by act(gate)
    (r"(mlp\.c_fc|intermediate\.dense|(^|\.)fc1|(^|\.)wi|transform\.dense|ffn\.lin1|"
     r"(^|\.)dense_h_to_4h|(^|\.)intermediate_dense|(^|\.)fc_in|(^|\.)pwconv1|(^|\.)ffn)$",
     "hidden", ACT),
    (r"(mlp\.c_proj|(^|\.)output\.dense|(^|\.)down_proj|(^|\.)fc2|(^|\.)wo|(^|\.)w2|"
     r"ffn\.lin2|(^|\.)dense_4h_to_h|(^|\.)output_dense|mixer\.out_proj|(^|\.)fc_out|"
     r"mlp\.Wo|(^|\.)pwconv2|(^|\.)ffn_output)$", "residual_out", "linear"),
    (r"(^|\.)embedding_hidden_mapping_in$", "hidden", "linear"),  # ALBERT's, RemBERT's projection
    (r"(^|\.)pooler(\.dense)?$", "hidden", POOLER_ACT),  # ALBERT's and BigBird's: a bare Linear
    (r"(^|\.)(lm_head|classifier|score|qa_outputs|predictions|text_projection|visual_projection)$",
     "head", "linear"),  # CLIP's two towers end in a projection each
)
_COMPILED = tuple((re.compile(p), role, act) for p, role, act in ROLE_PATTERNS)
_CONFIG_ACTS = ("hidden_act", "activation_function", "dense_act_fn", "hidden_activation",
                "activation")
_POOLER_ACTS = ("pooler_hidden_act", "pooler_act")
_EMBEDDING_PARAM = re.compile(r"(token|embedding|embed)")


def _conv1d_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    if name == "weight":
        return LayerParam("linear", "weight", t.shape[0], t.shape[1], layout="in_out")
    return LayerParam("linear", "bias", t.shape[0]) if name == "bias" else None


def _raw_param_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    """Parameters an HF module holds itself: learned tokens and tables, a head's output bias."""
    if _EMBEDDING_PARAM.search(name):
        return LayerParam("embedding", "weight", 1, t.shape[-1])
    if name == "bias" and t.dim() == 1:
        return LayerParam("linear", "bias", 0)
    return None


def _experts_rule(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    """A mixture of experts' stacked matrices (Mixtral, Qwen-MoE, DeepSeek: ``(E, out, in)``
    for ``F.linear``; GPT-OSS, Llama 4: ``(E, in, out)`` for ``x @ W``): fans per expert, one
    block each. The layout is read from where the model's width sits: the input of
    ``gate_up_proj``, the output of ``down_proj``."""
    if t.dim() == 2 and "bias" in name:  # (E, out)
        return LayerParam("linear", "bias", 0, blocks=t.shape[0])
    if t.dim() != 3:
        return None
    width = getattr(module, "hidden_dim", None) or getattr(module, "hidden_size", None)
    experts, a, b = t.shape
    down = "down" in name or name == "w2"
    # where the width sits if stored (E, out, in): the input of gate_up, the output of down
    at, other = (a, b) if down else (b, a)
    in_out = width is not None and at != width and other == width
    fan_in, fan_out = (a, b) if in_out else (b, a)
    return LayerParam("linear", "weight", fan_in, fan_out, blocks=experts,
                      layout="experts_in_out" if in_out else "experts")


def _left_alone(module: nn.Module, name: str, t: torch.Tensor) -> LayerParam | None:
    """A Mamba mixer's own tensors (``A_log``, ``D``, ``dt_bias``: the state-space model's
    structured S4D init) and RWKV's time-mixing and decay tensors are left alone; their
    projections have their own rules."""
    return None


def _resolve(cls: type) -> LayerRule | None:
    if not cls.__module__.startswith("transformers."):
        return None
    if "Norm" in cls.__name__:  # every model names its own LayerNorm / RMSNorm class
        return _norm_rule
    if cls.__name__.endswith("Experts"):
        return _experts_rule
    if cls.__name__.endswith("Router"):  # a mixture's gate: (experts, width)
        return _linear_rule
    if (cls.__name__.endswith("Mixer") and "Mamba" in cls.__name__) or (
            cls.__name__.startswith("Rwkv") and cls.__name__.endswith(("Attention", "FeedForward"))):
        return _left_alone
    if cls.__name__.endswith(("Embeddings", "PredictionHead", "LMHead")):
        return _raw_param_rule
    return None


def _act_name(config: object, keys: tuple[str, ...] = _CONFIG_ACTS, default: str = "linear") -> str:
    act = next((getattr(config, k) for k in keys if isinstance(getattr(config, k, None), str)),
               default)
    act = act.lower()
    for prefix, name in (("gelu", "gelu"), ("silu", "silu"), ("swish", "silu"), ("relu", "relu"),
                         ("tanh", "tanh"), ("sigmoid", "sigmoid")):
        if act.startswith(prefix) or act.endswith(prefix):
            return name
    return "linear"


def _owner(model: nn.Module, module_name: str) -> PreTrainedModel | None:
    """The innermost Hugging Face model holding ``module_name``."""
    parts = module_name.split(".") if module_name else []
    for i in range(len(parts), -1, -1):
        candidate = model.get_submodule(".".join(parts[:i]))
        if isinstance(candidate, PreTrainedModel):
            return candidate
    return None


def _role(model: nn.Module, spec: ParamSpec) -> tuple[str, str] | None:
    if spec.kind in ("norm", "embedding"):
        return None
    owner = _owner(model, spec.module_name)
    if owner is None:
        return None
    if spec.module_type.endswith("Experts"):  # the experts' MLP: gate_up in, down out
        down = "down" in spec.local_name or spec.local_name == "w2"
        return ("residual_out", "linear") if down else ("hidden", _config_act(owner))
    for pattern, role, act in _COMPILED:
        if pattern.search(spec.module_name):
            if act == POOLER_ACT:
                return role, _act_name(owner.config.get_text_config(), _POOLER_ACTS, "tanh")
            return role, _config_act(owner) if act == ACT else act
    return None


_ALBERT_GROUP = re.compile(r"(^|\.)albert_layer_groups\.(\d+)\.")


def _shared_runs(model: nn.Module, spec: ParamSpec) -> int | None:
    """The runs of a layer of ALBERT's group ``g``: layer ``i`` of ``num_hidden_layers`` runs
    group ``int(i / (num_hidden_layers / num_hidden_groups))`` (``AlbertTransformer.forward``)."""
    found = _ALBERT_GROUP.search(spec.module_name)
    owner = _owner(model, spec.module_name) if found else None
    if owner is None:
        return None
    layers, groups = owner.config.num_hidden_layers, owner.config.num_hidden_groups
    return sum(int(i / (layers / groups)) == int(found.group(2)) for i in range(layers)) or None


def _config_act(owner: PreTrainedModel) -> str:
    return _act_name(owner.config.get_text_config())


def _own_init(model: nn.Module) -> None:
    """``init_weights`` from scratch: HF skips modules and tensors flagged as initialized."""
    for item in (*model.modules(), *model.parameters(), *model.buffers()):
        item.__dict__.pop("_is_hf_initialized", None)
    model.init_weights()


register_layer_kind(Conv1D, _conv1d_rule)
register_layer_resolver(_resolve)
register_packed(r"(^|\.)attn\.c_attn\.", 3, Conv1D)  # GPT-2's fused q/k/v (not nanoGPT's nn.Linear)
register_packed(r"(^|\.)crossattention\.c_attn\.", 2, Conv1D)
register_role_rule(_role)
register_calls_rule(_shared_runs)
register_model_init(PreTrainedModel, _own_init)
