"""The per-trial objective: scheme → apply → screen → probe → score, reported to Optuna."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import optuna
import torch
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.calibrate import lsuv_scheme
from autoinit.diagnose import diagnose
from autoinit.errors import FAILURE, failure_reason, first_line
from autoinit.interrupt import INTERRUPTED
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, ProbeResult, run_probe
from autoinit.rungs import RUNGS_ATTR
from autoinit.scheme import InitScheme, rules_from_json, rules_to_json
from autoinit.space import SearchSpace, suggest_scheme
from autoinit.twins import DIGEST_ATTR, find_twin, take_result, weights_digest

__all__ = ["PROBE_LENGTH_ATTR", "TRAIN_POINTS", "Objective", "screen", "thin_stride"]

PROBE_LENGTH_ATTR = "probe_length"  # the probe's planned steps (``probe_steps``: those it ran)
TRAIN_POINTS = 200  # training-loss points a trial keeps (every thin_stride-th step)

_REJECT_FLAGS = ("non_finite", "exploding_activation", "exploding_gradient")


def screen(model: nn.Module, data: ProbeData, seed: int = 0) -> str | None:
    """One forward and backward pass; the reason to reject the candidate, or ``None``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            d = diagnose(model, data.train[0], data.loss)
        except RuntimeError as exc:  # e.g. a backward through non-finite values
            return f"screening pass failed: {first_line(exc)}"
    bad = [f"{r.name}: {f}" for r in d.records for f in r.flags if f in _REJECT_FLAGS]
    if bad:
        return "screened out: " + ", ".join(bad[:3])
    weights = [r for r in d.records if r.kind != "norm"]
    vanishing = [r for r in weights if "vanishing_gradient" in r.flags]
    if weights and len(vanishing) > len(weights) / 2:
        return f"screened out: gradients vanish in {len(vanishing)} of {len(weights)} layers"
    return None


