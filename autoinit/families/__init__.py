"""Initializer families: a registry of named, seeded, in-place-free samplers.

Each family draws one block of a weight on CPU from an explicit ``torch.Generator`` and never
touches the global RNG. :mod:`autoinit.apply` splits packed weights into blocks (drawn in order
from one generator; :class:`Fans` says which block), transposes ``(in, out)`` layouts and writes
the values under ``torch.no_grad()``. A family states what it fits: parameter types
(``targets``), whether embeddings, and optionally layer ``kinds`` and ``roles``; a search offers
it only there, and :func:`autoinit.apply_scheme` refuses it on a layer of another kind.

Families:

- variance scaling (``_variance``): ``xavier_uniform``, ``xavier_normal``, ``kaiming_uniform``,
  ``kaiming_normal`` (option ``mode``), ``lecun_uniform``, ``lecun_normal``, ``trunc_normal``
  (option ``std``), ``small_normal``; ``dcgan`` and ``gamma_normal`` (``_dcgan``).
- structured (``_structured``): ``orthogonal``; ``identity`` (square or zero-padded identity,
  delta-orthogonal convolutions; on ``rnn_hh`` blocks it is IRNN, Le et al. 2015); ``zeros``;
  ``constant`` (norm gamma); ``pytorch_default`` and ``model_default`` (module-level).
- ``idinit`` (``_idinit``): IDInit's identity blocks tiled over non-square weights, at the
  centre tap of convolutions; deterministic.
- ``mimetic`` / ``mimetic_out`` (``_mimetic``): attention that starts with ``W_qᵀW_k ≈ αI`` and
  ``W_oW_v ≈ −βI`` (options ``alpha``, ``beta``, ``noise``, ``heads``); ``mimetic`` fits only a
  ``nn.MultiheadAttention`` packed ``in_proj_weight`` (role ``attn_qkv``), ``mimetic_out`` only
  its ``out_proj`` (role ``attn_out``).

Bias rules (``_bias``, :data:`BIAS_RULES`): ``zeros``, ``constant``, ``normal``, ``default``, and
for recurrent gates ``forget_gate`` (LSTM), ``update_gate`` (GRU) and ``chrono`` (LSTM and GRU,
Tallec & Ollivier 2018, the rule's value is ``T_max``); :func:`fitting_bias_rules` says which
apply to a layer kind.

Example:
    >>> import torch
    >>> from autoinit.families import Fans, get_family
    >>> w = get_family("orthogonal").sampler(Fans((4, 4), 4, 4), scale=1.0,
    ...                                        generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(w @ w.T, torch.eye(4), atol=1e-5)
    True
    >>> get_family("idinit").sampler(Fans((3, 2), 2, 3), scale=2.0, generator=None).tolist()
    [[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]
    >>> get_family("mimetic").fits("weight", "linear"), get_family("mimetic").fits("weight", "mha")
    (False, True)
    >>> b = bias_values((8,), "chrono", 100.0, kind="lstm", param_name="rnn.bias_ih_l0",
    ...                 generator=torch.Generator().manual_seed(0))
    >>> i, f, g, o = b.view(4, 2)  # LSTM gates: input = -forget, forget = log U(1, 99)
    >>> torch.equal(i, -f), bool((f > 0).all() and (f < 4.6).all()), g.tolist(), o.tolist()
    (True, True, [0.0, 0.0], [0.0, 0.0])
"""

from autoinit.families import (  # noqa: F401  (registers the built-ins)
    _dcgan,
    _idinit,
    _mimetic,
    _structured,
    _variance,
)
from autoinit.families._bias import BIAS_RULES, GATES, bias_values, check_bias_rule, fitting_bias_rules
from autoinit.families._gains import GAINS, gain_of
from autoinit.families._registry import Family, Fans, get_family, list_families, register_family

__all__ = [
    "BIAS_RULES",
    "GAINS",
    "GATES",
    "Family",
    "Fans",
    "bias_values",
    "gain_of",
    "check_bias_rule",
    "fitting_bias_rules",
    "get_family",
    "list_families",
    "register_family",
]
