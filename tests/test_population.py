"""Population probes: a member's curve is its sequential probe's, members do not reach each
other, dropout masks follow the seeds, fallbacks say why, and the search chooses the same."""

from __future__ import annotations

import copy
import math

import optuna
import pytest
import torch
from conftest import tiny_mlp
from torch import nn

from autoinit.config import study_from_dict
from autoinit.errors import ConfigError, StudyFileError
from autoinit.loop import TrainLoop
from autoinit.population import max_members, run_population
from autoinit.population_choice import choose_population
from autoinit.probe import ProbeConfig, ProbeData, run_probe
from autoinit.search import run_search


@pytest.fixture
def data(tiny_loader):
    batches = list(tiny_loader)
    return ProbeData(batches[2:], batches[:2])


def _members(net: nn.Module, scales: list[float]) -> list[nn.Module]:
    """Copies of ``net`` whose first layer's weights are scaled: different initializations."""
    out = []
    for scale in scales:
        member = copy.deepcopy(net)
        with torch.no_grad():
            member[0].weight.mul_(scale)
        out.append(member)
    return out


def _same(a, b, rel: float = 1e-5) -> None:
    assert [s for s, _ in a.curve] == [s for s, _ in b.curve]
    assert [v for _, v in a.curve] == pytest.approx([v for _, v in b.curve], rel=rel)
    assert a.train_loss == pytest.approx(b.train_loss, rel=rel)
    assert (a.steps, a.diverged, a.stopped_at) == (b.steps, b.diverged, b.stopped_at)
    assert a.score == pytest.approx(b.score, rel=rel)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_members_curve_is_its_sequential_probe(data, optimizer):
    members = _members(tiny_mlp(), [0.5, 1.0, 2.0])
    alone = [copy.deepcopy(m) for m in members]
    config = ProbeConfig(steps=12, eval_every=4, optimizer=optimizer, lr=0.01, objective="mean",
                         cooldown=0.25)
    run = run_population(members, data, config)
    assert run.fallback is None
    for member, single, result in zip(members, alone, run.results, strict=True):
        _same(result, run_probe(single, data, config))
        for a, b in zip(member.parameters(), single.parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-6)  # trained in place, as run_probe trains


def test_batchnorm_statistics_are_kept_per_member(data):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    members = _members(net, [0.5, 3.0])
    alone = [copy.deepcopy(m) for m in members]
    config = ProbeConfig(steps=8, eval_every=4, optimizer="sgd", lr=0.01)
    run = run_population(members, data, config)
    for member, single, result in zip(members, alone, run.results, strict=True):
        _same(result, run_probe(single, data, config))
        assert torch.allclose(member[1].running_var, single[1].running_var, atol=1e-6)
    assert not torch.allclose(members[0][1].running_var, members[1][1].running_var)


def test_a_diverging_member_leaves_and_changes_no_other(data):
    config = ProbeConfig(steps=12, eval_every=4)
    healthy = _members(tiny_mlp(), [0.5, 2.0])
    poisoned = copy.deepcopy(healthy[0])
    with torch.no_grad():
        poisoned[0].weight[0, 0] = math.nan
    without = run_population([copy.deepcopy(m) for m in healthy], data, config).results
    run = run_population([healthy[0], poisoned, healthy[1]], data, config)
    bad = run.results[1]
    assert bad.diverged == "non-finite training loss at step 1" and bad.score == math.inf
    assert bad.steps == 4  # noticed at the first evaluation, as run_probe notices it
    for result, reference in zip(run.results[::2], without, strict=True):
        _same(result, reference, rel=1e-6)


def test_a_member_its_report_stops_leaves_the_others_going(data):
    config = ProbeConfig(steps=12, eval_every=4)
    members = _members(tiny_mlp(), [0.5, 1.0, 2.0])
    alone = [copy.deepcopy(m) for m in members]
    heard: list[tuple[int, int]] = []

    def report(member: int):
        def hear(step: int, score: float) -> bool:
            heard.append((member, step))
            return member == 1  # the pruner stops the second member at its first report
        return hear

    run = run_population(members, data, config, [report(i) for i in range(3)])
    assert run.results[1].stopped_at == 4 and run.results[1].steps == 4
    assert sorted(heard) == [(0, 4), (0, 8), (1, 4), (2, 4), (2, 8)]
    for i in (0, 2):
        _same(run.results[i], run_probe(alone[i], data, config))


def _dropout_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))


def test_dropout_masks_follow_each_members_seed(data):
    configs = [ProbeConfig(steps=8, eval_every=4, seed=s) for s in (0, 1, 0)]
    members = [_dropout_net() for _ in configs]  # one initialization, three dropout streams
    run = run_population(members, data, configs)
    same_seed, other_seed = run.results[0].train_loss, run.results[1].train_loss
    assert run.results[2].train_loss == same_seed  # one seed, one set of masks (common numbers)
    assert other_seed != same_seed  # independent masks for another seed
    for config, result in zip(configs, run.results, strict=True):
        _same(result, run_probe(_dropout_net(), data, config))  # the sequential probe's masks


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x.unsqueeze(1))[0][:, -1])