@dataclass
class Objective:
    """Scores one Optuna trial. Holds a working copy of the model, reset for every trial."""

    work: nn.Module
    initial: dict[str, torch.Tensor]
    plan: ModelPlan
    layer_plan: ModelPlan
    data: ProbeData
    config: ProbeConfig
    space: SearchSpace
    lr: float
    seed: int
    screening: bool = True

    def scheme_of(self, trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> tuple[InitScheme, float]:
        """The scheme and learning rate a trial stands for (also for finished trials)."""
        attrs = trial.user_attrs
        if attrs.get("baseline") == "lsuv" and "rules" in attrs:
            scheme = self.layer_plan.scheme(rules_from_json(attrs["rules"]), self.seed)
            return scheme, float(trial.params.get("lr", self.lr))
        if isinstance(trial, optuna.trial.FrozenTrial):
            trial = optuna.trial.FixedTrial(trial.params)
        return suggest_scheme(trial, self.plan, self.space, self.lr, self.seed)

    def reset(self) -> None:
        """Put the working copy back to the model's state before the search."""
        self.work.load_state_dict(self.initial)

    def probe(self, scheme: InitScheme, lr: float, config: ProbeConfig | None = None,
              report: Callable[[int, float], bool] | None = None) -> ProbeResult:
        """Reset the working copy, apply ``scheme`` and probe it at ``lr`` (``config``: the
        objective's own unless given; ``report``: the pruner's hook, as in
        :func:`~autoinit.probe.run_probe`)."""
        self.reset()
        apply_scheme(self.work, scheme)
        return run_probe(self.work, self.data, replace(config or self.config, lr=lr), report)

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:  # Ctrl-C, raised between probe steps: queued again next run
            trial.set_user_attr(FAILURE, INTERRUPTED)
            raise
        except Exception as exc:  # recorded, then Optuna marks the trial failed
            trial.set_user_attr(FAILURE, failure_reason(exc))
            raise

    def _run(self, trial: optuna.Trial) -> float:
        start = time.perf_counter()
        scheme, lr, screened = self.prepare(trial, start)
        twin = find_twin(trial)
        if twin is not None:  # the same weights were probed: the same result, at no step
            value = take_result(trial, twin)
            _record_cost(trial, 0, screened=screened, start=start)
            return value
        result = self.probe(scheme, lr, report=self.reporter(trial))
        return self.record(trial, result, screened, start)

    def prepare(self, trial: optuna.Trial | optuna.trial.FixedTrial, start: float
                ) -> tuple[InitScheme, float, bool]:
        """A trial's scheme (LSUV calibrated), learning rate, and whether it was screened;
        ``TrialPruned`` (its reason recorded) when it cannot run or is screened out. The working
        copy is left initialized with the scheme, and the trial holds its weights' digest
        (:mod:`autoinit.twins`)."""
        baseline = trial.user_attrs.get("baseline")
        scheme, lr = suggest_scheme(trial, self.plan, self.space, self.lr, self.seed)
        if baseline == "lsuv" and self.data.loss is None:
            _prune(trial, "lsuv needs loss_fn(model, batch) to run the model forward; a "
                   "custom train_step alone gives none", steps=0, start=start)
        if baseline == "lsuv":
            self.reset()
            scheme = lsuv_scheme(self.work, self.data.train[0], self.data.loss, seed=self.seed,
                                 **self.layer_plan.select)
        trial.set_user_attr("rules", rules_to_json(scheme.groups))
        trial.set_user_attr(PROBE_LENGTH_ATTR, self.config.steps)  # longer after a lengthening
        self.reset()
        apply_scheme(self.work, scheme)
        trial.set_user_attr(DIGEST_ATTR, weights_digest(self.work, lr, self.config.steps))
        screened = self.screening and baseline is None and self.data.loss is not None
        if screened:
            reason = screen(self.work, self.data, self.config.seed)
            if reason:
                _prune(trial, reason, steps=0, screened=True, start=start)
        return scheme, lr, screened

    @staticmethod
    def reporter(trial: optuna.Trial) -> Callable[[int, float], bool]:
        """The probe's ``report``: the score to Optuna, and the pruner's decision (a named
        candidate's score is recorded at its rung too, and it is never stopped)."""
        baseline = trial.user_attrs.get("baseline")

        def report(step: int, value: float) -> bool:
            trial.report(value, step)
            prune = trial.should_prune()
            return baseline is None and prune

        return report

    @staticmethod
    def record(trial: optuna.Trial, result: ProbeResult, screened: bool, start: float) -> float:
        """The probe's evidence in the trial's user attributes; its score, or ``TrialPruned``
        when it diverged or was stopped."""
        trial.set_user_attr("curve", result.curve)
        trial.set_user_attr(RUNGS_ATTR, [list(r) for r in result.rung_scores])
        if result.cooldown_note:
            trial.set_user_attr("cooldown_note", result.cooldown_note)
        trial.set_user_attr("train_loss", _thin(result.train_loss))
        if result.train_values:  # a custom train_step's values
            trial.set_user_attr("train_values", {k: _thin(v) for k, v in result.train_values.items()})
        steps = result.steps + result.branch_steps
        if result.branch_steps:  # the rungs' cooldown branches: counted, not on the curve
            trial.set_user_attr("branch_steps", result.branch_steps)
        if result.diverged:
            return _prune(trial, result.diverged, steps, screened=screened, start=start)
        if result.stopped_at is not None:
            return _prune(trial, f"pruned at step {result.stopped_at}", steps,
                          screened=screened, start=start)
        _record_cost(trial, steps, screened=screened, start=start)
        return result.score


def thin_stride(steps: int) -> int:
    """Every how many steps a trial keeps one training loss (at most ``TRAIN_POINTS`` and a few):
    the step of kept point ``i`` is ``i * thin_stride(steps) + 1``."""
    return max(1, steps // TRAIN_POINTS)


def _thin(values: list[float]) -> list[float]:
    return [round(v, 6) for v in values[::thin_stride(len(values))]]


def _record_cost(trial: optuna.Trial, steps: int, *, screened: bool, start: float) -> None:
    trial.set_user_attr("probe_steps", steps)
    trial.set_user_attr("screening_passes", int(screened))
    trial.set_user_attr("seconds", time.perf_counter() - start)


def _prune(trial: optuna.Trial, reason: str, steps: int, *, screened: bool = False, start: float) -> float:
    trial.set_user_attr(FAILURE, reason)
    _record_cost(trial, steps, screened=screened, start=start)
    raise optuna.TrialPruned(reason)
