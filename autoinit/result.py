"""The typed records that cross module boundaries: ``FitResult`` (what a search chose, against
what, at what cost), ``SearchContext``, ``TrackedRun``, ``SearchCost``, ``BudgetReport``,
``ProxyReport`` and ``Candidate``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna

from autoinit.scheme import InitScheme
from autoinit.twins import twins_line

if TYPE_CHECKING:
    from autoinit.batches import LossFn
    from autoinit.plan import ModelPlan
    from autoinit.population_choice import PopulationChoice
    from autoinit.probe import ProbeConfig
    from autoinit.rungs import RungAgreement
    from autoinit.threads import ThreadChoice
    from autoinit.transfer import Transfer

__all__ = ["BudgetReport", "Candidate", "FitResult", "ProxyReport", "SearchContext", "SearchCost",
           "TrackedRun"]


@dataclass(frozen=True)
class SearchContext:
    """What a search ran on, built once by :func:`~autoinit.search.run_search`: the probe's
    settings, the model's plan (and its one-group-per-layer plan, the LSUV baseline's), the
    first training batch and the loss (``None`` for a custom ``train_step`` alone). Tracking
    rebuilds trials' schemes and draws its plots from it."""

    config: ProbeConfig
    plan: ModelPlan
    batch: Any
    loss: LossFn | None
    layer_plan: ModelPlan | None = None


@dataclass(frozen=True)
class TrackedRun:
    """The MLflow run a search was logged to: its id, the tracking URI (without any password),
    the experiment, and one line saying where it is."""

    run_id: str
    tracking_uri: str
    experiment_id: str | None
    line: str


@dataclass(frozen=True)
class SearchCost:
    """The cost of a search in plain numbers.

    ``tse`` is training-step equivalents: wall time divided by the time of one step of the bare
    training loop on the same model and batches, measured in the same run: ``step_seconds`` is
    the median of ``step_timings`` bare steps timed through the search (at its start, after
    every trial and between the selection round's probes), ``step_seconds_q1``/``_q3`` their
    quartiles; ``threads`` the torch threads the trainings ran on; ``population`` the most
    candidates the selection round trained at once (1: one at a time) and ``population_ratio``
    the measured candidate-steps/s of such a population over sequential probes (``nan``: not
    measured). ``trials_interrupted``: trials Ctrl-C cut (recorded as failed by Optuna and queued
    again for a resume; not counted in ``trials_failed``).

    A study searched by several runs (a fleet of workers sharing its storage, or a search Ctrl-C
    stopped and then resumed) costs every run's time: each run that trained anything keeps its
    wall time in the study (:func:`~autoinit.stored_cost.record_run`), and the cost counts
    ``compute_seconds``, this run's ``wall_seconds`` plus ``other_seconds`` (the study's other
    ``runs - 1`` runs' wall times summed); ``tse`` is that over ``step_seconds``, and
    ``span_seconds`` is the fleet's own wall time (the first run's start to the last one's end).
    ``selection_steps`` then sums every run's selection round (two workers that ended together
    each ran one). One run: ``compute_seconds`` is its wall time, as before.

    A rerun of a finished study that re-runs nothing (its trials and selection round stored)
    reports the stored search's cost, as the run that completed it reported it
    (:mod:`autoinit.stored_cost`), and its own wall time in ``rerun_seconds`` (``nan``: this run
    is the one the cost describes). A study from an earlier version stored no cost: its
    ``wall_seconds`` (and so ``tse``) is then ``nan``.

    Example:
        >>> cost = SearchCost(100, 0, 40, 2.0, 0.01, 6, 0, 0)
        >>> round(cost.tse), cost.ratio(1000), cost.reused
        (200, 0.2, False)
    """

    probe_steps: int
    screening_passes: int
    selection_steps: int
    wall_seconds: float
    step_seconds: float
    trials_complete: int
    trials_pruned: int
    trials_failed: int
    step_seconds_q1: float = math.nan
    step_seconds_q3: float = math.nan
    step_timings: int = 1
    threads: int = 1
    population: int = 1
    population_ratio: float = math.nan
    trials_interrupted: int = 0
    runs: int = 1
    other_seconds: float = 0.0
    span_seconds: float = math.nan
    rerun_seconds: float = math.nan

    @property
    def compute_seconds(self) -> float:
        """The seconds the cost counts: this run's wall time and the study's other runs'."""
        return self.wall_seconds + self.other_seconds

    @property
    def tse(self) -> float:
        return self.compute_seconds / self.step_seconds if self.step_seconds > 0 else math.nan

    @property
    def reused(self) -> bool:
        """This run re-ran nothing: the figures are the stored search's (see the class)."""
        return math.isfinite(self.rerun_seconds)

    def describe(self) -> str:
        """The cost line of :meth:`FitResult.summary`."""
        trials = (f"{self.trials_complete} trials complete, {self.trials_pruned} pruned, "
                  f"{self.trials_failed} failed"
                  + (f", {self.trials_interrupted} interrupted (Ctrl-C; queued again)"
                     if self.trials_interrupted else ""))
        steps = (f"{self.probe_steps} probe steps + {self.screening_passes} screening passes + "
                 f"{self.selection_steps} selection steps")
        unit = (f"{1000 * self.step_seconds:.2f} ms/step: median of {self.step_timings} bare "
                f"steps timed through the search, quartiles {1000 * self.step_seconds_q1:.2f}-"
                f"{1000 * self.step_seconds_q3:.2f}; {self.threads} "
                f"thread{'s' if self.threads > 1 else ''}")
        seconds = (f"{self.wall_seconds:.1f} s wall" if self.runs <= 1 else
                   f"{self.compute_seconds:.1f} s: the wall times of the study's {self.runs} runs "
                   f"summed ({self.span_seconds:.1f} s from the first's start to the last's end)")
        wall = (f"{seconds} = {self.tse:.0f} training-step equivalents ({unit})"
                if math.isfinite(self.wall_seconds)
                else "its wall time was not stored (a study searched by an earlier version)")
        head = "cost" if not self.reused else (
            f"cost of the stored search (this run re-ran nothing, in {self.rerun_seconds:.1f} s: "
            "the study's trials and selection round were reused)")
        return f"{head}: {trials}; {steps}; {wall}"

    def ratio(self, full_training_steps: int) -> float:
        """The search cost ratio R against one training of ``full_training_steps`` steps."""
        return self.tse / full_training_steps

    def to_dict(self) -> dict[str, float]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__},
                "compute_seconds": self.compute_seconds, "tse": self.tse}


