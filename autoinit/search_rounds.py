"""The study's rounds inside :func:`autoinit.search.run_search`, then its selection round.

A round opens (or resumes) the Optuna study, queues the named candidates, and runs trials until
``n_trials``, the timeout or the budget is met. There is one round, except where the named
candidates' probes cannot rank them: in a budgeted search whose named candidates do not separate
beyond the noise (:class:`~autoinit.budget.BudgetWatch` stops the study), and in a search
without a budget whose round ended without any probe having learned anything
(:mod:`autoinit.evidence`). The search then starts again with probes twice as long (counting the
steps the shorter round spent). The selection round (:mod:`autoinit.selection`) then decides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import TrialState

from autoinit.budget import BudgetPlan, BudgetWatch, affordable, eval_every_of, noise_probe, steps_spent
from autoinit.clock import StepClock
from autoinit.errors import ConfigError
from autoinit.evidence import lengthening, nothing_learned
from autoinit.interrupt import deferred_interrupt
from autoinit.objective import Objective
from autoinit.optuna_setup import quiet_optuna
from autoinit.plan import ModelPlan
from autoinit.population import population_unsupported
from autoinit.population_stage import NamedPopulation
from autoinit.probe import ProbeConfig
from autoinit.progress import SearchProgress
from autoinit.result import Candidate, SearchContext
from autoinit.rungs import make_pruner
from autoinit.selection import Selection, is_stored, reuse_selection, select, selection_steps
from autoinit.space import SearchSpace, distributions
from autoinit.storage import missing_file, open_storage
from autoinit.study import (
    DONE,
    check_space,
    enqueue_pending,
    in_memory,
    lengthened_name,
    open_study,
    optimize,
    stored_rounds,
    worker_storage,
)

__all__ = ["Rounds", "trains_nothing", "trial_budget"]


@dataclass
class Rounds:
    """Runs the study's rounds and the selection round (:meth:`run`); what they produced is
    left on the instance (``study``, ``candidates``, ``chosen``, ``reason``, ``reused``,
    ``interrupted``; ``spent`` and ``notes`` from lengthened rounds)."""

    obj: Objective
    plan: ModelPlan
    space: SearchSpace
    lr: float
    named: tuple[str, ...]
    selection: Selection
    context: SearchContext
    storage: str | optuna.storages.BaseStorage | None
    study_name: str | None
    seed: int
    n_jobs: int
    n_trials: int | None
    timeout: float | None
    rungs: int
    first_rung: int
    callbacks: Sequence[Callable]  # the user's: they also see the selection round's study
    watch: Sequence[Callable]  # this process's own: step timing, progress
    clock: StepClock
    show: SearchProgress | None
    population: int
    budget: BudgetPlan | None = None
    budget_steps: int | None = None
    eval_every: int | None = None  # given by the user: kept when the probes are lengthened
    lengthen: bool = False
    longest: int = 0
    prior: float | None = None  # the prior loss (autoinit.evidence), where the loss has one
    guard: BudgetWatch | None = None
    spent: int = 0  # the steps of shorter rounds, when the probes were lengthened
    first_name: str | None = None  # the first round's study, when later rounds are stored apart
    notes: list[str] = field(default_factory=list)
    study: optuna.Study | None = None
    interrupted: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    reason: str = ""
    reused: bool = False
    ran: int = 0  # the trials this run finished (complete, pruned, failed or interrupted)

    @property
    def config(self) -> ProbeConfig:
        return self.obj.config

    def run(self) -> Rounds:
        """The study's rounds (lengthened while :meth:`_longer` says so), then the selection
        round; ``self``, with what they produced."""
        noise = self.budget is not None and self.budget.noise
        watched = noise and self.n_jobs == 1
        self.guard = BudgetWatch(noise_probe(self.obj), self.named, self.lengthen) if watched \
            else None
        # a budgeted search keeps one probe for its noise probe (autoinit.budget.BudgetWatch)
        budget = trial_budget(self.budget_steps, self.config, self.selection,
                              self.plan.model_init, self.config.steps if noise else 0)
        with quiet_optuna():
            while True:
                self._round(budget and budget - self.spent)
                if self.interrupted or not self._longer():
                    break
                budget = self._lengthen()
            if self.guard is not None and self.guard.ended is not None and self.show is not None:
                self.show.note(f"search ended early: {self.guard.ended}")
            self._choose()
        return self

    def _round(self, budget: int | None) -> None:
        with worker_storage(self.storage, self.n_jobs) as where:
            study, created = open_study(where, self.study_name, self.seed, self.n_jobs,
                                        self.config.eval_every, len(self.named))
            if self.rungs > 1:  # successive halving replaces the median rule
                study.pruner = make_pruner(self.first_rung)
            check_space(study, distributions(self.plan, self.space, self.lr))
            if self.show is not None:
                self.show.resume(study.get_trials(deepcopy=False))
            enqueue_pending(study, self.plan, self.space, self.lr, created, keep=self.named)
            for callback in self.callbacks:  # e.g. tracking: the plans that rebuild a scheme
                getattr(callback, "bind_search", lambda context: None)(
                    replace(self.context, config=self.config))
            guard = [] if self.guard is None else [self.guard]
            if self.guard is not None:
                self.guard.affordable = affordable(self.guard, study, self.config, self.budget,
                                                   self.selection, self.plan.model_init,
                                                   self.spent, self.longest)
            polling = self.show.polling(study, self.n_jobs > 1) if self.show \
                else contextlib.nullcontext()
            before = _finished(study)
            with polling:
                self.interrupted = optimize(study, self._objective(), self.n_trials, self.timeout,
                                            budget, [*self.callbacks, *self.watch, *guard],
                                            self.n_jobs)
            self.ran += _finished(study) - before
            # a temporary journal: keep the study, remove the file
            self.study = study if where is self.storage else in_memory(study)

    def _lengthen(self) -> int | None:
        """Probes twice as long, fresh watches; the budget left to the next round's trials."""
        self.spent += steps_spent(self.study) + (self.guard.noise_steps if self.guard else 0)
        steps = 2 * self.config.steps
        self.obj.config = replace(self.config, steps=steps,
                                  eval_every=self.eval_every or eval_every_of(steps, self.budget))
        if self.guard is not None:
            line = (f"probes lengthened to {steps} steps: the named candidates' scores are all "
                    f"within the noise margin ({self.guard.margin_text()})")
            self.notes.extend([*self.guard.lines, line])
            self.guard = BudgetWatch(noise_probe(self.obj), self.named, self.lengthen)
        else:
            line = lengthening(self.study.get_trials(deepcopy=False), self.prior, steps)
            self.notes.append(line)
            if self.storage is not None:  # each length its own stored study: a rerun resumes
                self.first_name = self.first_name or self.study.study_name
                self.study_name = lengthened_name(self.first_name, steps)
        if self.show is not None:
            self.show.note(line)
            self.show.restart()
        return trial_budget(self.budget_steps, self.config, self.selection,
                            self.plan.model_init, self.config.steps)

    def _longer(self) -> bool:
        """Whether the next round probes twice as long: a budgeted search's watch says so; a
        search without a budget whose probes may be lengthened (``lengthen``: see
        :func:`~autoinit.search.run_search`) does when no probe of its round learned
        (:mod:`autoinit.evidence`)."""
        if self.guard is not None:
            return self.guard.longer
        return (self.budget is None and self.lengthen and 2 * self.config.steps <= self.longest
                and nothing_learned(self.study.get_trials(deepcopy=False), [], self.prior)
                is not None)

    def _objective(self) -> Objective | NamedPopulation:
        """The trials' objective: with populations in one process, the named candidates are
        probed together (:mod:`autoinit.population_stage`)."""
        obj = self.obj
        if self.population < 2 or self.n_jobs > 1 or population_unsupported(obj.work, obj.data,
                                                                             obj.config):
            return obj
        return NamedPopulation(obj, self.population, self.n_trials)

    def _choose(self) -> None:
        """The selection round (or the study's stored one, or, interrupted, the probe scores)."""
        study = self.study
        if self.interrupted and not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise KeyboardInterrupt("before any trial completed; the study keeps its trials and "
                                    "the next run resumes it")
        stored = None if self.interrupted else reuse_selection(study, self.obj, self.selection,
                                                               self.config)
        if stored is not None:
            self.candidates, self.chosen, self.reason = stored
            self.reused = True
            self._explain()
            return

        def on_probe(done: int, total: int, name: str, score: float | None) -> None:
            if done:
                self.clock.sample()  # the cost unit, re-timed between the round's probes
            if self.show is not None:
                self.show.selection(done, total, name, score)

        try:
            with deferred_interrupt() as pending:  # a Ctrl-C stops the round at its next step
                self.candidates, self.chosen, self.reason = select(
                    study, self.obj, self.selection, self.config, rerun=not self.interrupted,
                    on_probe=on_probe, population=self.population, prior=self.prior)
                late = pending.requested
        except KeyboardInterrupt:  # the round is not stored: the next run re-runs it
            self.interrupted = True
            self.candidates, self.chosen, self.reason = select(
                study, self.obj, self.selection, self.config, rerun=False)
            self.reason = self.reason.replace("before the selection round",
                                              "during the selection round")
            late = False
        if late:  # after the round's last step: it is stored, and a rerun hands it back
            raise KeyboardInterrupt("after the selection round, which the study keeps: rerun "
                                    "the same command for its result")
        self._explain()

    def _explain(self) -> None:
        """The reason, with what a search without a budget lengthened and whether any probe
        learned (:mod:`autoinit.evidence`)."""
        extra = [] if self.budget is not None else self.notes[-1:]  # the last lengthening
        reruns = [s for c in self.candidates for s in c.scores]
        note = nothing_learned(self.study.get_trials(deepcopy=False), reruns, self.prior)
        if note and "close to a guess" not in self.reason:
            note += (", so the choice is close to a guess: "
                     + ("a larger budget" if self.budget else "longer probes (probe_steps)")
                     + " would decide")
        self.reason = "; ".join([self.reason, *extra, *([note] if note else [])])


