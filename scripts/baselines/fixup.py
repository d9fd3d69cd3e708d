"""Fixup, SkipInit and T-Fixup: data-free initializations for networks with residual branches.

* **Fixup** (Zhang, Dauphin & Ma, ICLR 2019): He-initialize every Conv/Linear layer, zero the
  classification layer and the last layer of every residual branch, and scale the other layers
  of each branch by ``L^(-1/(2m-2))`` (``L`` branches, ``m`` layers per branch); biases 0.
* **SkipInit** (De & Smith, NeurIPS 2020): every branch starts as the identity's zero addend;
  emulated by zeroing the weight and bias of each branch's last layer, the rest left as it is.
* **T-Fixup** (Huang et al., ICML 2020) for post-LN Transformers built on
  ``nn.MultiheadAttention``: Xavier-uniform for every matrix, embeddings ``N(0, d^-1/2)``
  scaled by ``(9N)^(-1/4)``; in the ``N`` encoder blocks the attention value and output
  projections and the FFN weights scaled by ``0.67·N^(-1/4)``, in the ``N`` decoder blocks by
  ``(9N)^(-1/4)``; biases 0.

Branches come from :func:`autoinit.describe_model`: a ``residual_out`` layer ends a branch; the
branch is the Conv/Linear layers under the same parent module since the previous branch end.
What the papers also change in the architecture (Fixup's scalar multipliers and biases,
SkipInit's learnable gate, T-Fixup's removal of LayerNorm and warmup) is out of reach of an
initializer and is not done.

Example:
    >>> import torch.nn as nn
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)
    ...     def forward(self, x):
    ...         return x + self.fc2(self.fc1(x).relu())
    >>> net = nn.Sequential(nn.Linear(4, 8), Block(), Block(), nn.Linear(8, 2))
    >>> facts = init_fixup(net, [], None, seed=0)
    >>> facts["branches"], facts["layers_per_branch"], round(facts["branch_scale"], 3)
    (2, 2, 0.707)
"""

from __future__ import annotations

import math
from collections import Counter

import torch
from torch import nn

import autoinit

from ._common import LossFn, Timer, local_rng, not_applicable

__all__ = ["init_fixup", "init_skipinit", "init_tfixup"]

_MATRIX_KINDS = ("linear", "in_out", "conv", "conv_transpose")
_BRANCH_ROLES = ("input", "hidden", "residual_out")
_GAINS = {"relu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh", "sigmoid": "sigmoid", "selu": "selu",
          "linear": "linear", "gelu": "relu", "silu": "relu", "elu": "relu"}


