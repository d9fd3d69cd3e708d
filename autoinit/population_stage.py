"""Stage 1 of a search as populations: the named candidates (baselines and presets) waiting in
the study are probed together when the first of them starts, and each trial then takes its own
result when Optuna starts it.

The trials themselves run as before, one at a time through ``study.optimize`` with every
callback (MLflow's child runs, progress, the stopping rules): a trial takes its scheme and
parameters from Optuna as usual, gets the same user attributes, intermediate values (replayed
from the probe's reports) and state as the sequential :class:`~autoinit.objective.Objective`
gives it. A named candidate is never pruned, so probing it ahead changes no decision; a study
stopped between trials leaves the rest waiting exactly as before (their results are dropped),
and a Ctrl-C during the population fails only the trial that was running, as before.

Example:
    >>> import optuna, torch, torch.nn as nn
    >>> from autoinit.objective import Objective
    >>> from autoinit.plan import ModelPlan
    >>> from autoinit.probe import ProbeConfig, ProbeData
    >>> from autoinit.space import SearchSpace
    >>> from autoinit.study import enqueue_pending
    >>> g = torch.Generator().manual_seed(0)
    >>> batches = [(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))]
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> plan, layers = ModelPlan.of(net), ModelPlan.of(net, "layer")
    >>> initial = {k: v.clone() for k, v in net.state_dict().items()}
    >>> obj = Objective(net, initial, plan, layers, ProbeData(batches * 4, batches),
    ...                 ProbeConfig(steps=4, eval_every=2), SearchSpace(), 1e-3, 0)
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> study = optuna.create_study()
    >>> enqueue_pending(study, plan, SearchSpace(), 1e-3, True)
    >>> study.optimize(NamedPopulation(obj, 4, None), n_trials=3)
    >>> [t.user_attrs["baseline"] for t in study.trials if t.state.is_finished()]
    ['pytorch_default', 'xavier_normal', 'kaiming_normal']
    >>> optuna.logging.set_verbosity(optuna.logging.INFO)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import FixedTrial, TrialState

from autoinit.errors import FAILURE, failure_reason
from autoinit.interrupt import INTERRUPTED
from autoinit.objective import Objective
from autoinit.population import Report, run_population
from autoinit.probe import ProbeResult
from autoinit.space import suggest_scheme
from autoinit.study import DONE, named_candidates
from autoinit.twins import DIGEST_ATTR

__all__ = ["NamedPopulation"]


@dataclass
class _Ahead:
    """A named candidate probed ahead of its trial."""

    result: ProbeResult
    attrs: dict  # what preparing it set (the LSUV rules)
    reports: list[tuple[int, float]]
    screened: bool
    seconds: float  # its preparation and its share of the population's time


@dataclass
class NamedPopulation:
    """The objective of a search whose named candidates are probed ``size`` at a time (see the
    module's docstring); every other trial goes to ``obj`` unchanged. ``n_trials`` bounds how
    many named candidates are probed ahead (the study's trials, finished ones included)."""

    obj: Objective
    size: int
    n_trials: int | None
    ahead: dict[str, _Ahead] = field(default_factory=dict)
    failed: str | None = None  # why the population failed: the named candidates run one by one

    def __call__(self, trial: optuna.Trial) -> float:
        name = trial.user_attrs.get("baseline")
        if name and name not in self.ahead and self.failed is None:
            try:
                self._probe_waiting(trial)
            except KeyboardInterrupt:  # Ctrl-C during the population: this trial runs again
                trial.set_user_attr(FAILURE, INTERRUPTED)
                raise
            except Exception as exc:  # noqa: BLE001 - then one at a time, as before
                self.failed = failure_reason(exc)
        found = self.ahead.pop(name, None) if name else None
        if found is None:  # not named, or not probed ahead: as before
            return self.obj(trial)
        try:
            return self._record(trial, found)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # recorded, then Optuna marks the trial failed
            trial.set_user_attr(FAILURE, failure_reason(exc))
            raise

    def _record(self, trial: optuna.Trial, found: _Ahead) -> float:
        start = time.perf_counter() - found.seconds
        obj = self.obj
        suggest_scheme(trial, obj.plan, obj.space, obj.lr, obj.seed)  # its parameters, recorded
        for key, value in found.attrs.items():
            trial.set_user_attr(key, value)
        report = obj.reporter(trial)  # the pruner's should_prune too: successive halving
        for step, value in found.reports:  # records each rung a trial completes
            report(step, value)
        return obj.record(trial, found.result, found.screened, start)

    def _probe_waiting(self, trial: optuna.Trial) -> None:
        """Probe ``trial``'s named candidate and those waiting after it, together."""
        study = trial.study
        trials = study.get_trials(deepcopy=False)
        waiting = [t.user_attrs.get("baseline") for t in trials
                   if t.state == TrialState.WAITING and t.user_attrs.get("baseline")]
        names = [trial.user_attrs["baseline"], *waiting]
        if self.n_trials is not None:
            done = sum(t.state in DONE for t in trials)
            names = names[:max(1, self.n_trials - done)]
        params = named_candidates(self.obj.plan, self.obj.space, self.obj.lr)
        prepared, models = [], []
        # a twin of a finished or an earlier member is left to its own trial, which takes its
        # first's result (autoinit.twins)
        seen = {t.user_attrs.get(DIGEST_ATTR) for t in trials if t.state == TrialState.COMPLETE}
        for name in names:
            if name not in params or name in self.ahead:
                continue
            start = time.perf_counter()
            fixed = FixedTrial(params[name])
            fixed.set_user_attr("baseline", name)
            try:
                _, lr, screened = self.obj.prepare(fixed, start)  # the work copy initialized
            except optuna.TrialPruned:
                continue  # it runs as its own trial, as before
            if fixed.user_attrs[DIGEST_ATTR] in seen:
                continue
            seen.add(fixed.user_attrs[DIGEST_ATTR])
            models.append(copy.deepcopy(self.obj.work))
            attrs = {k: v for k, v in fixed.user_attrs.items() if k != "baseline"}
            prepared.append((name, lr, attrs, screened, time.perf_counter() - start))
        if not prepared:
            return
        reports: list[list[tuple[int, float]]] = [[] for _ in prepared]
        run = run_population(models, self.obj.data,
                             [replace(self.obj.config, lr=lr) for _, lr, *_ in prepared],
                             [_recorder(log) for log in reports], size=self.size)
        for (name, _, attrs, screened, seconds), result, log in zip(prepared, run.results,
                                                                    reports, strict=True):
            self.ahead[name] = _Ahead(result, attrs, log, screened, seconds + result.seconds)


def _recorder(log: list[tuple[int, float]]) -> Report:
    """A probe's ``report`` that keeps the scores and never stops it (a named candidate is
    never pruned); they are replayed into the trial."""

    def report(step: int, value: float) -> bool:
        log.append((step, value))
        return False

    return report
