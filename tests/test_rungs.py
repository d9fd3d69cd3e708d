"""Successive-halving rungs in a search: who goes on, the rank agreement between rungs, where
it is shown; and a single-rung search as before."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from conftest import tiny_mlp
from optuna.trial import TrialState
from torch.utils.data import DataLoader, TensorDataset

from autoinit.errors import ConfigError
from autoinit.rungs import RUNGS_ATTR, make_pruner, rank_agreement, rung_steps, spearman
from autoinit.search import Selection, run_search
from autoinit.status import study_status


def test_spearman_on_a_hand_example():
    # ranks (1, 2, 3, 4) against (2, 1, 4, 3): d^2 = 4, rho = 1 - 6 * 4 / (4 * 15) = 0.6
    assert spearman([0.1, 0.2, 0.3, 0.4], [5.0, 4.0, 9.0, 7.0]) == pytest.approx(0.6)
    # a tie takes the mean rank: (1, 2.5, 2.5) against (1, 2, 3), rho = 0.866
    assert spearman([1.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(math.sqrt(3) / 2)
    assert math.isnan(spearman([1.0, 2.0], [2.0, 1.0]))  # too few to rank
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_agreement_pairs_consecutive_rungs_over_the_trials_that_reached_both():
    trials = [[[4, 0.1], [12, 5.0], [36, 1.0]], [[4, 0.2], [12, 4.0], [36, 2.0]],
              [[4, 0.3], [12, 9.0], [36, 3.0]], [[4, 0.4], [12, 7.0]], [[4, 0.5]],
              [[4, math.inf]]]
    (first, second) = rank_agreement(trials)
    assert (first.lower, first.upper, first.trials) == (4, 12, 4)
    assert first.spearman == pytest.approx(0.6)
    assert (second.lower, second.upper, second.trials) == (12, 36, 3)
    assert second.spearman == pytest.approx(0.5)  # (2, 1, 3) against (1, 2, 3): d^2 = 2


def test_rung_steps_grow_threefold_from_probe_steps():
    assert rung_steps(50, 3) == (50, 150, 450) and rung_steps(100, 1) == (100,)
    with pytest.raises(ConfigError, match="rungs must be a positive integer, got 0"):
        rung_steps(50, 0)


@pytest.fixture(scope="module")
def rung_search(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()), batch_size=32)
    storage = f"sqlite:///{tmp_path_factory.mktemp('rungs') / 'study.db'}"
    result = run_search(tiny_mlp(), loader, n_trials=16, probe_steps=4, rungs=2, cooldown=0.25,
                        storage=storage, study_name="rungs", progress=False,
                        selection=Selection(top=1, seeds=1))
    return result, storage


def test_rungs_keep_the_top_third_and_baselines_run_every_rung(rung_search):
    result, _ = rung_search
    trials = result.study.get_trials(deepcopy=False)
    seen: list[float] = []
    for t in trials:
        if RUNGS_ATTR not in t.user_attrs:  # rejected by the screening pass before any step
            assert t.user_attrs["failure"].startswith("screen")
            continue
        scores = dict(t.user_attrs[RUNGS_ATTR])
        seen.append(scores[4])
        if t.user_attrs.get("baseline"):
            assert t.state == TrialState.COMPLETE and sorted(scores) == [4, 12]
            continue
        # asynchronous successive halving: on past the rung only within the top third so far
        top_third = sorted(seen)[max(0, len(seen) // 3 - 1)]
        kept = scores[4] <= top_third
        assert (t.state == TrialState.COMPLETE) == kept, t.number
        assert sorted(scores) == ([4, 12] if kept else [4])
        if not kept:  # stopped at the rung: 3 steps and a 1-step cooldown branch
            assert t.user_attrs["probe_steps"] == 4 and t.user_attrs["branch_steps"] == 1


def test_the_pruner_keeps_a_trial_only_within_the_top_third_of_its_rung_so_far():
    study = optuna.create_study(pruner=make_pruner(4))
    stopped = []
    for value in [5, 3, 8, 1, 9, 2, 7, 4, 6]:
        trial = study.ask()
        trial.report(value, 4)
        if trial.should_prune():
            stopped.append(value)
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, value)
    # the bar is the (n // 3)-th best of the n scores seen (the best while n < 6)
    assert stopped == [8, 9, 7, 4, 6]


def test_the_selection_round_runs_at_the_longest_rung(rung_search):
    result, _ = rung_search
    assert result.cost.selection_steps == sum(len(c.scores) for c in result.candidates) * 12


def test_the_rank_agreement_is_in_the_result_its_summary_and_the_status(rung_search):
    result, storage = rung_search
    (agreement,) = result.rank_agreement
    complete = [t for t in result.study.trials if t.state == TrialState.COMPLETE]
    assert (agreement.lower, agreement.upper, agreement.trials) == (4, 12, len(complete))
    expected = spearman([dict(t.user_attrs[RUNGS_ATTR])[4] for t in complete],
                        [dict(t.user_attrs[RUNGS_ATTR])[12] for t in complete])
    assert agreement.spearman == pytest.approx(expected)
    assert f"probe rank agreement between rungs (Spearman): {agreement.describe()}" \
        in result.summary()
    status = study_status(storage, "rungs")
    assert status.rank_agreement == result.rank_agreement
    assert agreement.describe() in status.summary()


def test_a_single_rung_search_scores_and_prunes_as_before(tiny_loader):
    result = run_search(tiny_mlp(), tiny_loader, n_trials=8, probe_steps=6,
                        progress=False, selection=Selection(top=1, seeds=1))
    assert result.rank_agreement == () and "rank agreement" not in result.summary()
    for t in result.study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.user_attrs[RUNGS_ATTR] == [[6, t.value]]
        assert t.user_attrs["probe_steps"] == 6
    assert result.cost.selection_steps == sum(len(c.scores) for c in result.candidates) * 12
