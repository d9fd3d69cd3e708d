"""``FitResult`` and ``SearchCost``: what a search chose, against what, at what cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna

from autoinit.scheme import InitScheme

__all__ = ["Candidate", "FitResult", "SearchCost"]


@dataclass(frozen=True)
class SearchCost:
    """The cost of a search in plain numbers.

    ``tse`` is training-step equivalents: wall time divided by the time of one step of the bare
    training loop on the same model and batches, measured in the same run: ``step_seconds`` is
    the median of ``step_timings`` bare steps timed through the search (at its start, after
    every trial and between the selection round's probes), ``step_seconds_q1``/``_q3`` their
    quartiles; ``threads`` the torch threads the trainings ran on.
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

    @property
    def tse(self) -> float:
        return self.wall_seconds / self.step_seconds if self.step_seconds > 0 else math.nan

    def ratio(self, full_training_steps: int) -> float:
        """The search cost ratio R against one training of ``full_training_steps`` steps."""
        return self.tse / full_training_steps

    def to_dict(self) -> dict[str, float]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "tse": self.tse}


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
        score: its mean score in the selection round (lower is better).
        baselines: the baselines' probe scores from the search.
        chosen: the name of the chosen candidate (``"search #12"`` or a baseline's name).
        reason: why it was chosen, in a sentence.
        candidates: the selection round.
        cost: the search cost.
        study: the Optuna study.
    """

    scheme: InitScheme
    score: float
    baselines: dict[str, float]
    chosen: str
    reason: str
    candidates: list[Candidate]
    cost: SearchCost
    study: optuna.Study = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """A readable table: baselines vs chosen, and the search cost."""
        lines = [f"autoinit search '{self.study.study_name}'", "",
                 f"{'candidate':<24} {'probe score':>12} {'selection mean':>15}"]
        reruns = {c.name: c for c in self.candidates}
        rows = [(name, score) for name, score in self.baselines.items()]
        rows += [(c.name, c.search_score) for c in self.candidates if c.name not in self.baselines]
        for name, score in rows:
            mean = f"{reruns[name].mean:>15.4f}" if name in reruns else f"{'':>15}"
            mark = "  <- chosen" if name == self.chosen else ""
            lines.append(f"{name:<24} {score:>12.4f} {mean}{mark}")
        c = self.cost
        lines += [
            "",
            self.reason,
            f"cost: {c.trials_complete} trials complete, {c.trials_pruned} pruned, "
            f"{c.trials_failed} failed; {c.probe_steps} probe steps + {c.screening_passes} "
            f"screening passes + {c.selection_steps} selection steps; {c.wall_seconds:.1f} s wall "
            f"= {c.tse:.0f} training-step equivalents ({1000 * c.step_seconds:.2f} ms/step: median "
            f"of {c.step_timings} bare steps timed through the search, quartiles "
            f"{1000 * c.step_seconds_q1:.2f}-{1000 * c.step_seconds_q3:.2f}; {c.threads} "
            f"thread{'s' if c.threads > 1 else ''})",
        ]
        if self.extra.get("run"):
            lines.append(str(self.extra["run"]))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
