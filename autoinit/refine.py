"""Stage 2 of a search: refine the best named candidate's continuous parameters.

Stage 1 is the queue of named candidates (baselines and presets). Once one has completed, every
sampled trial keeps the best named candidate's categorical choices (families, bias rules) and
samples only the continuous ones (scales, branch multipliers, depth exponents, bias values, the
learning rate) around it: first by perturbing the best trial that shares those choices, then,
with enough such trials, with ``inner`` (a sampler for small continuous spaces) fitted on those
trials alone. With an ``inner`` that never samples relatively (``RandomSampler``, autoinit's
default, see docs/search_strategy.md) every value is such a step from the best trial so far: a
simple evolution strategy. With ``axes=True`` stage 2 first moves one group's scale at a time
(×2, then ×½, group after group) from the best trial, every other value kept, and repeats a move
while it improves: a coordinate search over the scales, the dimension a random step in all of
them at once rarely isolates.
Before any named candidate completes (workers starting together) ``first`` samples the whole
space.

Example:
    >>> import optuna
    >>> study = optuna.create_study(sampler=RefineSampler(optuna.samplers.RandomSampler(0),
    ...                                                   optuna.samplers.RandomSampler(0), 0))
    >>> study.enqueue_trial({"family": "a", "scale": 1.0}, user_attrs={"baseline": "a"})
    >>> def objective(trial):
    ...     family = trial.suggest_categorical("family", ["a", "b"])
    ...     return trial.suggest_float("scale", 0.25, 4, log=True) + (family == "b")
    >>> study.optimize(objective, n_trials=4)
    >>> {t.params["family"] for t in study.trials}
    {'a'}
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from autoinit.twins import is_twin

__all__ = ["RefineSampler", "best_named"]


def best_named(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    """The complete named candidate (``user_attrs["baseline"]``) with the lowest value."""
    named = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("baseline")
             and t.value is not None and math.isfinite(t.value)]
    return min(named, key=lambda t: (t.value, t.number), default=None)


@dataclass
class _Focus:
    """What one stage-2 trial samples around."""

    pinned: dict[str, Any]  # the best named candidate's categorical choices
    center: dict[str, Any]  # the params of the best complete trial that shares them
    space: dict[str, BaseDistribution]  # the continuous parameters
    view: _SharedChoices
    axis: tuple[str, float] | None = None  # a coordinate move: (scale parameter, factor)


class RefineSampler(BaseSampler):
    """Samples stage 2 around the best named candidate (see the module docstring).

    Args:
        inner: fitted on the trials sharing the best candidate's choices, once it has enough of
            them (its own ``n_startup_trials``); until then the continuous values are the best
            such trial's, each moved by a normal step of ``spread`` times its range (log range
            for log-scaled parameters), clipped to the bounds (so a multiplier at 0 often stays
            exactly 0).
        first: samples whole trials while no named candidate has completed.
        seed: seeds the perturbations (with the trial number).
        axes: begin stage 2 with one-at-a-time moves of each ``*.scale`` parameter (×2, ×½),
            a move that improves made again from there, skipping a move the bounds cancel or a
            point already tried.
    """

    def __init__(self, inner: BaseSampler, first: BaseSampler, seed: int | None,
                 spread: float = 0.15, axes: bool = False) -> None:
        self.inner, self.first, self.seed, self.spread = inner, first, seed, spread
        self.axes = axes
        self._focus: dict[int, _Focus | None] = {}

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
        self.first.reseed_rng()

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        base = best_named(study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))  # noqa: SLF001
        if base is None:
            self._focus[trial._trial_id] = None  # noqa: SLF001
            self.first.before_trial(study, trial)
            return
        pinned = {n: v for n, v in base.params.items()
                  if isinstance(base.distributions[n], CategoricalDistribution)}
        view = _SharedChoices(study, pinned)
        done = [t for t in view._get_trials(states=(TrialState.COMPLETE,))  # noqa: SLF001
                if t.value is not None and math.isfinite(t.value)]
        center = min(done, key=lambda t: (t.value, t.number))
        space = {n: d for n, d in base.distributions.items() if n not in pinned}
        move = _next_axis(center, space, view) if self.axes else None
        if move is not None:  # recorded: the next move continues it or follows the plan
            study._storage.set_trial_system_attr(trial._trial_id, AXIS_ATTR, list(move))  # noqa: SLF001
        axis = None if move is None else move[:2]
        self._focus[trial._trial_id] = _Focus(pinned, dict(center.params), space, view, axis)  # noqa: SLF001
        self.inner.before_trial(view, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        focus = self._focus.get(trial._trial_id)  # noqa: SLF001
        if focus is None:
            return self.first.infer_relative_search_space(study, trial)
        return dict(focus.space)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        focus = self._focus.get(trial._trial_id)  # noqa: SLF001
        if focus is None:
            return self.first.sample_relative(study, trial, search_space)
        return self.inner.sample_relative(focus.view, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        focus = self._focus.get(trial._trial_id)  # noqa: SLF001
        if focus is None:
            return self.first.sample_independent(study, trial, param_name, param_distribution)
        if param_name in focus.pinned:
            return focus.pinned[param_name]
        if focus.axis is not None and param_name in focus.center:
            name, factor = focus.axis
            value = focus.center[param_name]
            return _clipped(value * factor, param_distribution) if name == param_name else value
        rng = np.random.default_rng([self.seed or 0, trial.number, zlib.crc32(param_name.encode())])
        if param_name in focus.center and not isinstance(param_distribution,
                                                         CategoricalDistribution):
            return _near(focus.center[param_name], param_distribution, rng, self.spread)
        return optuna.samplers.RandomSampler(int(rng.integers(2**31))).sample_independent(
            study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        focus = self._focus.pop(trial._trial_id, None)  # noqa: SLF001
        if focus is None:
            self.first.after_trial(study, trial, state, values)
        else:
            self.inner.after_trial(focus.view, trial, state, values)


AXIS_FACTORS = (2.0, 0.5)
AXIS_ATTR = "autoinit.axis"  # a coordinate move's (scale parameter, factor, index in the plan)


def _next_axis(center: FrozenTrial, space: dict[str, BaseDistribution], view: _SharedChoices
               ) -> tuple[str, float, int] | None:
    """The next coordinate move from ``center`` as (parameter, factor, index in the plan), or
    ``None`` once the plan is done. The plan is each scale parameter × each of
    :data:`AXIS_FACTORS`. A move that made the centre (the newest move, and the best trial) is
    made again from there while the bounds allow: a scale that wants ×4 gets it. Otherwise the
    plan's next move, skipping one the bounds cancel, one that lands on a point already tried,
    and the scales whose move from the centre gave its weights again (:mod:`autoinit.twins`)."""
    moves = [(n, f) for n in sorted(space) if n.endswith(".scale") for f in AXIS_FACTORS]
    trials = view._get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))  # noqa: SLF001
    tried = {tuple(sorted(t.params.items())) for t in trials}
    made = [t for t in trials if AXIS_ATTR in t.system_attrs]
    # a scale whose move from here gave the centre's weights again (a group under a branch
    # multiplier of 0) is not moved the other way either
    inert = {t.system_attrs[AXIS_ATTR][0] for t in made if is_twin(t)
             and all(v == center.params.get(n) for n, v in t.params.items()
                     if n != t.system_attrs[AXIS_ATTR][0])}

    def lands(name: str, factor: float) -> bool:
        if name not in center.params or name in inert:
            return False
        moved = _clipped(center.params[name] * factor, space[name])
        return moved != center.params[name] \
            and tuple(sorted({**center.params, name: moved}.items())) not in tried

    last = max(made, key=lambda t: t.number, default=None)
    if last is not None and last.number == center.number:
        name, factor, index = center.system_attrs[AXIS_ATTR]
        if lands(name, factor):
            return name, factor, index
    start = 1 + max((t.system_attrs[AXIS_ATTR][2] for t in made), default=-1)
    return next(((n, f, k) for k, (n, f) in enumerate(moves) if k >= start and lands(n, f)), None)


def _clipped(value: float, dist: BaseDistribution) -> float:
    return min(max(value, float(dist.low)), float(dist.high))


def _near(value: float, dist: BaseDistribution, rng: np.random.Generator, spread: float) -> float:
    """``value`` moved by a normal step of ``spread`` times the range, clipped, on the grid."""
    low, high = float(dist.low), float(dist.high)
    log = getattr(dist, "log", False)
    to, back = (math.log, math.exp) if log else (float, float)
    x = to(value) + rng.normal(0.0, spread * (to(high) - to(low)))
    x = min(max(back(x), low), high)
    step = getattr(dist, "step", None)
    if step is not None:
        x = low + round((x - low) / step) * step
        x = min(max(x, low), high)
    return x if isinstance(dist, FloatDistribution) else int(round(x))


class _SharedChoices:
    """The study as ``inner`` should see it: only the trials that made the pinned choices."""

    def __init__(self, study: optuna.Study, pinned: dict[str, Any]) -> None:
        self._study, self._pinned = study, pinned

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _shares(self, trial: FrozenTrial) -> bool:
        return all(trial.params.get(n, _MISSING) == v for n, v in self._pinned.items())

    def _get_trials(self, deepcopy: bool = False, states: Container[TrialState] | None = None,
                    use_cache: bool = False
                    ) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)  # noqa: SLF001
        return [t for t in trials if self._shares(t)]

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None
                   ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


_MISSING = object()
