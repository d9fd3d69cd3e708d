"""The competitor baselines in scripts/baselines: contract, determinism, and each method's core claim."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import baselines  # noqa: E402
from baselines import BASELINES  # noqa: E402
from baselines.gradinit import ScaledModel, gradient_norm, lookahead_loss  # noqa: E402
from baselines.metainit import gradient_quotient  # noqa: E402

from autoinit.tasks.gpt import tiny_gpt  # noqa: E402
from autoinit.tasks.resnet import resnet_nonorm  # noqa: E402


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def relu_mlp(depth: int = 6, width: int = 32, seed: int = 0) -> nn.Sequential:
    def build():
        layers: list[nn.Module] = [nn.Linear(16, width), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(width, 4))
    return _seeded(seed, build)


class ResidualMLP(nn.Module):
    def __init__(self, blocks: int = 4, width: int = 32) -> None:
        super().__init__()
        self.input = nn.Linear(16, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"fc1": nn.Linear(width, width), "fc2": nn.Linear(width, width)})
            for _ in range(blocks))
        self.head = nn.Linear(width, 4)

    def forward(self, x):
        h = self.input(x).relu()
        for block in self.blocks:
            h = h + block["fc2"](block["fc1"](h).relu())
        return self.head(h)


class TinyTransformer(nn.Module):
    def __init__(self, layers: int = 2, d: int = 16, norm_first: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(16, d)
        layer = nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, 4)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x).unsqueeze(1)).squeeze(1))


class TinyRecurrent(nn.Module):
    def __init__(self, cell=lambda: nn.LSTM(16, 16, batch_first=True)) -> None:
        super().__init__()
        self.rnn = cell()
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.rnn(x.unsqueeze(1))[0][:, -1])


def _relu_rnn() -> nn.RNN:
    return nn.RNN(16, 16, nonlinearity="relu", batch_first=True)


def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(123)
    w = torch.randn(16, 4, generator=g)
    out = []
    for _ in range(4):
        x = torch.randn(32, 16, generator=g)
        out.append((x, (x @ w).argmax(1)))
    return out


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


MODELS = {
    "gradinit": relu_mlp, "metainit": relu_mlp, "lsuv": relu_mlp, "anyinit_analytic": relu_mlp,
    "anyinit_empirical": relu_mlp,
    "fixup": lambda seed=0: _seeded(seed, ResidualMLP), "skipinit": lambda seed=0: _seeded(seed, ResidualMLP),
    "tfixup": lambda seed=0: _seeded(seed, TinyTransformer),
    "fixup_resnet": lambda seed=0: _seeded(seed, lambda: resnet_nonorm(blocks=3, channels=4)),
    "gpt2": lambda seed=0: _seeded(seed, lambda: tiny_gpt(n_layers=2, d_model=16, n_heads=2, max_len=8)),
    "forget_bias": lambda seed=0: _seeded(seed, TinyRecurrent),
    "chrono": lambda seed=0: _seeded(seed, TinyRecurrent),
    "irnn": lambda seed=0: _seeded(seed, lambda: TinyRecurrent(_relu_rnn)),
}
BUDGETS = {"gradinit": 3, "metainit": 3}


def test_every_baseline_has_a_model():
    assert set(MODELS) == set(BASELINES)
    assert set(baselines.__all__) >= {f"init_{name}" for name in BASELINES}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_changes_weights_deterministically_and_leaves_global_rng(name, batches):
    init = BASELINES[name]
    default = _weights(MODELS[name]())
    results = []
    for _ in range(2):
        model = MODELS[name]()
        state = torch.get_rng_state()
        facts = init(model, batches, loss_fn, seed=7, budget=BUDGETS.get(name))
        assert torch.equal(torch.get_rng_state(), state), "the global RNG was changed"
        assert facts["applies"] is True, facts
        assert facts["method"] == name
        results.append(_weights(model))
    assert any(not torch.equal(default[k], results[0][k]) for k in default), "weights unchanged"
    for k in default:
        assert torch.equal(results[0][k], results[1][k]), f"{k} differs between two runs with one seed"
        assert torch.isfinite(results[0][k]).all()


@pytest.mark.parametrize("name", ["lsuv", "anyinit_analytic", "anyinit_empirical"])
def test_packages_refuse_recurrent_models(name, batches):
    model = _seeded(0, TinyRecurrent)
    before = _weights(model)
    facts = BASELINES[name](model, batches, loss_fn, seed=0)
    assert facts["applies"] is False and "recurrent" in facts["reason"]
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_anyinit_failure_restores_the_model(batches, monkeypatch):
    import anyinit

    def broken(model, *args, **kwargs):
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(3.0)
        raise RuntimeError("boom")

    monkeypatch.setattr(anyinit, "initialize", broken)
    model = relu_mlp()
    before = _weights(model)
    facts = baselines.init_anyinit_analytic(model, batches, loss_fn, seed=0)
    assert facts["applies"] is False and "RuntimeError: boom" in facts["reason"]
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_missing_package_is_reported(batches, monkeypatch):
    monkeypatch.setitem(sys.modules, "lsuv", None)
    facts = baselines.init_lsuv(relu_mlp(), batches, loss_fn, seed=0)
    assert facts["applies"] is False and facts["reason"].startswith("package not installable here")


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-3), ("sgd", 0.1)])
def test_gradinit_lookahead_is_differentiable_in_the_scales(optimizer, lr, batches):
    scaled = ScaledModel(relu_mlp(), loss_fn)
    alpha = torch.ones(len(scaled.scaled), requires_grad=True)
    loss, gnorm = lookahead_loss(scaled, alpha, batches[0], batches[1], optimizer=optimizer, lr=lr, p=1)
    (grad,) = torch.autograd.grad(loss, alpha, retain_graph=True)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    (grad_norm,) = torch.autograd.grad(gnorm, alpha)
    assert grad_norm.abs().sum() > 0


def test_gradinit_sgd_lookahead_goes_through_the_gradient(batches):
    """For SGD the step η·g(α) depends on α: the exact gradient differs from a detached step's."""
    scaled = ScaledModel(relu_mlp(), loss_fn)
    alpha = torch.ones(len(scaled.scaled), requires_grad=True)
    loss, _ = lookahead_loss(scaled, alpha, batches[0], batches[1], optimizer="sgd", lr=0.5, p=2)
    (exact,) = torch.autograd.grad(loss, alpha)
    params = scaled.params(alpha)
    grads = torch.autograd.grad(scaled.loss(params, batches[0]), list(params.values()))
    stepped = {n: t - 0.5 * g for (n, t), g in zip(params.items(), grads, strict=True)}
    (detached,) = torch.autograd.grad(scaled.loss(stepped, batches[1]), alpha)
    assert not torch.allclose(exact, detached)