class _Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return y if y.sum() > 0 else -y  # data-dependent control flow


class _MaskFromParameter(nn.Module):
    """Attention whose mask is learned (Swin's relative position bias): CPU attention refuses
    its gradient under vmap, and only when gradients are on."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.mask, self.head = nn.Linear(2, 2), nn.Parameter(torch.zeros(4, 4)), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.proj(x.reshape(-1, 1, 4, 2))
        return self.head(nn.functional.scaled_dot_product_attention(q, q, q, self.mask).flatten(1))


class _SparseLookup(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(8, 4, sparse=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.emb(x.argmax(1)))


class _SharedModule(nn.Module):
    """One embedding registered as both ``enc`` and ``dec`` (and tied to the head)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = self.dec = nn.Embedding(8, 4)
        self.head = nn.Linear(4, 8)
        self.head.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(x.argmax(1)) + self.dec(x.argmin(1)))[:, :2]


def _user_loop() -> TrainLoop:
    def step(model, batch, opt):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return {"loss": loss}

    return TrainLoop(step, lambda model, val: 0.0)


@pytest.mark.parametrize("make, loop, reason", [
    (_Recurrent, False, "LSTM 'rnn' has no vmap batching rule"),
    (_SparseLookup, False, "Embedding 'emb' has sparse gradients, which cannot be stacked"),
    (_SharedModule, False, "'enc' and 'dec' are one module"),
    (_Branching, False, "vmap refused the model (RuntimeError: vmap: It looks like"),
    (_MaskFromParameter, False, "vmap refused the model (RuntimeError: The function '_scaled_dot"),
    (tiny_mlp, True, "your own train_step steps one model"),
])
def test_what_cannot_be_stacked_runs_one_at_a_time_saying_why(data, make, loop, reason):
    if loop:
        data = ProbeData(data.train, data.val, loop=_user_loop())
    # Adam refuses sparse gradients
    config = ProbeConfig(steps=4, eval_every=2, optimizer="sgd" if make is _SparseLookup else "adam")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        members = [make(), make()]
    alone = copy.deepcopy(members[0])
    run = run_population(members, data, config)
    assert reason in run.fallback and run.fallback.endswith("probes run one at a time")
    _same(run.results[0], run_probe(alone, data, config), rel=0)
    choice = choose_population(members[0], data, config, None, 8, 4, lambda: None)
    assert choice.size == 1 and reason in choice.reason and reason in choice.describe()


def test_members_must_share_everything_but_seed_and_lr(data):
    with pytest.raises(ConfigError, match="may differ only in seed and lr"):
        run_population([tiny_mlp(), tiny_mlp()], data,
                       [ProbeConfig(steps=4), ProbeConfig(steps=8)])


def test_the_population_size_is_capped_by_free_memory(data, monkeypatch):
    import autoinit.population as population

    assert max_members(tiny_mlp(), data) > 1000  # a tiny net: memory is no limit
    monkeypatch.setattr(population, "_free_bytes", lambda device: 20_000)
    assert max_members(tiny_mlp(), data) == 1
    choice = choose_population(tiny_mlp(), data, ProbeConfig(steps=4), None, 8, 4, lambda: None)
    assert (choice.size, choice.reason) == (1, "the free memory holds one member: probes run one "
                                                "at a time")


def test_forced_size_is_kept_and_measured(data):
    choice = choose_population(tiny_mlp(), data, ProbeConfig(steps=4), 3, 8, 4, lambda: None)
    assert (choice.size, choice.reason) == (3, "given") and choice.ratio > 0
    assert "up to 3 candidates at once (given; " in choice.describe()
    off = choose_population(tiny_mlp(), data, ProbeConfig(steps=4), 1, 8, 4, lambda: None)
    assert off.size == 1 and "one candidate at a time (population=1)" in off.describe()


@pytest.mark.parametrize("rungs", [1, 2])
def test_the_search_chooses_the_same_with_and_without_populations(tiny_loader, rungs):
    kwargs = {"n_trials": 10, "probe_steps": 8, "seed": 0, "rungs": rungs}
    one = run_search(tiny_mlp(), tiny_loader, population=1, **kwargs)
    many = run_search(tiny_mlp(), tiny_loader, population=4, **kwargs)
    assert (one.cost.population, many.cost.population) == (1, 4)
    assert many.population.reason == "given" and many.cost.population_ratio > 0
    assert many.chosen == one.chosen and many.scheme == one.scheme
    assert [c.name for c in many.candidates] == [c.name for c in one.candidates]
    for a, b in zip(many.candidates, one.candidates, strict=True):
        assert a.scores == pytest.approx(b.scores, rel=1e-5)
    for name in ("probe_steps", "screening_passes", "selection_steps", "trials_complete",
                 "trials_pruned", "trials_failed"):
        assert getattr(many.cost, name) == getattr(one.cost, name), name
    # stage 1 (the named candidates, probed together) records what the sequential trials record
    for a, b in zip(many.study.trials, one.study.trials, strict=True):
        assert (a.number, a.state, a.params) == (b.number, b.state, b.params)
        assert a.value == pytest.approx(b.value, rel=1e-5)
        assert a.intermediate_values == pytest.approx(b.intermediate_values, rel=1e-5)
        assert set(a.user_attrs) == set(b.user_attrs)
        for key, value in b.user_attrs.items():
            if key in ("curve", "rung_scores"):
                assert [tuple(p) for p in a.user_attrs[key]] == [
                    (s, pytest.approx(v, rel=1e-5)) for s, v in value]
            elif key == "train_loss":
                assert a.user_attrs[key] == pytest.approx(value, rel=1e-4)
            elif key != "seconds":
                assert a.user_attrs[key] == value, key
    assert "population probes: up to 4 candidates at once" in many.summary()
    assert "population probes" not in one.summary()