def _parent(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _matrix_layers(model: nn.Module) -> list:
    return [spec for spec in autoinit.describe_model(model)
            if spec.param_type == "weight" and spec.kind in _MATRIX_KINDS and spec.blocks == 1]


def _branches(layers: list) -> list[list]:
    """Each residual branch: its matrix layers, in order, ending with the ``residual_out`` layer."""
    branches, start = [], {}
    for i, spec in enumerate(layers):
        if spec.role != "residual_out":
            continue
        parent = _parent(spec.module_name)
        members = [s for s in layers[start.get(parent, 0):i + 1]
                   if _parent(s.module_name) == parent and s.role in _BRANCH_ROLES]
        start[parent] = i + 1
        branches.append(members)
    return branches


def _modules(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def _zero_layer(module: nn.Module) -> None:
    nn.init.zeros_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def init_skipinit(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *,
                  seed: int, budget: int | None = None) -> dict:
    """SkipInit as an initialization: zero the last layer (weight and bias) of every residual branch."""
    timer = Timer()
    branches = _branches(_matrix_layers(model))
    if not branches:
        return not_applicable("skipinit", "no residual_out layer: autoinit.describe_model found no "
                                          "residual branch")
    modules = _modules(model)
    with torch.no_grad():
        for branch in branches:
            _zero_layer(modules[branch[-1].module_name])
    return {"method": "skipinit", "applies": True, "branches": len(branches), "wall_s": timer.seconds}


def init_fixup(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *, seed: int,
               budget: int | None = None) -> dict:
    """Fixup's initialization rules (without its scalar multipliers and biases); data-free."""
    timer = Timer()
    layers = _matrix_layers(model)
    branches = _branches(layers)
    if not branches:
        return not_applicable("fixup", "no residual_out layer: autoinit.describe_model found no residual "
                                       "branch")
    modules = _modules(model)
    n_branches = len(branches)
    m = Counter(len(b) for b in branches).most_common(1)[0][0]
    scales = {}
    for branch in branches:
        k = len(branch)
        factor = n_branches ** (-1.0 / (2 * k - 2)) if k > 1 else 1.0
        scales.update({s.module_name: factor for s in branch[:-1]})
    with local_rng(seed), torch.no_grad():
        for spec in layers:
            module = modules[spec.module_name]
            gain = nn.init.calculate_gain(_GAINS.get(spec.nonlinearity, "relu"))
            nn.init.normal_(module.weight, 0.0, gain / math.sqrt(max(spec.fan_in, 1)))
            module.weight.mul_(scales.get(spec.module_name, 1.0))
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        ends = [b[-1].module_name for b in branches]
        heads = [s.module_name for s in layers if s.role == "head"]
        for name in ends + heads:
            _zero_layer(modules[name])
    return {"method": "fixup", "applies": True, "branches": n_branches, "layers_per_branch": m,
            "branch_scale": n_branches ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0,
            "zeroed": ends + heads, "wall_s": timer.seconds}


def _attention_blocks(model: nn.Module) -> dict[str, list[str]]:
    """Parent module name -> names of its ``nn.MultiheadAttention`` children."""
    blocks: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            blocks.setdefault(_parent(name), []).append(name)
    return blocks


def _is_decoder(block: nn.Module, attentions: list[str]) -> bool:
    return isinstance(block, nn.TransformerDecoderLayer) or len(attentions) > 1


def _scale_value_and_output(attn: nn.MultiheadAttention, factor: float) -> None:
    d = attn.embed_dim
    if attn.in_proj_weight is not None:
        attn.in_proj_weight[2 * d:].mul_(factor)
    else:
        attn.v_proj_weight.mul_(factor)
    attn.out_proj.weight.mul_(factor)


def _xavier_attention(attn: nn.MultiheadAttention) -> None:
    d = attn.embed_dim
    if attn.in_proj_weight is not None:
        for i in range(3):  # q, k and v are separate (d, d) matrices packed together
            nn.init.xavier_uniform_(attn.in_proj_weight[i * d:(i + 1) * d])
    else:
        for w in (attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight):
            nn.init.xavier_uniform_(w)
    for b in (attn.in_proj_bias, attn.out_proj.bias, attn.bias_k, attn.bias_v):
        if b is not None:
            nn.init.zeros_(b)
    nn.init.xavier_uniform_(attn.out_proj.weight)


def init_tfixup(model: nn.Module, batches: list | None = None, loss_fn: LossFn | None = None, *, seed: int,
                budget: int | None = None) -> dict:
    """T-Fixup for post-LN Transformers made of ``nn.MultiheadAttention`` blocks; data-free."""
    timer = Timer()
    blocks = _attention_blocks(model)
    if not blocks:
        return not_applicable("tfixup", "no nn.MultiheadAttention: T-Fixup here needs Transformer blocks")
    modules = _modules(model)
    if any(getattr(modules[b], "norm_first", False) for b in blocks):
        return not_applicable("tfixup", "pre-LN blocks (norm_first=True): T-Fixup is derived for post-LN")
    decoders = {b for b, a in blocks.items() if _is_decoder(modules[b], a)}
    n_enc, n_dec = len(blocks) - len(decoders), len(decoders)
    enc_scale = 0.67 * n_enc ** -0.25 if n_enc else None
    dec_scale = (9 * n_dec) ** -0.25 if n_dec else None
    emb_scale = (9 * (n_dec or n_enc)) ** -0.25
    attn_names = [a for names in blocks.values() for a in names]
    in_attention = tuple(f"{a}." for a in attn_names)
    with local_rng(seed), torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, nn.MultiheadAttention):
                _xavier_attention(module)
            elif isinstance(module, nn.Linear) and not name.startswith(in_attention):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
        for emb in embeddings:
            nn.init.normal_(emb.weight, 0.0, emb.embedding_dim ** -0.5)
            emb.weight.mul_(emb_scale)
        for block, names in blocks.items():
            factor = dec_scale if block in decoders else enc_scale
            for a in names:
                _scale_value_and_output(modules[a], factor)
            for sub, module in modules[block].named_modules():
                full = f"{block}.{sub}" if block else sub
                if isinstance(module, nn.Linear) and not full.startswith(in_attention):
                    module.weight.mul_(factor)
    return {"method": "tfixup", "applies": True, "encoder_blocks": n_enc, "decoder_blocks": n_dec,
            "encoder_scale": enc_scale, "decoder_scale": dec_scale, "embedding_scale": emb_scale,
            "embeddings": len(embeddings), "wall_s": timer.seconds}
