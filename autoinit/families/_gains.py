"""Activation gains: the factor that keeps a signal's variance through a nonlinearity."""

from __future__ import annotations

import math

from autoinit.errors import ConfigError

# torch.nn.init.calculate_gain's values; gelu, silu and elu use ReLU's (they are close to it
# for the positive half that carries most of the variance).
GAINS: dict[str, float] = {
    "linear": 1.0,
    "sigmoid": 1.0,
    "tanh": 5.0 / 3.0,
    "relu": math.sqrt(2.0),
    "leaky_relu": math.sqrt(2.0 / (1 + 0.01**2)),
    "selu": 3.0 / 4.0,
    "gelu": math.sqrt(2.0),
    "silu": math.sqrt(2.0),
    "elu": math.sqrt(2.0),
}


def gain_of(nonlinearity: str) -> float:
    """The gain for ``nonlinearity``.

    Example:
        >>> round(gain_of("tanh"), 4)
        1.6667
    """
    try:
        return GAINS[nonlinearity]
    except KeyError:
        raise ConfigError(
            f"nonlinearity must be one of {sorted(GAINS)}, got {nonlinearity!r}"
        ) from None
