"""The selection round (autoinit.selection): challengers whose probe learned nothing are left out
where the incumbent's learned."""

from __future__ import annotations

import optuna
import pytest
from conftest import tiny_mlp

import autoinit
from autoinit.probe import ProbeConfig, ProbeResult
from autoinit.selection import Selection, reuse_selection, select

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


def test_a_challenger_that_learned_nothing_where_the_incumbent_learned_is_not_re_run():
    scores = {0.1: {1: 1.0, 2: 1.0}, 0.2: {1: 2.0, 2: 2.0}, 0.3: {1: 0.5, 2: 0.5}}
    study = _study([("orthogonal", 0.1, 1.0), ("zero_readout", 0.2, 2.01), (None, 0.3, 0.9)])
    obj = _Scripted(scores)
    cands, chosen, reason = select(study, obj, Selection(top=1), CONFIG, prior=PRIOR)
    assert [c.name for c in cands] == ["orthogonal", "search #2"] and chosen.name == "search #2"
    assert {lr for lr, _, _ in obj.runs} == {0.1, 0.3}
    assert ("not re-run, their probe learned nothing where orthogonal's learned: zero_readout "
            "(2.0100, prior 2.0000)") in reason
    stored = reuse_selection(study, obj, Selection(top=1), CONFIG)  # a rerun gets it back
    assert [c.name for c in stored[0]] == ["orthogonal", "search #2"] and stored[2].startswith(reason)
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



def test_a_search_hands_its_prior_loss_to_the_round(tiny_loader, monkeypatch):
    from autoinit import search_rounds
    from autoinit.search import run_search

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("prior"))
        return select(*args, **kwargs)

    monkeypatch.setattr(search_rounds, "select", spy)
    run_search(tiny_mlp(), tiny_loader, n_trials=7, probe_steps=4, threads=1)
    assert len(seen) == 1 and isinstance(seen[0], float) and seen[0] > 0
