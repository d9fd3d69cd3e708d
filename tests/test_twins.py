"""Twin trials (autoinit.twins): a trial whose initialized weights equal a finished trial's takes
that trial's probe at no step, and the selection round re-runs only the first of them."""

from __future__ import annotations

import copy

import optuna
import pytest
import torch
from conftest import tiny_data
from test_selection import CONFIG, _Scripted, _study
from torch import nn

import autoinit.objective
import autoinit.twins
from autoinit.progress import _outcome
from autoinit.search import run_search
from autoinit.selection import Selection, select
from autoinit.twins import TWIN_ATTR, weights_digest


def _linear_net() -> nn.Module:
    """No activation anywhere: every layer has the linear gain, under which Kaiming's rule is
    LeCun's, so those two named candidates draw the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 2))


def test_the_digest_reads_every_bit_of_the_weights_and_the_probe_settings():
    net = _linear_net()
    first = weights_digest(net, 1e-3, 10)
    assert weights_digest(copy.deepcopy(net), 1e-3, 10) == first
    assert weights_digest(net, 1e-3, 20) != first and weights_digest(net, 2e-3, 10) != first
    with torch.no_grad():
        net[0].weight[3, 2] = torch.nextafter(net[0].weight[3, 2], torch.tensor(1.0))
    assert weights_digest(net, 1e-3, 10) != first
    net.register_buffer("count", torch.zeros(2))  # buffers count too
    assert weights_digest(net, 1e-3, 10) != weights_digest(_linear_net(), 1e-3, 10)


@pytest.mark.parametrize("population", [1, 2])
def test_a_twin_takes_its_firsts_probe_and_the_search_decides_as_if_it_had_probed(
        monkeypatch, population):
    kw = dict(n_trials=9, probe_steps=6, seed=0, progress=False, population=population, threads=1)
    found = run_search(_linear_net(), tiny_data(), **kw)
    by_name = {t.user_attrs.get("baseline"): t for t in found.study.trials}
    lecun, kaiming = by_name["lecun_normal"], by_name["kaiming_normal"]
    assert lecun.user_attrs[TWIN_ATTR] == kaiming.number
    assert lecun.value == kaiming.value and lecun.user_attrs["curve"] == kaiming.user_attrs["curve"]
    assert lecun.intermediate_values == kaiming.intermediate_values
    assert lecun.user_attrs["probe_steps"] == 0 and kaiming.user_attrs["probe_steps"] == 6
    assert [t.number for t in found.study.trials if TWIN_ATTR in t.user_attrs] == [lecun.number]
    assert "not probed again, the same weights as an earlier trial: lecun_normal = kaiming_normal" \
        in found.summary()
    assert _outcome(lecun).endswith(f"(= #{kaiming.number})")

    monkeypatch.setattr(autoinit.objective, "find_twin", lambda trial: None)  # probe every trial
    probed = run_search(_linear_net(), tiny_data(), **kw)
    assert [t.value for t in probed.study.trials] == pytest.approx(
        [t.value for t in found.study.trials], rel=1e-6)
    assert probed.chosen == found.chosen
    assert found.cost.probe_steps == probed.cost.probe_steps - 6


def test_the_round_re_runs_the_first_of_twins_and_takes_the_next_distinct_trial():
    scores = {0.1: {1: 1.0, 2: 1.0}, 0.3: {1: 0.5, 2: 0.5}, 0.4: {1: 0.6, 2: 0.6}}
    study = _study([("orthogonal", 0.1, 1.0), (None, 0.3, 0.4)])
    dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1.0)}
    study.add_trial(optuna.trial.create_trial(  # search #2: search #1's weights again
        params={"lr": 0.3}, distributions=dist, value=0.4, user_attrs={TWIN_ATTR: 1}))
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.4}, distributions=dist, value=0.45))
    obj = _Scripted(scores)
    cands, chosen, _ = select(study, obj, Selection(top=2), CONFIG)
    assert [c.name for c in cands] == ["orthogonal", "search #1", "search #3"]
    assert chosen.name == "search #1" and len(obj.runs) == 6


def test_a_twin_of_a_trial_that_failed_its_probe_is_probed_itself():
    study = optuna.create_study()
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(
        params={"x": 0.5}, distributions=dist, state=optuna.trial.TrialState.PRUNED,
        user_attrs={"weights_digest": "abc"}))
    trial = study.ask()
    trial.set_user_attr("weights_digest", "abc")
    assert autoinit.twins.find_twin(trial) is None  # only a complete, finite first is taken
