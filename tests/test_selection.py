"""The selection round (autoinit.selection): further seeds where the first ones leave the choice
within the noise, and challengers whose probe learned nothing left out."""

from __future__ import annotations

import optuna
import pytest
from conftest import tiny_mlp

import autoinit
from autoinit.probe import ProbeConfig, ProbeResult
from autoinit.selection import Selection, reuse_selection, select, selection_steps

PRIOR = 2.0  # learned: a held-out loss at most 1.8


class _Scripted:
    """An objective whose re-runs score what ``scores[lr][seed]`` says: each candidate is told
    apart by its learning rate, each re-run by its probe seed."""

    def __init__(self, scores: dict[float, dict[int, float]]) -> None:
        self.scores = scores
        self.runs: list[tuple[float, int, int]] = []  # (lr, seed, steps)
        self.scheme = autoinit.uniform_scheme(tiny_mlp(), "orthogonal")

    def scheme_of(self, trial):
        return self.scheme, trial.params["lr"]

    def probe(self, scheme, lr, config=None, report=None):
        self.runs.append((lr, config.seed, config.steps))
        return ProbeResult(self.scores[lr][config.seed], [], [], config.steps)


def _study(trials: list[tuple[str | None, float, float]]) -> optuna.Study:
    """A finished search: ``(baseline name or None for a search trial, lr, probe score)``."""
    study = optuna.create_study()
    dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1.0)}
    for name, lr, value in trials:
        study.add_trial(optuna.trial.create_trial(
            params={"lr": lr}, distributions=dist, value=value,
            user_attrs={"baseline": name} if name else {}))
    return study


CONFIG = ProbeConfig(steps=10, seed=0)


def test_a_choice_within_the_noise_is_decided_on_more_seeds_of_the_two_it_is_between():
    # seeds 1-2: the challenger (lr 0.2) is ahead by less than the noise; 3-4 settle it
    obj = _Scripted({0.1: {1: 1.0, 2: 0.6, 3: 1.2, 4: 1.2},
                     0.2: {1: 0.7, 2: 0.7, 3: 0.7, 4: 0.72},
                     0.3: {1: 1.5, 2: 1.5}})
    study = _study([("xavier_normal", 0.1, 0.9), (None, 0.2, 0.8), (None, 0.3, 0.85)])
    reports = []
    cands, chosen, reason = select(study, obj, Selection(top=2), CONFIG,
                                   on_probe=lambda *a: reports.append(a))
    assert chosen.name == "search #1"
    assert "decided on 4 seeds each: the first 2 left it within the noise" in reason
    assert [len(c.scores) for c in cands] == [4, 4, 2]  # the third is not re-run again
    extra = [(lr, seed) for lr, seed, _ in obj.runs[6:]]
    assert sorted(extra) == [(0.1, 3), (0.1, 4), (0.2, 3), (0.2, 4)]
    assert reports[0][:2] == (0, 6) and reports[-1][:2] == (10, 10)  # the total grows by 4
    stored = reuse_selection(study, obj, Selection(top=2), CONFIG)
    assert stored[1].name == "search #1" and [len(c.scores) for c in stored[0]] == [4, 4, 2]


def test_more_seeds_can_keep_the_incumbent_and_none_are_run_when_the_first_ones_decide():
    within = {0.1: {1: 1.0, 2: 0.6, 3: 0.6, 4: 0.6}, 0.2: {1: 0.7, 2: 0.7, 3: 0.9, 4: 0.9}}
    study = _study([("xavier_normal", 0.1, 0.9), (None, 0.2, 0.8)])
    obj = _Scripted(within)
    _, chosen, reason = select(study, obj, Selection(top=1), CONFIG)
    assert chosen.name == "xavier_normal" and "decided on 4 seeds" in reason
    clear = {0.1: {1: 1.0, 2: 1.0}, 0.2: {1: 0.5, 2: 0.5}}
    obj = _Scripted(clear)
    _, chosen, reason = select(_study([("xavier_normal", 0.1, 0.9), (None, 0.2, 0.8)]), obj,
                               Selection(top=1), CONFIG)
    assert chosen.name == "search #1" and len(obj.runs) == 4 and "more" not in reason
    obj = _Scripted(within)  # more_seeds=0: today's round of two seeds
    _, chosen, reason = select(_study([("xavier_normal", 0.1, 0.9), (None, 0.2, 0.8)]), obj,
                               Selection(top=1, more_seeds=0), CONFIG)
    assert chosen.name == "xavier_normal" and "within the noise" in reason and len(obj.runs) == 4


def test_a_challenger_that_learned_nothing_where_the_incumbent_learned_is_not_re_run():
    scores = {0.1: {1: 1.0, 2: 1.0}, 0.2: {1: 2.0, 2: 2.0}, 0.3: {1: 0.5, 2: 0.5}}
    study = _study([("orthogonal", 0.1, 1.0), ("zero_readout", 0.2, 2.01), (None, 0.3, 0.9)])
    obj = _Scripted(scores)
    cands, chosen, reason = select(study, obj, Selection(top=1), CONFIG, prior=PRIOR)
    assert [c.name for c in cands] == ["orthogonal", "search #2"]
    assert {lr for lr, _, _ in obj.runs} == {0.1, 0.3}
    assert ("not re-run, their probe learned nothing where orthogonal's learned: zero_readout "
            "(2.0100, prior 2.0000)") in reason
    obj = _Scripted(scores)  # without a prior loss (a loss of your own) every finalist is re-run
    cands, _, reason = select(study, obj, Selection(top=1), CONFIG)
    assert len(cands) == 3 and "not re-run" not in reason


@pytest.mark.parametrize("incumbent_score", [1.95, 1.0])
def test_no_challenger_is_left_out_when_none_would_be_re_run_or_the_incumbent_learned_nothing(
        incumbent_score):
    scores = {0.1: {1: 1.0, 2: 1.0}, 0.2: {1: 2.0, 2: 2.0}}
    study = _study([("orthogonal", 0.1, incumbent_score), ("zero_readout", 0.2, 2.01)])
    cands, _, reason = select(study, _Scripted(scores), Selection(top=0), CONFIG, prior=PRIOR)
    assert len(cands) == 2 and "not re-run" not in reason


def test_the_round_reserves_the_further_seeds_in_a_budget():
    config = ProbeConfig(steps=100)
    assert selection_steps(config, Selection()) == (4 * 2 + 2 * 2) * 200
    assert selection_steps(config, Selection(more_seeds=0)) == 4 * 2 * 200
    # one seed has no noise estimate, and a halving step no incumbent: nothing further to run
    assert Selection(seeds=1).reruns() == 4 and Selection(top=2, among_best=True).reruns() == 4
