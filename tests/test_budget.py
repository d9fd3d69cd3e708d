"""A search budgeted in the user's terms: the plan, lengthened probes, the early end, the R line."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import optuna
import pytest
import torch
from conftest import tiny_mlp
from optuna.trial import TrialState, create_trial
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autoinit.budget import (
    MIN_PROBE_STEPS,
    MIN_SCREEN_STEPS,
    BudgetWatch,
    budget_of,
    lengthen_fits,
    plan_budget,
    priority,
)
from autoinit.errors import ConfigError
from autoinit.search import run_search
from autoinit.selection import Selection, selection_steps
from autoinit.settings import DEFAULTS

NAMED = ["pytorch_default", "xavier_normal", "kaiming_normal", "lecun_normal", "orthogonal", "lsuv",
         "zero_readout"]


# ------------------------------------------------------------------------------------ the plan

def _planned_steps(plan) -> int:
    """The most steps a plan's trials, noise probe (where it has one) and selection round take."""
    from autoinit.probe import ProbeConfig

    config = ProbeConfig(steps=plan.probe_steps)
    return (plan.n_trials + plan.noise) * plan.probe_steps + selection_steps(config, plan.selection)


def test_a_large_budget_keeps_the_defaults():
    plan = plan_budget(50_000, NAMED)
    assert (plan.shape, plan.probe_steps, plan.n_trials) == ("full", DEFAULTS.probe_steps,
                                                             DEFAULTS.n_trials)
    assert plan.selection == Selection() and plan.note is None


def test_the_shapes_get_leaner_as_the_budget_shrinks():
    shapes = [plan_budget(b, NAMED) for b in (50_000, 2_000, 600, 140, 100)]
    assert [p.shape for p in shapes] == ["full", "lean", "halving", "named", "fewest"]
    assert [p.probe_steps for p in shapes] == sorted((p.probe_steps for p in shapes), reverse=True)
    lean, halving, named, fewest = shapes[1:]
    assert lean.selection == Selection(top=1, seeds=2, steps_factor=1.0)
    assert lean.n_trials == len(NAMED) + 4
    # every named candidate screened for 40 steps, the best two re-run for 160: 600 in all
    assert (halving.probe_steps, halving.n_trials) == (40, len(NAMED))
    assert halving.selection == Selection(top=2, seeds=1, steps_factor=4.0, among_best=True)
    assert named.selection.seeds == 0 and named.n_trials == len(NAMED)
    assert fewest.probe_steps == MIN_PROBE_STEPS and len(fewest.named) < len(NAMED)
    assert fewest.note.startswith("the budget of 100 steps cannot probe all 7 named candidates")


@pytest.mark.parametrize("budget", range(160, 30_000, 379))
def test_every_plan_fits_its_budget_with_probes_of_a_useful_length(budget):
    plan = plan_budget(budget, NAMED)
    assert _planned_steps(plan) <= budget
    shortest = MIN_SCREEN_STEPS if plan.shape == "halving" else MIN_PROBE_STEPS
    assert shortest <= plan.probe_steps <= DEFAULTS.probe_steps
    # a noise probe only where it can change the answer: an early end or a lengthening
    assert plan.noise == (plan.n_trials > len(plan.named) or plan.can_lengthen)


def test_fewest_keeps_the_candidates_that_fit_the_model_first():
    names = ["pytorch_default", "xavier_normal", "kaiming_normal", "lsuv", "fixup", "skipinit",
             "model_default"]
    assert priority(names) == ["model_default", "pytorch_default", "fixup", "skipinit",
                               "xavier_normal", "kaiming_normal", "lsuv"]
    plan = plan_budget(2 * MIN_PROBE_STEPS, names)
    assert plan.named == ("model_default", "pytorch_default")
    assert "probing 2 (model_default, pytorch_default) for 20 steps" in plan.note


def test_a_lengthening_fits_only_with_budget_to_spare():
    assert not plan_budget(600, NAMED).can_lengthen  # all of it goes into the halving
    assert lengthen_fits(3600, 7, 100, Selection(top=1, seeds=2, steps_factor=1.0))
    assert not lengthen_fits(3599, 7, 100, Selection(top=1, seeds=2, steps_factor=1.0))


def test_explicit_options_win():
    plan = plan_budget(600, NAMED, probe_steps=30, selection=Selection(top=1, seeds=2))
    assert plan.probe_steps == 30 and plan.selection == Selection(top=1, seeds=2)
    assert plan_budget(50_000, NAMED, n_trials=12).n_trials == 12