def test_a_callback_that_stops_the_search_leaves_the_other_named_candidates_waiting(
        tiny_loader, tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def interrupt(study, trial):
        if trial.number == 2:
            raise KeyboardInterrupt

    kwargs = {"n_trials": 9, "probe_steps": 8, "storage": storage, "study_name": "s",
              "population": 4}
    result = run_search(tiny_mlp(), tiny_loader, callbacks=[interrupt], **kwargs)
    states = [t.state for t in result.study.trials]
    assert states[:3] == [optuna.trial.TrialState.COMPLETE] * 3
    assert set(states[3:]) == {optuna.trial.TrialState.WAITING}  # probed ahead, then dropped
    resumed = run_search(tiny_mlp(), tiny_loader, **kwargs)
    assert len(resumed.study.trials) == 9
    assert all(t.state != optuna.trial.TrialState.FAIL for t in resumed.study.trials)


def test_named_candidates_probed_together_are_logged_as_child_runs(tiny_loader, tmp_path):
    from mlflow import MlflowClient

    import autoinit
    from autoinit.integrations.testing import mlflow_globals_kept, sqlite_store

    uri = sqlite_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    client.create_experiment("pop", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow_globals_kept():
        result = autoinit.fit(tiny_mlp(), tiny_loader, n_trials=9, probe_steps=8,
                              population=4, tracking_uri=uri, experiment="pop")
    parent = client.get_run(result.run.run_id)
    kids = client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    by_trial = {int(k.data.tags["autoinit.trial"]): k for k in kids}
    assert sorted(by_trial) == [t.number for t in result.study.trials]
    for t in result.study.trials:
        history = client.get_metric_history(by_trial[t.number].info.run_id, "probe_loss")
        assert sorted((h.step, h.value) for h in history) == pytest.approx(
            [tuple(p) for p in t.user_attrs["curve"]])
        assert by_trial[t.number].data.tags.get("autoinit.baseline") == t.user_attrs.get("baseline")


def test_the_population_option_is_checked():
    with pytest.raises(ConfigError, match="population must be a positive integer, got 0"):
        run_search(tiny_mlp(), [], population=0, n_trials=2)
    base = {"model": {"factory": "m:f"}, "data": {"factory": "d:f"}}
    config = study_from_dict({**base, "search": {"population": 4}})
    assert config.fit_options()["population"] == 4
    assert study_from_dict(base).fit_options()["population"] is None
    with pytest.raises(StudyFileError, match="search.population must be a positive integer"):
        study_from_dict({**base, "search": {"population": -1}})


def test_a_population_that_breaks_leaves_stage_one_to_sequential_trials(tiny_loader, monkeypatch):
    import autoinit.population_stage as stage

    def broken(*args, **kwargs):
        raise RuntimeError("stacking broke")

    monkeypatch.setattr(stage, "run_population", broken)
    kwargs = {"n_trials": 8, "probe_steps": 8, "seed": 0, "population": 1}
    one = run_search(tiny_mlp(), tiny_loader, **kwargs)
    many = run_search(tiny_mlp(), tiny_loader, **{**kwargs, "population": 4})
    assert [t.state for t in many.study.trials] == [t.state for t in one.study.trials]
    assert [t.value for t in many.study.trials] == [t.value for t in one.study.trials]


def test_a_budget_with_no_search_trial_never_times_a_population(tiny_loader, monkeypatch):
    """A few short probes: the measurement would cost more than stacking could save."""
    import autoinit.search

    timed = []
    monkeypatch.setattr(autoinit.search, "choose_population",
                        lambda *args, **kwargs: timed.append(args) or choose_population(
                            *args, **kwargs))
    result = run_search(tiny_mlp(), tiny_loader, train_steps=800, seed=0)
    assert "re-run at 4x the probe" in result.budget.plan and not timed
    assert result.population.size == 1
    assert result.population.reason == "the halving budget has no search trial"


def test_a_population_asked_for_that_cannot_run_is_named_in_the_summary(tiny_loader):
    asked = run_search(_Recurrent(), tiny_loader, n_trials=2, probe_steps=4, population=4, seed=0)
    line = ("population probes: off, one candidate at a time (LSTM 'rnn' has no vmap batching "
            "rule: probes run one at a time)")
    assert asked.population.refused and line in asked.summary().splitlines()
    automatic = run_search(_Recurrent(), tiny_loader, n_trials=2, probe_steps=4, seed=0)
    assert not automatic.population.refused and "population probes" not in automatic.summary()