@dataclass(frozen=True)
class BudgetReport:
    """A search run with ``train_steps`` (:mod:`autoinit.budget`): the training it prepares,
    its budget in steps and the plan, the probe length at the end (``probe_steps``) and as
    planned (``planned_probe_steps``: longer when the probes were lengthened), why it ended
    early (``None``: it did not), the budget it left unused, what it measured and decided on
    the way (``lines``) and why it probed fewer named candidates (``note``)."""

    train_steps: int
    budget_steps: int
    plan: str
    probe_steps: int
    planned_probe_steps: int
    ended_early: str | None
    unused_steps: int
    lines: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class ProxyReport:
    """How a search on a smaller proxy of the model was carried over to it
    (:mod:`autoinit.proxy`).

    Attributes:
        transfer: the groups that mapped (``None`` when LSUV was calibrated afresh on the model).
        proxy_scheme: the scheme chosen on the proxy, before the transfer.
        proxy_parameters, model_parameters: the two models' parameter counts.
        proxy_step_seconds, model_step_seconds: median bare steps, timed alternately after the
            search; their ratio converts the search's cost into the model's step time.
    """

    transfer: Transfer | None
    proxy_parameters: int
    model_parameters: int
    proxy_step_seconds: float
    model_step_seconds: float
    proxy_scheme: InitScheme = field(repr=False)

    @property
    def step_ratio(self) -> float:
        """The model's bare step over the proxy's."""
        return self.model_step_seconds / self.proxy_step_seconds

    def describe(self) -> str:
        """One line: the search ran on the proxy, what mapped, and the cost unit."""
        how = (self.transfer.describe() if self.transfer is not None
               else "the lsuv baseline calibrated afresh on the model")
        return (f"searched on a proxy ({self.proxy_parameters:,} parameters; the model "
                f"{self.model_parameters:,}): {how}; cost in the model's step time "
                f"({1000 * self.model_step_seconds:.2f} ms/step = {self.step_ratio:.1f}x the "
                "proxy's)")


@dataclass(frozen=True)
class Candidate:
    """One scheme re-run in the selection round with several seeds."""

    name: str
    trial_number: int
    search_score: float
    scores: list[float]
    scheme: InitScheme = field(repr=False)

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores)