def test_gradinit_constraint_branch_lowers_the_gradient_norm(batches):
    model = relu_mlp()

    def norm_of(m):
        s = ScaledModel(m, loss_fn)
        params = s.params(torch.ones(len(s.scaled), requires_grad=True))
        grads = torch.autograd.grad(s.loss(params, batches[0]), [p for p in params.values()])
        return gradient_norm(grads, 1).item()

    before = norm_of(model)
    facts = baselines.init_gradinit(model, batches, loss_fn, seed=0, budget=6, gamma=1e-9, scale_lr=0.05)
    assert facts["constraint_steps"] == 6 and facts["objective_steps"] == 0
    assert math.isnan(facts["first_lookahead_loss"])
    assert norm_of(model) < before
    facts = baselines.init_gradinit(relu_mlp(), batches, loss_fn, seed=0, budget=3, gamma=math.inf)
    assert facts["constraint_steps"] == 0 and facts["objective_steps"] == 3


def test_gradinit_keeps_the_scale_floor_and_model_modes(batches):
    model = relu_mlp()
    model.eval()
    facts = baselines.init_gradinit(model, batches, loss_fn, seed=0, budget=5, gamma=1e-9, scale_lr=5.0)
    assert facts["scale_min"] >= 0.0 and not model.training
    weight = model[0].weight
    ratio = (weight / relu_mlp()[0].weight).flatten()
    assert torch.allclose(ratio, ratio[0].expand_as(ratio)) and ratio[0] >= 0.01 - 1e-7


@pytest.mark.parametrize("kwargs,message", [({"optimizer": "rmsprop"}, "not supported"),
                                            ({"budget": 0}, "budget"), ({"p": 3}, "p must be")])
