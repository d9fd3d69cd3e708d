"""Whether the probes learned anything: the loss of a constant prediction as the floor of evidence.

A model that has learned nothing of its inputs can still predict the training targets'
frequencies (cross-entropy) or their mean (mean squared error): that constant prediction's
held-out loss is the *prior loss*. A probe whose held-out loss never gets
:data:`LEARNED_MARGIN` below it has learned nothing yet, and a ranking of such probes is noise
(an LSTM that must remember 100 steps, or the adding problem, in their first hundred steps).
Measured: no fixed preference breaks the tie well. chrono init, the fix for the first of those
(docs/benchmarks.md), ends 17× worse than Kaiming on the second (docs/search_cost.md).

So when no probe of a search learned:

- a search without a budget (nor a ``probe_steps``, ``timeout`` or ``budget_steps`` of yours)
  runs its round again with probes twice as long, at most
  :data:`~autoinit.budget.MAX_LENGTHENING` times its first length (the longer probes cycle
  through the cached batches; on a storage each length is a study of its own,
  :func:`~autoinit.study.lengthened_name`, which a rerun resumes; :mod:`autoinit.search_rounds`);
- every search says so in its reason (:func:`nothing_learned`).

Only the default losses have a prior loss: a ``loss_fn`` of your own, your own ``train_step``
and ``score``, or a model trained on its own loss (:func:`autoinit.batches.own_loss`) turn this
off.

Example:
    >>> import torch
    >>> y = torch.tensor([0, 0, 0, 1])
    >>> batches = [(torch.zeros(4, 2), y)]
    >>> round(prior_loss(batches, batches, None), 3)  # counts 3, 1 smoothed: 2/3, 1/3
    0.579
    >>> learned(0.53, 0.579), learned(0.52, 0.579)
    (False, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from autoinit.batches import is_distribution, target_of
from autoinit.errors import ConfigError

__all__ = ["LEARNED_MARGIN", "best_loss", "learned", "lengthening", "nothing_learned",
           "prior_loss"]

LEARNED_MARGIN = 0.10  # learned: a held-out loss at least 10 % below the prior loss


def prior_loss(train: Sequence[Any], val: Sequence[Any], loss_fn: object) -> float | None:
    """The held-out loss of a constant prediction fit on the training targets: their
    frequencies (add-one smoothed; soft or one-hot float labels: their summed probabilities)
    under cross-entropy, each column's frequency of ones under ``"binary_cross_entropy"`` (the
    cross-entropy of two classes where one logit scores each target), their mean under mean
    squared error; ``None`` for a loss of your own, targets it cannot read, or a prior loss
    that is not positive."""
    if loss_fn not in (None, "cross_entropy", "mse", "binary_cross_entropy"):
        return None
    try:
        train_y = [target_of(b) for b in train]
        val_y = [target_of(b) for b in val]
        if not all(isinstance(y, torch.Tensor) for y in train_y + val_y):
            return None
        integer = not train_y[0].is_floating_point() and not train_y[0].is_complex()
        if loss_fn == "binary_cross_entropy":
            value = _binary_prior(train_y, val_y)
        elif loss_fn == "cross_entropy" or (loss_fn is None and integer):
            soft = not integer and all(is_distribution(y) for y in train_y + val_y)
            value = _cross_entropy_prior(train_y, val_y) if integer else \
                _soft_prior(train_y, val_y) if soft else None
        else:
            value = _mse_prior(train_y, val_y)
    except (ConfigError, RuntimeError, ValueError):  # ragged targets, mixed dtypes
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _cross_entropy_prior(train_y: list[torch.Tensor], val_y: list[torch.Tensor]) -> float | None:
    train = torch.cat([y.flatten().long().cpu() for y in train_y])
    val = torch.cat([y.flatten().long().cpu() for y in val_y])
    train, val = train[train >= 0], val[val >= 0]  # negative: ignored (torch's ignore_index)
    if not len(train) or not len(val):
        return None
    classes = int(max(train.max(), val.max())) + 1  # add-one smoothing over 0..the largest label
    seen, counts = torch.unique(train, return_counts=True)  # no array of `classes` counts
    place = torch.searchsorted(seen, val).clamp(max=len(seen) - 1)
    hits = torch.where(seen[place] == val, counts[place], 0).double() + 1
    return float(-(hits / (len(train) + classes)).log().mean())


def _soft_prior(train_y: list[torch.Tensor], val_y: list[torch.Tensor]) -> float:
    """The cross-entropy prior of class-probability targets: the training rows' summed
    probabilities, add-one smoothed (one-hot rows: the frequencies' prior)."""
    classes = train_y[0].shape[-1]
    train = torch.cat([y.reshape(-1, classes).double().cpu() for y in train_y])
    val = torch.cat([y.reshape(-1, classes).double().cpu() for y in val_y])
    counts = train.sum(0) + 1
    return float(-(val * (counts / counts.sum()).log()).sum(-1).mean())


def _binary_prior(train_y: list[torch.Tensor], val_y: list[torch.Tensor]) -> float:
    """The prior of 0/1 targets: each column's frequency of ones, add-one smoothed (a ``(B,)``
    target: one column, the two classes' cross-entropy prior)."""
    columns = train_y[0][0].numel() if train_y[0].dim() > 1 else 1
    train = torch.cat([y.reshape(-1, columns).double().cpu() for y in train_y])
    val = torch.cat([y.reshape(-1, columns).double().cpu() for y in val_y])
    p = (train.sum(0) + 1) / (len(train) + 2)
    return float(-(val * p.log() + (1 - val) * (1 - p).log()).mean())


def _mse_prior(train_y: list[torch.Tensor], val_y: list[torch.Tensor]) -> float:
    mean = torch.cat([y.double().cpu() for y in train_y]).mean(0)
    return float(((torch.cat([y.double().cpu() for y in val_y]) - mean) ** 2).mean())


def learned(loss: float, prior: float) -> bool:
    """Whether a held-out ``loss`` is at least :data:`LEARNED_MARGIN` below ``prior``."""
    return math.isfinite(loss) and loss <= (1 - LEARNED_MARGIN) * prior


def best_loss(trial: optuna.trial.FrozenTrial) -> float:
    """A complete trial's lowest held-out loss: its score or any point of its curve."""
    values = [trial.value, *(v for _, v in trial.user_attrs.get("curve", []))]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return min(finite) if finite else math.inf


def nothing_learned(trials: Iterable[optuna.trial.FrozenTrial], reruns: Iterable[float],
                    prior: float | None) -> str | None:
    """What to add to the reason when no complete trial's probe and no re-run learned (see the
    module's docstring), or ``None``."""
    if prior is None:
        return None
    losses = [best_loss(t) for t in trials if t.state == TrialState.COMPLETE] + list(reruns)
    finite = [v for v in losses if math.isfinite(v)]
    if not finite or any(learned(v, prior) for v in finite):
        return None
    return (f"no probe learned beyond predicting the training targets' frequencies or mean "
            f"(best held-out loss {min(finite):.4f} against {prior:.4f}; learning is "
            f"{LEARNED_MARGIN:.0%} below it): the probes could not rank the candidates")


def lengthening(trials: Iterable[optuna.trial.FrozenTrial], prior: float, steps: int) -> str:
    """What a search without a budget says when it lengthens its probes to ``steps``."""
    best = min((best_loss(t) for t in trials if t.state == TrialState.COMPLETE), default=math.inf)
    return (f"probes lengthened to {steps} steps: no probe of {steps // 2} steps learned beyond "
            f"predicting the training targets' frequencies or mean (best held-out loss "
            f"{best:.4f} against {prior:.4f})")