@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`autoinit.fit`.

    Attributes:
        scheme: the chosen scheme; the model has been initialized with it.
        score: its mean score in the selection round (lower is better); its probe score when
            no round ran (:attr:`selection_ran`).
        baselines: the baselines' probe scores from the search.
        chosen: the name of the chosen candidate (``"search #12"`` or a baseline's name).
        reason: why it was chosen, in a sentence.
        candidates: the selection round.
        cost: the search cost.
        study: the Optuna study.
        interrupted: Ctrl-C stopped the search (the study keeps its trials; rerun to resume).
        selection_reused: the selection round was the study's stored one, not run again.
        threads: the torch threads the trainings ran on, and how they were chosen.
        context: what the search ran on (probe settings, plan, a batch, the loss).
        run: the MLflow run it was logged to, when tracking was on.
        rank_agreement: with rungs, the Spearman rank correlation of the probe scores at each
            pair of consecutive rungs, over the trials that reached both.
        probe_note: why the probes ran without their learning-rate cooldown, if they did.
        budget: with ``train_steps``, the budget, its plan and what became of it.
        population: how many candidates the selection round trained at once, and why (the
            summary names it where populations ran or where a population asked for could not).
        proxy: the search ran on a smaller proxy of the model and its scheme was transferred
            (:mod:`autoinit.proxy`); ``cost`` is then in the model's step time.
    """

    scheme: InitScheme
    score: float
    baselines: dict[str, float]
    chosen: str
    reason: str
    candidates: list[Candidate]
    cost: SearchCost
    study: optuna.Study = field(repr=False)
    interrupted: bool = False
    selection_reused: bool = False
    threads: ThreadChoice | None = None
    context: SearchContext | None = field(default=None, repr=False)
    run: TrackedRun | None = None
    rank_agreement: tuple[RungAgreement, ...] = ()
    probe_note: str | None = None
    budget: BudgetReport | None = None
    population: PopulationChoice | None = None
    proxy: ProxyReport | None = None

    @property
    def selection_ran(self) -> bool:
        """Whether the candidates' ``scores`` come from a selection round (this run's or the
        study's stored one). ``False`` when the choice was made by probe scores alone (an
        interrupted search, ``Selection(seeds=0)``): each candidate's ``scores`` is then its probe
        score, and the summary shows no selection column."""
        return self.selection_reused or self.cost.selection_steps > 0

    @property
    def ended_early(self) -> str | None:
        """Why the search ended before its budget was spent, or ``None``."""
        return self.budget.ended_early if self.budget is not None else None

    @property
    def extra(self) -> dict[str, Any]:
        """The typed fields under the keys earlier versions used (``"interrupted"``,
        ``"mlflow_run_id"``, ...): a read-only copy, for code written against them."""
        c, r = self.context, self.run
        out: dict[str, Any] = {"interrupted": self.interrupted, "threads": self.threads,
                               "selection_reused": self.selection_reused}
        if c is not None:
            out.update(config=c.config, batch=c.batch, loss=c.loss, plan=c.plan)
        if r is not None:
            out.update(run=r.line, mlflow_run_id=r.run_id, mlflow_tracking_uri=r.tracking_uri,
                       mlflow_experiment_id=r.experiment_id)
        return out

    def summary(self) -> str:
        """A readable table: baselines vs chosen, and the search cost."""
        ran = self.selection_ran  # else the candidates' means are their probe scores
        lines = [f"autoinit search '{self.study.study_name}'", "",
                 f"{'candidate':<24} {'probe score':>12}" + (f" {'selection mean':>15}" * ran)]
        reruns = {c.name: c for c in self.candidates}
        rows = [(name, score) for name, score in self.baselines.items()]
        rows += [(c.name, c.search_score) for c in self.candidates if c.name not in self.baselines]
        for name, score in rows:
            mean = ""
            if ran:
                mean = f" {reruns[name].mean:>15.4f}" if name in reruns else " " * 16
            mark = "  <- chosen" if name == self.chosen else ""
            lines.append(f"{name:<24} {score:>12.4f}{mean}{mark}")
        c = self.cost
        lines += ["", self.reason, c.describe()]
        twins = twins_line(self.study.get_trials(deepcopy=False))
        if twins:
            lines.append(twins)
        b = self.budget
        if b is not None:
            lines.append(f"search cost: {c.tse:.0f} training steps, R = "
                         f"{c.ratio(b.train_steps):.2g} of your {b.train_steps}-step training "
                         f"({b.plan})" if math.isfinite(c.tse) else
                         "search cost: unknown, the stored search's wall time was not stored "
                         f"({b.plan})")
            if b.note:
                lines.append(f"note: {b.note}")
            lines.extend(b.lines)
            if b.probe_steps != b.planned_probe_steps:
                lines.append(f"probes lengthened from {b.planned_probe_steps} to "
                             f"{b.probe_steps} steps")
            if b.ended_early:
                lines.append(f"search ended early: {b.ended_early}; {b.unused_steps} steps of "
                             "the budget unused")
            else:
                lines.append(f"budget unused: {b.unused_steps} of {b.budget_steps} steps")
        if self.rank_agreement:
            lines.append("probe rank agreement between rungs (Spearman): "
                         + "; ".join(a.describe() for a in self.rank_agreement))
        if self.probe_note:
            lines.append(f"note: {self.probe_note}")
        if self.population is not None and self.population.notable:
            lines.append(self.population.describe())
        if self.proxy is not None:
            lines.append(self.proxy.describe())
        if self.run is not None:
            lines.append(self.run.line)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
