"""The probe: common random numbers, scoring, divergence, pruning hook, RNG hygiene."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_mlp
from torch import nn

from autoinit.errors import ConfigError
from autoinit.probe import ProbeConfig, ProbeData, divergence, make_optimizer, run_probe


@pytest.fixture
def data(tiny_loader):
    batches = list(tiny_loader)
    return ProbeData(batches[2:], batches[:2])


def _dropout_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 2))


def test_same_model_same_curve_even_with_dropout(data):
    config = ProbeConfig(steps=12, eval_every=4)
    a = run_probe(_dropout_net(), data, config)
    b = run_probe(_dropout_net(), data, config)
    assert a.curve == b.curve and a.train_loss == b.train_loss
    c = run_probe(_dropout_net(), data, ProbeConfig(steps=12, eval_every=4, seed=1))
    assert c.train_loss != a.train_loss  # another dropout seed draws other masks


def test_global_rng_is_restored(data):
    state = torch.get_rng_state()
    run_probe(_dropout_net(), data, ProbeConfig(steps=4, eval_every=2))
    assert torch.equal(state, torch.get_rng_state())


def test_scores_final_and_mean(data):
    final = run_probe(tiny_mlp(), data, ProbeConfig(steps=12, eval_every=4))
    assert [s for s, _ in final.curve] == [4, 8, 12]
    assert final.score == final.curve[-1][1]
    mean = run_probe(tiny_mlp(), data, ProbeConfig(steps=12, eval_every=4, objective="mean"))
    assert mean.score == pytest.approx(sum(v for _, v in mean.curve) / 3)
    assert final.score < final.curve[0][1]  # it learns


def test_divergence_scores_infinity_with_a_reason(data):
    result = run_probe(tiny_mlp(), data, ProbeConfig(steps=20, eval_every=5, lr=50.0,
                                                     optimizer="sgd"))
    assert math.isinf(result.score)
    assert "exploded" in result.diverged or "non-finite" in result.diverged


def test_non_finite_data_is_divergence(data):
    bad = [(torch.full_like(x, float("nan")), y) for x, y in data.train]
    result = run_probe(tiny_mlp(), ProbeData(bad, data.val), ProbeConfig(steps=4, eval_every=2))
    assert result.diverged.startswith("non-finite training loss at step 1")


def test_report_can_stop_the_probe(data):
    seen = []

    def report(step, value):
        seen.append((step, value))
        return step >= 4

    result = run_probe(tiny_mlp(), data, ProbeConfig(steps=12, eval_every=2), report)
    assert result.stopped_at == 4 and [s for s, _ in seen] == [2, 4]
    assert len(result.train_loss) == 4


@pytest.mark.parametrize(("field", "value", "message"), [
    ("steps", 0, "steps must be a positive integer, got 0"),
    ("eval_every", True, "eval_every must be a positive integer, got True"),
    ("lr", -1.0, "lr must be a positive finite number, got -1.0"),
    ("lr", float("nan"), "lr must be a positive finite number"),
    ("objective", "best", "objective must be one of"),
    ("explode_factor", 0.5, "explode_factor must be > 1"),
])
def test_config_validation(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ProbeConfig(**{field: value})


def test_empty_data_is_refused():
    with pytest.raises(ConfigError, match="training dataloader yielded no batch"):
        ProbeData([], [1])


def test_make_optimizer_names_and_callables():
    params = [nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer("sgd", params, 0.1), torch.optim.SGD)
    assert make_optimizer(lambda p, lr: torch.optim.Adam(p, lr=lr), params, 0.1).defaults["lr"] == 0.1
    assert isinstance(make_optimizer(lambda p: torch.optim.RMSprop(p), params, 0.1),
                      torch.optim.RMSprop)
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        make_optimizer("lbfgs2", params, 0.1)


def test_subnormals_are_flushed_only_during_the_probe(data):
    seen = []

    def report(step, value):
        seen.append(float(torch.tensor([1e-39]) * 1.0))
        return False

    run_probe(tiny_mlp(), data, ProbeConfig(steps=4, eval_every=2), report)
    if torch.set_flush_denormal(False):  # the CPU supports flushing
        assert seen == [0.0]  # report() runs inside the probe (not after its last step)
    assert float(torch.tensor([1e-39]) * 1.0) > 0  # torch's default restored


def test_a_spike_the_training_recovers_from_is_not_divergence():
    spike = torch.tensor([2.3, 80.0, 30.0] + [1.0] * 10)
    assert divergence(spike, 10.0) is None
    assert divergence(spike[:3], 10.0) is None  # too short to tell: only non-finite counts
    stays = torch.tensor([2.3] + [30.0] * 2 + [40.0] * 10)
    assert "exploded from 2.3 to 40" in divergence(stays, 10.0)
    assert "non-finite training loss at step 2" in divergence(torch.tensor([2.3, math.inf]), 10.0)
