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
from autoinit.space import (
    BASELINES,
    SearchSpace,
    baseline_names,
    baseline_params,
    distributions,
    suggest_scheme,
)


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


# ------------------------------------------------------------- role- and depth-aware dimensions

class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


def _resnet() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), _Block(), _Block(), nn.Linear(8, 2))


def _encoder() -> nn.Module:
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 16)
            layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(16, 20)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)))

    return Encoder()


@pytest.mark.parametrize(("make", "depth", "multiplied", "deep"), [
    (_resnet, 2, {"residual_out.linear", "head.linear"}, {"hidden.linear", "residual_out.linear"}),
    (_encoder, 4, {"attn_qkv.mha", "attn_out.linear", "residual_out.linear", "head.linear"},
     {"attn_qkv.mha", "attn_out.linear", "hidden.linear", "residual_out.linear"}),
    (tiny_mlp, 0, {"head.linear"}, set()),
])
def test_multiplier_and_depth_exponent_only_where_the_roles_exist(make, depth, multiplied, deep):
    plan = ModelPlan.of(make())
    assert plan.depth == depth
    dists = distributions(plan, SearchSpace(), 1e-3)
    assert {k.rsplit(".", 1)[0] for k in dists if k.endswith(".multiplier")} == multiplied
    assert {k.rsplit(".", 1)[0] for k in dists if k.endswith(".depth_exponent")} == deep
    for key in dists:
        if key.endswith(".multiplier"):
            assert dists[key].low == 0.0 and not dists[key].log  # exactly 0 is in the space
        if key.endswith(".depth_exponent"):
            assert (dists[key].low, dists[key].high, dists[key].step) == (-0.5, 0.0, 0.25)


def test_the_query_part_and_the_embedding_scale_down_to_1e_4():
    plan = ModelPlan.of(_encoder())
    dists = distributions(plan, SearchSpace(), 1e-3)
    assert dists["embedding.scale"].low == 1e-4 and dists["head.linear.scale"].low == 0.25
    params = {**baseline_params(plan, SearchSpace(), "xavier_uniform"),
              "attn_qkv.mha.multiplier": 0.0, "attn_qkv.mha.depth_exponent": -0.25,
              "embedding.scale": 1e-4}
    scheme, _ = suggest_scheme(optuna.trial.FixedTrial(params), plan, SearchSpace(), 1e-3)
    rule = scheme.groups["attn_qkv.mha"]
    assert (rule.multiplier, rule.part, rule.depth_exponent) == (0.0, "query", -0.25)
    assert scheme.groups["embedding"].scale == 1e-4 and scheme.depth == 4


def test_baselines_leave_multipliers_at_one_and_exponents_at_zero():
    plan = ModelPlan.of(_resnet())
    scheme, _ = suggest_scheme(optuna.trial.FixedTrial(
        baseline_params(plan, SearchSpace(), "orthogonal")), plan, SearchSpace(), 1e-3)
    assert {(r.multiplier, r.depth_exponent) for r in scheme.groups.values()} == {(1.0, 0.0)}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"multiplier_range": (0.1, 2.0)}, r"multiplier_range must be \(0, high\)"),
    ({"embedding_scale_low": 0.5}, r"embedding_scale_low must be in \(0, 0.25\], got 0.5"),
])
def test_bad_new_bounds(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SearchSpace(**kwargs)
