"""A search budget in the user's terms: a fraction of the training the user will run next.

With ``train_steps=N`` (and no ``budget_steps``) a search may spend
``budget_fraction · N`` training steps (:data:`~autoinit.settings.DEFAULTS`), and
:func:`plan_budget` shapes the search to fit: the richest shape whose probes keep a useful
length, each probe as long as the budget allows (at most ``probe_steps``, default 100):

1. ``full``: the defaults (30 trials, ``Selection()``): probes of 100 steps must fit;
2. ``lean``: the named candidates, 4 search trials, a selection round of the incumbent, the best
   preset and the best search trial re-run with 2 fresh seeds at the probe's length
   (``Selection(top=1, seeds=2, steps_factor=1)``): probes of at least 50 steps;
3. ``halving``: the named candidates alone, each probed briefly (at least
   :data:`MIN_SCREEN_STEPS`), then the two best re-run 4 times longer, and the longer probe
   decides (``Selection(top=2, seeds=1, steps_factor=4, among_best=True)``): a short probe
   ranks inits by their first descent, which is not where a training ends
   (docs/search_cost.md), so it only screens;
4. ``named``: the named candidates alone, chosen by probe score (``Selection(seeds=0)``):
   probes of at least :data:`MIN_PROBE_STEPS`;
5. below that, the fewest named candidates that fit at :data:`MIN_PROBE_STEPS`, in the order
   of :func:`priority` (the model's own init, PyTorch's default, the presets written for this
   architecture, then the others), with a one-line note.

The probes are as long as the shape allows: on the benchmark tasks, probes shortened to keep
a reserve for lengthening them separated beyond the noise anyway and ranked the recurrent
tasks' inits worse (docs/search_cost.md). A shape with search trials holds one extra probe,
the noise probe (the best named candidate re-run with the next seed: the margin of the early
end and of the lengthening); the halving and named shapes hold it only when the budget could
also probe the named candidates again at twice the length (``can_lengthen``: probes capped at
100 steps with budget to spare). Whether a lengthening fits is decided again when it is due: it uses the
budget the search trials would have had.

``probe_steps`` and ``selection`` given explicitly are used as given; ``n_trials`` caps the
trials of every shape.

The search that runs the plan (:func:`autoinit.search.run_search`) watches it with
:class:`BudgetWatch`: longer probes when the named candidates do not separate beyond the noise,
an early end when the best candidate leads clearly.

Example:
    >>> plan = plan_budget(700, ["pytorch_default", "xavier_normal", "kaiming_normal",
    ...                          "lecun_normal", "orthogonal", "lsuv", "zero_readout"])
    >>> plan.shape, plan.probe_steps, plan.n_trials, plan.selection.top, plan.noise
    ('halving', 46, 7, 2, False)
    >>> plan_budget(40, ["pytorch_default", "xavier_normal", "fixup", "lsuv"]).named
    ('pytorch_default', 'fixup')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from autoinit.errors import ConfigError
from autoinit.model_init import MODEL_DEFAULT
from autoinit.presets import list_presets
from autoinit.probe import ProbeConfig
from autoinit.selection import Selection, selection_steps
from autoinit.settings import DEFAULTS, check_option

if TYPE_CHECKING:
    from autoinit.objective import Objective

__all__ = ["EARLY_END_AFTER", "MAX_LENGTHENING", "MIN_PROBE_STEPS", "BudgetPlan", "BudgetWatch",
           "affordable", "budget_of", "eval_every_of", "lengthen_fits", "noise_probe", "plan_budget",
           "priority", "steps_spent"]

MIN_PROBE_STEPS = 20  # below this a probe says little more than the screening pass
MIN_SCREEN_STEPS = 10  # the halving shape's first probes: they screen, the longer re-runs decide
EARLY_END_AFTER = 5  # m: search trials in a row that must not come close before an early end
MAX_LENGTHENING = 4  # the probes may be doubled twice at most
# (shape, search trials beyond the named ones or None for n_trials, selection, shortest probe)
_SHAPES: tuple[tuple[str, int | None, Selection, int], ...] = (
    ("full", None, Selection(), DEFAULTS.probe_steps),
    ("lean", 4, Selection(top=1, seeds=2, steps_factor=1.0), 50),
    ("halving", 0, Selection(top=2, seeds=1, steps_factor=4.0, among_best=True), MIN_SCREEN_STEPS),
    ("named", 0, Selection(top=0, seeds=0, steps_factor=1.0), MIN_PROBE_STEPS),
)


@dataclass(frozen=True)
class BudgetPlan:
    """How a search spends ``budget_steps``: ``probe_steps`` per probe, at most ``n_trials``
    trials (the budget usually stops it first), the selection round, the named candidates it
    queues (all of them unless the budget is too small: ``note`` then says so), whether the
    named candidates' probes may be lengthened and whether the plan holds a noise probe (only
    where it can change the answer: a lengthening, or an early end among search trials)."""

    budget_steps: int
    probe_steps: int
    n_trials: int
    selection: Selection
    named: tuple[str, ...]
    shape: str
    can_lengthen: bool
    noise: bool = True
    note: str | None = None

    @property
    def searched(self) -> bool:
        """Whether the plan holds search trials beyond the named candidates."""
        return self.n_trials > len(self.named)

    def describe(self, train_steps: int | None = None) -> str:
        of = f" ({self.budget_steps / train_steps:.2g} of the {train_steps}-step training)" \
            if train_steps else ""
        s = self.selection
        rerun = "chosen by probe score"
        if s.among_best:
            rerun = f"the best {s.top} re-run at {s.steps_factor:g}x the probe, the longer probe decides"
        elif s.seeds:
            rerun = f"a selection round of {s.seeds} seeds at {s.steps_factor:g}x the probe"
        return (f"budget {self.budget_steps} steps{of}: {len(self.named)} named candidates, up to "
                f"{self.n_trials} trials of {self.probe_steps} probe steps, {rerun}")


def budget_of(train_steps: int, fraction: float = DEFAULTS.budget_fraction) -> int:
    """The search budget for a ``train_steps``-step training: ``fraction`` of it."""
    check_option("train_steps", train_steps)
    return max(1, math.floor(fraction * train_steps))


def priority(named: Sequence[str]) -> list[str]:
    """``named`` in the order the budget keeps them: the model's own init and PyTorch's default
    (what the user has without a search), the presets (queued only where they fit the
    architecture), then the others in their queue order."""
    presets = set(list_presets())
    rank = {MODEL_DEFAULT: 0, "pytorch_default": 1}
    return sorted(named, key=lambda n: (rank.get(n, 2 if n in presets else 3), named.index(n)))


def plan_budget(budget_steps: int, named: Sequence[str], own_init: bool = False, *,
                probe_steps: int | None = None, n_trials: int | None = None,
                selection: Selection | None = None) -> BudgetPlan:
    """The search that fits ``budget_steps`` training steps (see the module's docstring).

    Example:
        >>> p = plan_budget(20000, ["a", "b", "c"])
        >>> p.shape, p.probe_steps, p.n_trials, p.selection == Selection()
        ('full', 100, 30, True)
    """
    check_option("budget_steps", budget_steps)
    if not named:
        raise ConfigError("a budgeted search needs at least one named candidate, got none")
    n, own = len(named), int(own_init)
    cap = n_trials or DEFAULTS.n_trials
    for shape, extra, sel, shortest in _SHAPES:
        trials = cap if extra is None else min(cap, n + extra)
        sel = selection or sel
        units = trials + 1 + sel.members(own) * sel.seeds * sel.steps_factor
        searched = trials > n  # without search trials to end early on, a noise probe only
        # where a lengthening fits
        step = probe_steps or min(math.floor(budget_steps / (units - (not searched))),
                                  DEFAULTS.probe_steps)
        if probe_steps is not None and units * step > budget_steps and shape != "named":
            continue  # the user's length: the shape must fit it
        if step >= shortest or probe_steps is not None:
            lengthen = lengthen_fits(budget_steps, n, step, sel, own_init)
            return BudgetPlan(budget_steps, step, trials, sel, tuple(named), shape, lengthen,
                              searched or lengthen)
    # not even the named candidates at the shortest probe: the fewest that matter
    step = probe_steps or MIN_PROBE_STEPS
    keep = max(1, min(n, cap, math.floor(budget_steps / step)))
    kept = tuple(priority(named)[:keep])
    if keep * step > budget_steps:  # not even one: the longest probe that fits
        step = max(1, budget_steps // keep)
    note = (f"the budget of {budget_steps} steps cannot probe all {n} named candidates for "
            f"{probe_steps or MIN_PROBE_STEPS} steps: probing {keep} ({', '.join(kept)}) for "
            f"{step} steps")
    return BudgetPlan(budget_steps, step, keep, selection or _SHAPES[-1][2], kept, "fewest",
                      False, False, note)


def lengthen_fits(budget_steps: int, named: int, probe_steps: int, selection: Selection,
                  own_init: bool = False) -> bool:
    """Whether ``budget_steps`` covers the named candidates and the noise probe at
    ``probe_steps``, then again at twice the length with the selection round there."""
    longer = 2 * probe_steps
    rerun = selection_steps(ProbeConfig(steps=longer), selection, own_init)
    return (named + 1) * (probe_steps + longer) + rerun <= budget_steps


@dataclass
class BudgetWatch:
    """Optuna callback of a budgeted search (one process): once the named candidates have
    finished, re-runs the best of them with the next seed (the noise probe) and then

    - **lengthens** the probes when the named candidates do not separate: every finite score
      within the margin of the best, where the margin is the selection round's,
      ``max(noise, rel_margin · |best|)`` with ``noise`` the difference between the best
      candidate's two seeds. It stops the study and sets :attr:`longer`; the search then probes
      the named candidates again at twice the length, if the rest of the budget covers a whole
      shape at that length (``affordable``);
    - **ends the search early** when the best finished candidate leads every other by more than
      the margin and the last ``after`` search trials (not the named ones) all finished outside
      it: :attr:`ended` says why, and the unused budget is reported.

    The budget itself is kept by the study's budget callback, which reserves the noise probe.
    """

    probe: Callable[[optuna.trial.FrozenTrial], tuple[float, int]]  # -> (score, steps)
    named: tuple[str, ...]
    lengthen: bool
    rel_margin: float = Selection().rel_margin
    after: int = EARLY_END_AFTER
    affordable: Callable[[], bool] = lambda: False  # whether a round at twice the length fits
    noise: float | None = None
    noise_steps: int = 0
    longer: bool = False
    ended: str | None = None
    lines: list[str] = field(default_factory=list)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.is_finished()]
        named = {t.user_attrs.get("baseline"): t for t in finished if t.user_attrs.get("baseline")}
        if self.noise is None:
            if not set(self.named) <= set(named):
                return
            self._measure(named)
            if self.noise is None:
                return
            if self.lengthen and not self.separated(named) and self.affordable():
                self.longer = True
                study.stop()
            return
        if self.ended is None:
            self.ended = self.early_end(finished)
            if self.ended is not None:
                study.stop()

    def margin(self, best: float) -> float:
        return max(self.noise or 0.0, self.rel_margin * abs(best))

    def margin_text(self) -> str:
        return f"noise {self.noise:.4f}" if self.noise is not None else "no noise measured"

    def separated(self, named: dict[str, optuna.trial.FrozenTrial]) -> bool:
        """Whether some named candidate scored beyond the margin of the best one."""
        scores = [t.value for t in named.values()
                  if t.state == TrialState.COMPLETE and math.isfinite(t.value)]
        if len(scores) < 2:
            return True
        best = min(scores)
        return any(s > best + self.margin(best) for s in scores)

    def early_end(self, finished: Sequence[optuna.trial.FrozenTrial]) -> str | None:
        """Why the search may end now, or ``None``."""
        complete = sorted((t for t in finished if t.state == TrialState.COMPLETE
                           and math.isfinite(t.value)), key=lambda t: t.value)
        searched = [t for t in finished if not t.user_attrs.get("baseline")]
        if len(complete) < 2 or len(searched) < self.after:
            return None
        best, runner = complete[0], complete[1]
        margin = self.margin(best.value)
        last = searched[-self.after:]
        if runner.value - best.value <= margin or any(
                t.state == TrialState.COMPLETE and t.value <= best.value + margin for t in last):
            return None
        name = best.user_attrs.get("baseline") or f"search #{best.number}"
        return (f"{name} ({best.value:.4f}) leads every other candidate by more than the noise "
                f"margin {margin:.4f} (next best {runner.value:.4f}) and the last {self.after} "
                "search trials did not come within it")

    def _measure(self, named: dict[str, optuna.trial.FrozenTrial]) -> None:
        complete = [t for t in named.values()
                    if t.state == TrialState.COMPLETE and math.isfinite(t.value)]
        if not complete:
            self.noise = math.inf  # nothing to compare: never separated, never ends early
            return
        best = min(complete, key=lambda t: t.value)
        name = best.user_attrs["baseline"]
        score, steps = self.probe(best)
        self.noise_steps += steps
        self.noise = abs(score - best.value) if math.isfinite(score) else math.inf
        self.lines.append(f"noise: {name} scored {best.value:.4f} and {score:.4f} with the next "
                          f"seed (noise {self.noise:.4f})")


def eval_every_of(probe_steps: int, budget: BudgetPlan | None) -> int:
    """Four held-out evaluations per probe; one, at its end, in a budgeted search that has no
    search trial to prune (its score is the final held-out loss)."""
    if budget is not None and not budget.searched:
        return probe_steps
    return max(1, probe_steps // 4)


def noise_probe(obj: Objective) -> Callable[[optuna.trial.FrozenTrial], tuple[float, int]]:
    """A finished trial's scheme probed again with the next seed: ``(score, steps)``."""
    def probe(trial: optuna.trial.FrozenTrial) -> tuple[float, int]:
        scheme, lr = obj.scheme_of(trial)
        result = obj.probe(scheme.with_seed(scheme.seed + 1), lr,
                           replace(obj.config, seed=obj.config.seed + 1))
        return result.score, result.steps

    return probe


def affordable(guard: BudgetWatch, study: optuna.Study, config: ProbeConfig, budget: BudgetPlan,
                selection: Selection, own_init: bool, spent: int, longest: int
                ) -> Callable[[], bool]:
    """Whether the budget left covers the named candidates, the noise probe and the selection
    round at twice ``config.steps`` (at most ``longest``)."""
    def check() -> bool:
        longer = replace(config, steps=2 * config.steps)
        if longer.steps > longest:
            return False
        need = (len(budget.named) + 1) * longer.steps + selection_steps(longer, selection, own_init)
        return budget.budget_steps - spent - steps_spent(study) - guard.noise_steps >= need

    return check


def steps_spent(study: optuna.Study) -> int:
    return sum(t.user_attrs.get("probe_steps", 0) + t.user_attrs.get("screening_passes", 0)
               for t in study.get_trials(deepcopy=False))