def trains_nothing(storage: str | optuna.storages.BaseStorage | None, study_name: str | None,
                   n_trials: int | None, selection: Selection, config: ProbeConfig) -> bool:
    """Whether a search would train nothing on this stored study: it holds its ``n_trials``
    finished trials and the selection round stored for them (or the round re-runs nothing,
    ``seeds=0``), as when a finished search is run again. ``False`` where that is not known
    beforehand: no storage or name, no ``n_trials``, a storage file not there yet, or a study
    whose probes were lengthened (:mod:`autoinit.evidence`)."""
    if storage is None or study_name is None or n_trials is None or (
            isinstance(storage, str) and missing_file(storage) is not None):
        return False
    opened = open_storage(storage)
    names = [s.study_name for s in opened.get_all_studies()]
    if study_name not in names or len(stored_rounds(names, study_name)) > 1:
        return False
    study = optuna.load_study(study_name=study_name, storage=opened)
    done = len(study.get_trials(deepcopy=False, states=DONE))
    return done >= n_trials and (not selection.seeds or is_stored(study, selection, config))


def _finished(study: optuna.Study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def trial_budget(budget_steps: int | None, config: ProbeConfig, selection: Selection,
                 own_init: bool, noise_steps: int = 0) -> int | None:
    """What ``budget_steps`` leaves the trials once the selection round (and a budgeted search's
    noise probe, ``noise_steps``) is reserved.

    >>> from autoinit.probe import ProbeConfig
    >>> trial_budget(3000, ProbeConfig(steps=100), Selection(), own_init=False)
    1400
    """
    if budget_steps is None:
        return None
    reserved = selection_steps(config, selection, own_init) + noise_steps
    if budget_steps < reserved + config.steps:
        raise ConfigError(
            f"budget_steps must cover one probe ({config.steps} steps) and the selection round "
            f"({reserved} steps), so at least {reserved + config.steps}, got {budget_steps}; or "
            "pass a smaller selection=Selection(top=..., seeds=...)")
    return budget_steps - reserved