def test_gradinit_validates_options(kwargs, message, batches):
    with pytest.raises(ValueError, match=message):
        baselines.init_gradinit(relu_mlp(), batches, loss_fn, seed=0, **kwargs)


def test_metainit_lowers_the_gradient_quotient_of_a_badly_scaled_net(batches):
    model = relu_mlp(depth=6, width=64)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(0.2)  # the signal shrinks ~ 10x per layer: GQ ≈ 1 (H g ≈ 0)

    def gq(m):
        return gradient_quotient(loss_fn(m, batches[0]), list(m.parameters())).item()

    before = gq(model)
    facts = baselines.init_metainit(model, batches[:1], loss_fn, seed=0, budget=10)
    assert facts["gq_first"] == pytest.approx(before, rel=1e-5)
    assert gq(model) < 0.9 * before


def test_fixup_zeroes_branch_ends_and_head_and_scales_branches(batches):
    model = _seeded(0, ResidualMLP)
    facts = baselines.init_fixup(model, batches, loss_fn, seed=0)
    assert facts["branches"] == 4 and facts["layers_per_branch"] == 2
    assert facts["branch_scale"] == pytest.approx(4 ** -0.5)
    for block in model.blocks:
        assert not block["fc2"].weight.any() and not block["fc2"].bias.any()
        std = block["fc1"].weight.std().item()
        assert std == pytest.approx(math.sqrt(2 / 32) * 4 ** -0.5, rel=0.15)
    assert not model.head.weight.any()
    assert model.input.weight.std().item() == pytest.approx(math.sqrt(2 / 16), rel=0.15)


def test_skipinit_zeroes_only_branch_ends(batches):
    model = _seeded(0, ResidualMLP)
    before = _weights(model)
    assert baselines.init_skipinit(model, batches, loss_fn, seed=0)["branches"] == 4
    for i, block in enumerate(model.blocks):
        assert not block["fc2"].weight.any()
        assert torch.equal(block["fc1"].weight, before[f"blocks.{i}.fc1.weight"])
    assert torch.equal(model.head.weight, before["head.weight"])


@pytest.mark.parametrize("name", ["fixup", "skipinit"])
def test_fixup_family_does_not_apply_without_residual_branches(name, batches):
    model = relu_mlp()
    before = _weights(model)
    facts = BASELINES[name](model, batches, loss_fn, seed=0)
    assert facts["applies"] is False and "residual" in facts["reason"]
    assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_tfixup_scales_value_output_and_ffn(batches):
    model = _seeded(0, TinyTransformer)
    facts = baselines.init_tfixup(model, batches, loss_fn, seed=0)
    assert facts["encoder_blocks"] == 2 and facts["decoder_blocks"] == 0
    scale = 0.67 * 2 ** -0.25
    assert facts["encoder_scale"] == pytest.approx(scale)
    layer = model.encoder.layers[0]
    bound = math.sqrt(6 / 32)  # xavier_uniform on a (16, 16) block
    w = layer.self_attn.in_proj_weight
    assert w[:16].abs().max() <= bound and w[:16].abs().max() > 0.9 * bound  # q: not scaled
    assert w[32:].abs().max() <= bound * scale and w[32:].abs().max() > 0.9 * bound * scale  # v: scaled
    assert layer.linear1.weight.abs().max() <= math.sqrt(6 / 48) * scale
    pre_ln = _seeded(0, lambda: TinyTransformer(norm_first=True))
    assert baselines.init_tfixup(pre_ln, batches, loss_fn, seed=0)["applies"] is False
    assert baselines.init_tfixup(relu_mlp(), batches, loss_fn, seed=0)["applies"] is False


def test_fixup_resnet_follows_the_paper_on_the_residual_cnn():
    model = _seeded(0, lambda: resnet_nonorm(blocks=16, channels=32))
    stem = model.stem.weight.detach().clone()
    facts = BASELINES["fixup_resnet"](model, [], None, seed=0)
    assert facts["branches"] == 16 and facts["branch_scale"] == pytest.approx(16 ** -0.5)
    conv1 = torch.cat([b.conv1.weight.flatten() for b in model.blocks]).detach()
    # He-normal with the fan-out (32 channels x 3 x 3), times L^(-1/2)
    assert float(conv1.std()) == pytest.approx(math.sqrt(2 / (32 * 9)) / 4, rel=0.05)
    for block in model.blocks:
        assert not block.conv2.weight.any() and not block.conv2.bias.any() and not block.conv1.bias.any()
    assert not model.head.weight.any() and not model.head.bias.any()
    assert torch.equal(model.stem.weight, stem)  # the stem keeps its own init
    assert BASELINES["fixup_resnet"](relu_mlp(), [], None, seed=0)["applies"] is False