def test_budget_of_states_the_fraction():
    assert budget_of(1000) == math.floor(DEFAULTS.budget_fraction * 1000)
    with pytest.raises(ConfigError, match="train_steps must be a positive integer, got 0"):
        budget_of(0)


# ------------------------------------------------------------------------------------ the rules

def _trial(number: int, value: float | None, baseline: str | None = None) -> optuna.trial.FrozenTrial:
    state = TrialState.COMPLETE if value is not None else TrialState.PRUNED
    t = create_trial(state=state, value=value, user_attrs={"baseline": baseline} if baseline else {})
    t.number = number
    return t


def test_early_end_needs_a_clear_leader_and_m_search_trials_that_stay_away():
    watch = BudgetWatch(lambda t: (0.0, 0), ("a", "b"), lengthen=False, after=3, noise=0.01)
    named = [_trial(0, 0.50, "a"), _trial(1, 0.90, "b")]
    far = [_trial(i, 0.80) for i in range(2, 5)]
    assert watch.early_end(named + far[:2]) is None  # fewer than m search trials
    assert "a (0.5000) leads every other candidate" in watch.early_end(named + far)
    close = [*far[:2], _trial(5, 0.505)]
    assert watch.early_end(named + close) is None  # the last one came within the noise
    assert watch.early_end(named + far + [_trial(6, None)]) is not None  # pruned: not close


def test_scores_within_the_noise_do_not_separate():
    watch = BudgetWatch(lambda t: (0.0, 0), ("a", "b"), lengthen=True, noise=0.02)
    assert not watch.separated({"a": _trial(0, 0.50, "a"), "b": _trial(1, 0.51, "b")})
    assert watch.separated({"a": _trial(0, 0.50, "a"), "b": _trial(1, 0.60, "b")})


# ------------------------------------------------------------------------------------ searches

def _loader(x: torch.Tensor, y: torch.Tensor) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=32)


def test_without_train_steps_nothing_is_planned(tiny_loader):
    result = run_search(tiny_mlp(), tiny_loader, n_trials=8, probe_steps=6, seed=0)
    assert result.budget is None and result.ended_early is None
    assert result.cost.probe_steps == 8 * 6 and "search cost:" not in result.summary()
    assert result.context.config.eval_every == 1  # a quarter of the probe, as before


def test_train_steps_bounds_the_search_and_states_r(tiny_loader):
    result = run_search(tiny_mlp(), tiny_loader, train_steps=800, seed=0)
    b, c = result.budget, result.cost
    assert b.budget_steps == budget_of(800)
    assert c.probe_steps + c.screening_passes + c.selection_steps <= b.budget_steps
    assert b.unused_steps == b.budget_steps - (c.probe_steps + c.screening_passes
                                               + c.selection_steps)
    r = c.ratio(800)
    assert f"search cost: {c.tse:.0f} training steps, R = {r:.2g} of your 800-step training" \
        in result.summary()


class _NoSignal(nn.Module):
    """Only ``unused`` is initialized (``only="unused"``), and it never touches the output:
    every candidate trains to the same score, so the probes cannot separate."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.head = nn.Linear(8, 2)
            self.unused = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def test_probes_are_lengthened_when_the_candidates_do_not_separate(tiny_loader):
    result = run_search(_NoSignal(), tiny_loader, train_steps=2000, probe_steps=10,
                        only="unused", seed=0)
    b = result.budget
    assert b.probe_steps == 2 * b.planned_probe_steps
    assert any(line.startswith("probes lengthened to") for line in b.lines)
    assert f"probes lengthened from {b.planned_probe_steps} to {b.probe_steps} steps" \
        in result.summary()
    assert result.context.config.steps == b.probe_steps
    c = result.cost  # the last trial may overshoot by one probe, as with budget_steps
    assert c.probe_steps + c.screening_passes + c.selection_steps <= b.budget_steps + b.probe_steps


def test_probes_keep_their_length_when_the_candidates_separate():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    result = run_search(tiny_mlp(), _loader(x, (x[:, 0] > 0).long()), train_steps=2000,
                        probe_steps=10, seed=0)
    assert any(line.startswith("noise:") for line in result.budget.lines)
    assert result.budget.probe_steps == result.budget.planned_probe_steps == 10


class _Teacher(nn.Module):
    """Its own init is the exact solution of the data, so one candidate is clearly best."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8, bias=False)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.fc.weight.copy_(_TEACHER)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


_TEACHER = torch.randn(8, 8, generator=torch.Generator().manual_seed(3))


