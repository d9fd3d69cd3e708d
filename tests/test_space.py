"""The search space, baseline parameters, screening and the LSUV baseline."""

from __future__ import annotations

import optuna
import pytest
import torch
from conftest import tiny_mlp
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.batches import make_loss
from autoinit.calibrate import lsuv_scheme
from autoinit.errors import ConfigError
from autoinit.objective import screen
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeData
from autoinit.space import BASELINES, SearchSpace, baseline_names, baseline_params, suggest_scheme


class LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.norm(self.lstm(self.emb(x))[0]))


def test_choices_fit_each_group():
    plan = ModelPlan.of(LSTMNet())
    space = SearchSpace()
    assert space.choices(plan, "norm") == ["pytorch_default", "constant", "zeros", "gamma_normal"]
    assert "identity" not in space.choices(plan, "embedding")
    assert space.choices(plan, "head.linear")[:5] == list(BASELINES)
    assert "forget_gate" in space.bias_rules(plan, "rnn_ih.lstm")
    assert "forget_gate" not in space.bias_rules(plan, "head.linear")


def test_restricted_families_still_hold_the_baselines():
    space = SearchSpace(families=("identity",))
    plan = ModelPlan.of(tiny_mlp())
    assert space.choices(plan, "hidden.linear") == [*BASELINES, "identity"]


@pytest.mark.parametrize("family", [*BASELINES])
def test_baseline_params_replay_through_suggest(family):
    plan = ModelPlan.of(LSTMNet())
    space = SearchSpace()
    scheme, lr = suggest_scheme(optuna.trial.FixedTrial(baseline_params(plan, space, family)),
                                plan, space, lr=0.01)
    assert lr == 0.01
    for name, rule in scheme.groups.items():
        expected = family if family in space.choices(plan, name) else "pytorch_default"
        assert rule.family == expected and rule.scale == 1.0
    apply_scheme(LSTMNet(), scheme)  # every baseline applies to every group it names


def test_every_sampled_scheme_applies():
    plan = ModelPlan.of(LSTMNet())
    space = SearchSpace(search_lr=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    model = LSTMNet()
    for _ in range(25):
        trial = study.ask()
        scheme, lr = suggest_scheme(trial, plan, space, lr=1e-3)
        apply_scheme(model, scheme)
        assert 1e-4 <= lr <= 1e-2
        study.tell(trial, 0.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"families": "kaiming_normal"}, "families must be a non-empty list"),
    ({"families": ("nope",)}, "unknown family 'nope'"),
    ({"scale_range": (2.0, 4.0)}, "scale_range must satisfy"),
    ({"bias_range": (0.1, 0.2)}, "bias_range must contain 0"),
    ({"lr_factor": 1.0}, "lr_factor must be > 1"),
])
def test_space_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(**kwargs)


def _deep(width: int = 32, depth: int = 10) -> nn.Sequential:
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())],
                         nn.Linear(width, 2))


def test_screening_rejects_exploding_and_vanishing_candidates():
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, 32, generator=g), torch.randint(0, 2, (64,), generator=g))
    data = ProbeData([batch], [batch])
    model = _deep()
    plan = ModelPlan.of(model)
    apply_scheme(model, plan.uniform("kaiming_normal"))
    assert screen(model, data) is None
    apply_scheme(model, plan.uniform("kaiming_normal", scale=4.0))
    assert "exploding" in screen(model, data)
    apply_scheme(model, plan.uniform("small_normal"))
    assert "vanish" in screen(model, data)


def test_lsuv_gives_unit_output_variance_and_recreates_from_its_scheme():
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(256, 32, generator=g), torch.randint(0, 2, (256,), generator=g))
    model = _deep()
    scheme = lsuv_scheme(model, batch, make_loss(None))
    stds = []
    hooks = [m.register_forward_hook(lambda m, a, o: stds.append(float(o.std())))
             for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        model(batch[0])
    for h in hooks:
        h.remove()
    assert all(abs(s - 1) < 0.15 for s in stds)
    again = apply_scheme(_deep(), scheme)
    pairs = zip(model.parameters(), again.parameters(), strict=True)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in pairs)  # up to rounding
    assert len({r.scale for r in scheme.groups.values()}) > 2  # per-layer scales were found


def test_dcgan_preset_is_queued_for_convolutions_with_norms_and_draws_the_dcgan_rule():
    assert baseline_names(ModelPlan.of(LSTMNet())) == BASELINES  # a norm but no convolution
    assert baseline_names(ModelPlan.of(nn.Sequential(nn.Conv2d(1, 4, 3)))) == BASELINES
    net = nn.Sequential(nn.ConvTranspose2d(8, 64, 4), nn.BatchNorm2d(64), nn.ReLU(),
                        nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.Linear(4, 2))
    plan = ModelPlan.of(net)
    assert baseline_names(plan) == (*BASELINES, "dcgan")
    space = SearchSpace()
    scheme, _ = suggest_scheme(optuna.trial.FixedTrial(baseline_params(plan, space, "dcgan")),
                               plan, space, lr=1e-3)
    apply_scheme(net, scheme)
    weights = torch.cat([net[i].weight.detach().flatten() for i in (0, 3, 5)])
    assert float(weights.mean()) == pytest.approx(0.0, abs=2e-3)
    assert float(weights.std()) == pytest.approx(0.02, rel=0.05)
    gammas = torch.cat([net[1].weight, net[4].weight]).detach()
    assert float(gammas.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(gammas.std()) == pytest.approx(0.02, rel=0.2)
    for i in (0, 1, 3, 4, 5):
        assert torch.count_nonzero(net[i].bias) == 0  # biases and betas zero