def test_gpt2_init_matches_gpt2_statistics_and_keeps_the_tie():
    model = _seeded(0, lambda: tiny_gpt(n_layers=4, d_model=64, n_heads=4, max_len=32))
    facts = BASELINES["gpt2"](model, [], None, seed=3)
    assert facts["residual_projections"] == 8
    assert model.head.weight is model.wte.weight
    projections = torch.cat([b.attn.c_proj.weight.flatten() for b in model.blocks]
                            + [b.mlp.c_proj.weight.flatten() for b in model.blocks]).detach()
    assert float(projections.std()) == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    others = torch.cat([model.wte.weight.flatten()]
                       + [b.mlp.c_fc.weight.flatten() for b in model.blocks]).detach()
    assert float(others.std()) == pytest.approx(0.02, rel=0.05)
    assert all(not b.attn.c_attn.bias.any() for b in model.blocks)
    assert BASELINES["gpt2"](relu_mlp(), [], None, seed=0)["applies"] is False


def test_lstm_gate_rules_set_the_papers_biases():
    model = _seeded(0, TinyRecurrent)
    weights = model.rnn.weight_hh_l0.detach().clone()
    BASELINES["forget_bias"](model, [], None, seed=0)
    b_ih, b_hh = model.rnn.bias_ih_l0.detach(), model.rnn.bias_hh_l0.detach()
    assert torch.equal(b_ih[16:32] + b_hh[16:32], torch.ones(16))
    assert torch.equal(model.rnn.weight_hh_l0, weights)
    seqs = [(torch.zeros(8, 50, 16), torch.zeros(8, dtype=torch.long))]
    facts = BASELINES["chrono"](model, seqs, None, seed=0)
    assert facts["t_max"] == 50
    forget = model.rnn.bias_ih_l0[16:32].detach()
    assert bool((forget >= 0).all()) and bool((forget <= math.log(49)).all())
    torch.testing.assert_close(model.rnn.bias_ih_l0[:16].detach(), -forget)
    assert not model.rnn.bias_hh_l0.any() and not model.rnn.bias_ih_l0[32:].any()
    for name in ("forget_bias", "chrono"):
        assert BASELINES[name](relu_mlp(), seqs, None, seed=0)["applies"] is False


def test_irnn_sets_the_identity_and_small_weights_on_relu_rnns_only():
    model = _seeded(0, lambda: TinyRecurrent(_relu_rnn))
    assert BASELINES["irnn"](model, [], None, seed=0)["rnns"] == 1
    assert torch.equal(model.rnn.weight_hh_l0, torch.eye(16))
    assert not model.rnn.bias_ih_l0.any() and not model.rnn.bias_hh_l0.any() and not model.head.bias.any()
    for weight in (model.rnn.weight_ih_l0, model.head.weight):
        assert float(weight.detach().std()) == pytest.approx(0.001, rel=0.25)
    tanh_rnn = lambda: nn.RNN(16, 16, batch_first=True)  # noqa: E731
    for other in (TinyRecurrent, lambda: TinyRecurrent(tanh_rnn), relu_mlp):
        model = _seeded(0, other)
        before = _weights(model)
        assert BASELINES["irnn"](model, [], None, seed=0)["applies"] is False
        assert all(torch.equal(before[k], v) for k, v in _weights(model).items())


def test_irnn_leaves_a_norms_gain_as_it_is():
    class NormedRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.norm, self.head = _relu_rnn(), nn.LayerNorm(16), nn.Linear(16, 4)

    model = _seeded(0, NormedRNN)
    assert BASELINES["irnn"](model, [], None, seed=0)["applies"] is True
    assert torch.equal(model.norm.weight, torch.ones(16)) and not model.norm.bias.any()