def test_the_search_ends_early_when_one_candidate_leads_clearly():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1024, 8, generator=g)
    lines: list[str] = []
    from autoinit.progress import SearchProgress

    result = run_search(_Teacher(), _loader(x, x @ _TEACHER.T), train_steps=20_000, probe_steps=5,
                        seed=0, progress=SearchProgress(None, live=False, out=lines.append))
    assert result.chosen == "model_default"
    assert result.ended_early and "model_default" in result.ended_early
    assert result.budget.unused_steps > 0
    assert any(line.startswith("search ended early:") for line in lines)
    assert "search ended early:" in result.summary()
    assert len(result.study.trials) < DEFAULTS.n_trials  # the plan allowed 30


def test_a_budget_below_one_minimal_probe_still_plans_one_candidate():
    plan = plan_budget(9, NAMED)
    assert plan.named == ("pytorch_default",) and plan.probe_steps == 9
    assert _planned_steps(plan) <= 9


# ------------------------------------------------------------------------ the halving round

class _Horizon:
    """An objective whose candidates rank one way after a short probe and the other way after a
    long one (as deep tanh MLPs do: docs/search_cost.md); it records what it re-ran."""

    def __init__(self, early_leader: float = 0.9) -> None:
        self.late = {"early_leader": early_leader, "runner_up": 0.3, "slow_starter": 0.1}
        self.reran: list[tuple[str, int]] = []

    def scheme_of(self, trial):
        return _Named(trial.user_attrs["baseline"]), 1e-3

    def probe(self, scheme, lr, config):
        self.reran.append((scheme.name, config.steps))
        return type("Result", (), {"score": self.late[scheme.name]})()


@dataclass(frozen=True)
class _Named:
    name: str
    seed: int = 0

    def with_seed(self, seed: int) -> _Named:
        return replace(self, seed=seed)


def test_the_halving_round_reruns_the_best_few_longer_and_the_longer_probe_decides():
    from autoinit.probe import ProbeConfig
    from autoinit.selection import select

    study = optuna.create_study()
    for name, short in [("early_leader", 0.5), ("runner_up", 0.6), ("slow_starter", 0.7)]:
        study.add_trial(create_trial(value=short, user_attrs={"baseline": name}))
    obj, config = _Horizon(), ProbeConfig(steps=10)
    halving = Selection(top=2, seeds=1, steps_factor=4.0, among_best=True)
    cands, chosen, reason = select(study, obj, halving, config)
    # only the two best short probes go on, 4x longer; the slow starter was screened out
    assert obj.reran == [("early_leader", 40), ("runner_up", 40)]
    assert [c.name for c in cands] == ["early_leader", "runner_up"]
    assert chosen.name == "runner_up" and chosen.scores == [0.3]
    assert reason.startswith("runner_up chosen: the best of the 2 best probe scores re-run for 40")
    assert selection_steps(config, halving) == 2 * 40 and "a guess" not in reason
    reason = select(study, _Horizon(early_leader=0.3001), halving, config)[2]  # a close call
    assert reason.endswith("so the choice is close to a guess: a larger budget would decide")


def test_a_small_budget_screens_every_named_candidate_then_reruns_the_best_two(tiny_loader):
    result = run_search(tiny_mlp(), tiny_loader, train_steps=800, seed=0)
    assert "the best 2 re-run at 4x the probe" in result.budget.plan
    screen = result.budget.probe_steps
    named = [t for t in result.study.trials if t.user_attrs.get("baseline")]
    assert len(named) == len(result.study.trials)  # no search trial at this budget
    assert [len(c.scores) for c in result.candidates] == [1, 1]
    assert result.reason.startswith(f"{result.chosen} chosen: the best of the 2 best probe "
                                    f"scores re-run for {4 * screen} steps")
    best_two = sorted((t.value, t.user_attrs["baseline"]) for t in named)[:2]
    assert {c.name for c in result.candidates} == {name for _, name in best_two}


def test_the_halving_replay_picks_as_the_rule_says():
    """scripts/halving_replay.py: named takes the best 2L-step probe; halving keeps the best two
    L-step probes and takes the better of them at 3L."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))
    from halving_replay import choices

    probes = {"fast": {"50": 1.0, "100": 0.5, "150": 0.45}, "slow": {"50": 1.2, "100": 0.6,
                                                                     "150": 0.30},
              "bad": {"50": 2.0, "100": 0.4, "150": 0.1}}
    record = {"full": {"fast": {"metric": -80.0}, "slow": {"metric": -90.0}, "bad": {"metric": -95.0}},
              "probes": {k: {"old": v} for k, v in probes.items()}}
    assert choices(record, 50) == ("bad", "bad", "slow")
