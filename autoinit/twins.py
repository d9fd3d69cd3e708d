"""Twin trials: a trial whose initialized weights equal a finished trial's is not probed again.

Two schemes can give the same weights: LeCun and Kaiming under a linear gain (an LSTM's gates),
a scale moved on a group whose branch multiplier is 0, a step clipped back onto a bound. A probe
is a function of the weights, the learning rate and the probe's own settings (its batches and
seed are shared by every trial of a round), so a twin's probe would repeat its first's to the
last bit. The trial takes that result instead (the same value, curve and intermediate values)
at no probe step, says whose it is in ``user_attrs["same_weights_as"]``, and the selection
round re-runs only the first of them.

Example:
    >>> import torch, torch.nn as nn
    >>> net = nn.Linear(3, 2)
    >>> a = weights_digest(net, 1e-3, 100)
    >>> a == weights_digest(net, 1e-3, 100), a == weights_digest(net, 1e-2, 100)
    (True, False)
    >>> with torch.no_grad():
    ...     _ = net.bias.zero_()
    >>> a == weights_digest(net, 1e-3, 100)
    False
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

__all__ = ["DIGEST_ATTR", "TWIN_ATTR", "find_twin", "is_twin", "take_result", "twins_line",
           "weights_digest"]

DIGEST_ATTR = "weights_digest"  # the trial's initialized weights, learning rate and probe length
TWIN_ATTR = "same_weights_as"  # the number of the trial whose probe a twin took
_COPIED = ("curve", "rung_scores", "train_loss", "train_values", "cooldown_note")


def weights_digest(model: nn.Module, lr: float, steps: int) -> str:
    """A short hash of ``model``'s parameters and buffers (names, dtypes, shapes, every bit),
    with the learning rate and probe length that decide its probe."""
    h = hashlib.blake2b(f"{lr!r}/{steps}".encode(), digest_size=10)
    for name, tensor in model.state_dict(keep_vars=False).items():
        flat = tensor.detach().reshape(-1).cpu()
        h.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)};".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def find_twin(trial: optuna.Trial) -> FrozenTrial | None:
    """The first complete trial of ``trial``'s study with its weights digest, or ``None``."""
    digest = trial.user_attrs.get(DIGEST_ATTR)
    if digest is None:
        return None
    done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return next((t for t in sorted(done, key=lambda t: t.number)
                 if t.user_attrs.get(DIGEST_ATTR) == digest and t.value is not None
                 and math.isfinite(t.value) and t.number != trial.number), None)


def take_result(trial: optuna.Trial, twin: FrozenTrial) -> float:
    """Give ``trial`` its ``twin``'s probe: evidence, intermediate values and score."""
    first = twin.user_attrs.get(TWIN_ATTR, twin.number)
    trial.set_user_attr(TWIN_ATTR, first)
    for key in _COPIED:
        if key in twin.user_attrs:
            trial.set_user_attr(key, twin.user_attrs[key])
    for step, value in sorted(twin.intermediate_values.items()):
        trial.report(value, step)  # recorded, never handed to the pruner: the twin passed it
    assert twin.value is not None
    return twin.value


def is_twin(trial: FrozenTrial) -> bool:
    """Whether ``trial`` took an earlier trial's probe."""
    return TWIN_ATTR in trial.user_attrs


def twins_line(trials: Sequence[FrozenTrial]) -> str | None:
    """The summary's line naming every twin and its first, or ``None`` when there is none."""
    by_number = {t.number: t for t in trials}

    def label(number: int) -> str:
        t = by_number.get(number)
        return (t.user_attrs.get("baseline") if t is not None else None) or f"search #{number}"

    pairs = [f"{label(t.number)} = {label(t.user_attrs[TWIN_ATTR])}" for t in trials if is_twin(t)]
    if not pairs:
        return None
    return f"not probed again, the same weights as an earlier trial: {', '.join(pairs)}"
