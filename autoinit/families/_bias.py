"""Bias rules: how a layer's bias (or a norm layer's beta) is set."""

from __future__ import annotations

import torch

from autoinit.errors import ConfigError

__all__ = ["BIAS_RULES", "bias_values", "check_bias_rule"]

BIAS_RULES: dict[str, str] = {
    "zeros": "all zeros",
    "constant": "every entry equals the value (e.g. 0.01 for ReLU layers)",
    "normal": "N(0, value²) (small_normal's 0.001 by default)",
    "forget_gate": "LSTM only: the value on the forget-gate block of bias_ih, zeros elsewhere",
    "default": "what the module's reset_parameters() draws",
}


def check_bias_rule(rule: str) -> None:
    """Raise :class:`ConfigError` unless ``rule`` is one of :data:`BIAS_RULES`."""
    if rule not in BIAS_RULES:
        raise ConfigError(f"bias rule must be one of {sorted(BIAS_RULES)}, got {rule!r}")


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
    if rule == "zeros":
        return torch.zeros(shape)
    if rule == "constant":
        return torch.full(shape, float(value))
    if rule == "normal":
        return torch.empty(shape).normal_(0.0, float(value), generator=generator)
    if rule == "forget_gate":
        if kind != "lstm":
            raise ConfigError(f"bias rule 'forget_gate' needs an LSTM layer, got a {kind} layer")
        out = torch.zeros(shape)
        if "_ih" in param_name.rsplit(".", 1)[-1]:
            hidden = shape[0] // 4  # gate order i, f, g, o
            out[hidden : 2 * hidden] = float(value)
        return out
    raise ConfigError(f"bias rule {rule!r} is applied by the module's own reset, not here")
