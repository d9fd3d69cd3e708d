"""Successive-halving rungs for the probes, and how well consecutive rungs agree on the ranking.

With ``rungs=3`` a search's probes are scored at ``probe_steps``, ``3·probe_steps`` and
``9·probe_steps`` (50 → 150 → 450 with ``probe_steps=50``): ``probe_steps`` is the first rung.
With ``cooldown > 0`` each rung's score is annealed (see :mod:`autoinit.probe`; the default
is a constant rate); Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` (reduction factor
3) keeps a search trial past a rung only while its score is in the top third of the scores that
rung has seen, so about two thirds stop at each rung. Baselines report at every rung too (they
set the bar) and are never stopped. The selection round re-runs its candidates at the longest
rung.

How far a short probe can be trusted is measured on the search itself: the Spearman rank
correlation between the scores at consecutive rungs, over the trials that reached both.

Example:
    >>> rung_steps(50, 3)
    (50, 150, 450)
    >>> agreement = rank_agreement([[[50, 1.0], [150, 0.5]], [[50, 2.0], [150, 0.7]],
    ...                             [[50, 3.0], [150, 0.6]], [[50, 4.0]]])
    >>> agreement[0].lower, agreement[0].upper, agreement[0].trials, agreement[0].spearman
    (50, 150, 3, 0.5)
    >>> agreement[0].describe()
    '50→150 steps: 0.50 (3 trials)'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import optuna

from autoinit.settings import check_option

__all__ = ["REDUCTION", "RUNGS_ATTR", "RungAgreement", "make_pruner", "rank_agreement", "spearman",
           "rung_steps", "study_agreement"]

REDUCTION = 3  # each rung is 3x the last; the top third goes on
RUNGS_ATTR = "rung_scores"  # a trial's [[rung end, annealed score], ...]


def rung_steps(probe_steps: int, rungs: int) -> tuple[int, ...]:
    """The rung ends: ``probe_steps · 3^i`` for ``i < rungs``."""
    check_option("rungs", rungs)
    return tuple(probe_steps * REDUCTION**i for i in range(rungs))


def make_pruner(probe_steps: int) -> optuna.pruners.BasePruner:
    """Asynchronous successive halving from ``probe_steps``, keeping the top third per rung."""
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=probe_steps,
                                                  reduction_factor=REDUCTION,
                                                  min_early_stopping_rate=0)


@dataclass(frozen=True)
class RungAgreement:
    """The Spearman rank correlation of the scores at rung ends ``lower`` and ``upper`` over
    the ``trials`` that reached both (NaN with fewer than 3 or with constant scores)."""

    lower: int
    upper: int
    trials: int
    spearman: float

    def describe(self) -> str:
        value = "n/a" if math.isnan(self.spearman) else f"{self.spearman:.2f}"
        return f"{self.lower}→{self.upper} steps: {value} ({self.trials} trials)"


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho of two equally long score lists (ties take their mean rank); NaN when
    fewer than 3 pairs or one list is constant."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    from scipy.stats import spearmanr  # here: scipy.stats costs every search process ~1 s to import

    return float(spearmanr(a, b).statistic)


def rank_agreement(trial_rungs: Iterable[Sequence[Sequence[float]]]) -> tuple[RungAgreement, ...]:
    """The agreement between each pair of consecutive rungs, from each trial's
    ``[[rung end, score], ...]``; non-finite scores (diverged) are left out."""
    per_trial = [{int(step): float(v) for step, v in rungs if math.isfinite(float(v))}
                 for rungs in trial_rungs]
    ends = sorted({step for scores in per_trial for step in scores})
    out = []
    for lower, upper in zip(ends, ends[1:], strict=False):
        both = [(s[lower], s[upper]) for s in per_trial if lower in s and upper in s]
        rho = spearman([x for x, _ in both], [y for _, y in both])
        out.append(RungAgreement(lower, upper, len(both), rho))
    return tuple(out)


def study_agreement(trials: Iterable[optuna.trial.FrozenTrial]) -> tuple[RungAgreement, ...]:
    """:func:`rank_agreement` over the trials that recorded their rung scores."""
    return rank_agreement(t.user_attrs[RUNGS_ATTR] for t in trials if RUNGS_ATTR in t.user_attrs)
