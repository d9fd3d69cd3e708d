"""Bias rules: how a layer's bias (or a norm layer's beta) is set.

Gate rules (``forget_gate``, ``chrono``, ``update_gate``) write their offset on a recurrent
layer's ``bias_ih*`` and zeros on its ``bias_hh*``. PyTorch adds the two inside the gates these
rules touch (LSTM i and f, GRU z; only GRU's candidate n scales ``b_hn`` by r), so the sum is
what the gates see, and a group holding both biases (``"layer"`` or ``"global"`` grouping) gets
the offset once. In ``"role"`` grouping ``bias_ih`` sits in the ``rnn_ih`` group
and ``bias_hh`` in ``rnn_hh``: put the gate rule on ``rnn_ih`` and ``zeros`` on ``rnn_hh`` (with
``default`` there, the offset gets the module's own small uniform noise on top).

Gate orders are PyTorch's: LSTM ``i, f, g, o``; GRU ``r, z, n`` with ``h' = (1 - z) * n + z * h``,
so a positive update-gate (``z``) bias makes the unit keep its state.

Example:
    >>> g = torch.Generator().manual_seed(0)
    >>> bias_values((6,), "update_gate", 2.0, kind="gru", param_name="gru.bias_ih_l0",
    ...             generator=g).tolist()
    [0.0, 0.0, 2.0, 2.0, 0.0, 0.0]
    >>> fitting_bias_rules("gru")
    ['zeros', 'constant', 'normal', 'chrono', 'update_gate', 'default']
"""

from __future__ import annotations

import torch

from autoinit.errors import ConfigError

__all__ = ["BIAS_RULES", "GATES", "bias_values", "check_bias_rule", "fitting_bias_rules"]

BIAS_RULES: dict[str, str] = {
    "zeros": "all zeros",
    "constant": "every entry equals the value (e.g. 0.01 for ReLU layers)",
    "normal": "N(0, value²) (small_normal's 0.001 by default)",
    "forget_gate": "LSTM only: the value on the forget-gate block of bias_ih, zeros elsewhere",
    "chrono": "LSTM/GRU (Tallec & Ollivier 2018), value = T_max: forget (GRU: update) gate bias "
              "log U(1, T_max - 1) on bias_ih, LSTM input gate its negative, zeros elsewhere",
    "update_gate": "GRU only: the value on the update-gate (z) block of bias_ih, zeros elsewhere",
    "default": "what the module's reset_parameters() draws",
}

GATES: dict[str, tuple[str, ...]] = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
"""PyTorch's gate order inside a recurrent layer's packed weights and biases."""

_RULE_KINDS: dict[str, frozenset[str]] = {
    "forget_gate": frozenset({"lstm"}),
    "chrono": frozenset({"lstm", "gru"}),
    "update_gate": frozenset({"gru"}),
}
_ARTICLED = {"lstm": "an LSTM", "gru": "a GRU"}


def check_bias_rule(rule: str) -> None:
    """Raise :class:`ConfigError` unless ``rule`` is one of :data:`BIAS_RULES`."""
    if rule not in BIAS_RULES:
        raise ConfigError(f"bias rule must be one of {sorted(BIAS_RULES)}, got {rule!r}")


def fitting_bias_rules(kind: str) -> list[str]:
    """The bias rules that apply to a ``kind`` layer, in :data:`BIAS_RULES` order.

    Example:
        >>> fitting_bias_rules("linear")
        ['zeros', 'constant', 'normal', 'default']
    """
    return [r for r in BIAS_RULES if r not in _RULE_KINDS or kind in _RULE_KINDS[r]]


def bias_values(
    shape: tuple[int, ...],
    rule: str,
    value: float,
    *,
    kind: str,
    param_name: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """The values of a bias under ``rule`` (``"default"`` is handled by :mod:`autoinit.apply`).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> bias_values((8,), "forget_gate", 1.0, kind="lstm", param_name="bias_ih_l0",
        ...             generator=g).tolist()
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    check_bias_rule(rule)
    if rule in _RULE_KINDS:
        return _gate_bias(shape, rule, float(value), kind, param_name, generator)
    if rule == "zeros":
        return torch.zeros(shape)
    if rule == "constant":
        return torch.full(shape, float(value))
    if rule == "normal":
        return torch.empty(shape).normal_(0.0, float(value), generator=generator)
    raise ConfigError(f"bias rule {rule!r} is applied by the module's own reset, not here")


def _gate_bias(shape: tuple[int, ...], rule: str, value: float, kind: str, param_name: str,
               generator: torch.Generator) -> torch.Tensor:
    if kind not in _RULE_KINDS[rule]:
        layers = " or ".join(_ARTICLED[k] for k in sorted(_RULE_KINDS[rule], reverse=True))
        raise ConfigError(f"bias rule {rule!r} needs {layers} layer, got {param_name!r} of a "
                          f"{kind} layer")
    out = torch.zeros(shape)
    if "_ih" not in param_name.rsplit(".", 1)[-1]:  # bias_hh: the offset lives on bias_ih
        return out
    gates = GATES[kind]
    size = shape[0] // len(gates)

    def gate(name: str) -> slice:
        at = gates.index(name)
        return slice(at * size, (at + 1) * size)

    if rule == "forget_gate":
        out[gate("f")] = value
    elif rule == "update_gate":
        out[gate("z")] = value
    else:  # chrono
        if not value > 2.0:
            raise ConfigError(f"bias rule 'chrono' needs bias_value = T_max > 2 (the longest "
                              f"dependency, in steps), got {value!r} for {param_name!r}")
        forget = torch.empty(size).uniform_(1.0, value - 1.0, generator=generator).log_()
        if kind == "lstm":
            out[gate("f")] = forget
            out[gate("i")] = -forget
        else:  # GRU: z is the forget gate and 1 - z the input gate
            out[gate("z")] = forget
    return out
