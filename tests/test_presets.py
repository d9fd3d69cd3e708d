"""Presets: which models they apply to, what they stand for, and that they show by name."""

from __future__ import annotations

import optuna
import pytest
import torch
from conftest import tiny_mlp
from torch import nn

import autoinit
from autoinit.apply import apply_scheme
from autoinit.cli import main
from autoinit.errors import ConfigError
from autoinit.plan import ModelPlan
from autoinit.presets import get_preset, list_presets, preset_names, preset_params
from autoinit.search import run_search
from autoinit.space import SearchSpace, suggest_scheme
from autoinit.study import named_candidates, open_study


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class ResMLP(nn.Module):
    """Four residual branches of two layers each, no normalization."""

    def __init__(self, width: int = 8, blocks: int = 4):
        super().__init__()
        self.stem = nn.Linear(4, width)
        self.blocks = nn.Sequential(*[Block(width) for _ in range(blocks)])
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.blocks(torch.relu(self.stem(x))))


class BNBlock(nn.Module):
    """A ResNet basic block as torchvision writes it: the branch ends in a BatchNorm."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        out += x
        return torch.relu(out)


class BNResNet(nn.Module):
    def __init__(self, width: int = 4, blocks: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.blocks = nn.Sequential(*[BNBlock(width) for _ in range(blocks)])
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class Encoder(nn.Module):
    """A three-layer Transformer encoder: six residual branches (attention and MLP)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        self.head = nn.Linear(16, 20)

    def forward(self, x):
        return self.head(self.enc(self.emb(x)))


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.RNNBase], **kw: object):
        super().__init__()
        self.rnn, self.head = cell(3, 8, batch_first=True, **kw), nn.Linear(8, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def _scheme(model: nn.Module, name: str):
    plan = ModelPlan.of(model)
    params = preset_params(plan, SearchSpace(), name)
    return plan, suggest_scheme(optuna.trial.FixedTrial(params), plan, SearchSpace(), 1e-3)[0]


@pytest.mark.parametrize(("model", "expected"), [
    (tiny_mlp, ("zero_readout",)),
    (ResMLP, ("fixup", "skipinit", "zero_readout")),
    (Encoder, ("skipinit", "t_fixup", "gpt2", "small_init_emb", "zero_readout", "mimetic")),
    (BNResNet, ("fixup", "skipinit", "zero_readout")),
    (lambda: Recurrent(nn.LSTM), ("zero_readout", "chrono")),
    (lambda: Recurrent(nn.RNN, nonlinearity="relu"), ("zero_readout", "irnn")),
    (lambda: Recurrent(nn.RNN), ("zero_readout",)),  # tanh: IRNN is for ReLU RNNs
])
def test_presets_apply_only_where_their_roles_exist(model, expected):
    assert preset_names(ModelPlan.of(model()), SearchSpace()) == expected


def test_a_preset_outside_the_space_does_not_apply():
    plan = ModelPlan.of(Encoder())
    assert "small_init_emb" not in preset_names(plan, SearchSpace(embedding_scale_low=0.01))


def test_fixup_zeroes_branch_ends_and_readout_and_scales_branch_layers_by_depth():
    plan, scheme = _scheme(ResMLP(), "fixup")
    assert (plan.depth, plan.branch_layers) == (4, 2)
    model = apply_scheme(ResMLP(), scheme)
    kaiming = apply_scheme(ResMLP(), plan.uniform("kaiming_normal"))
    for block, plain in zip(model.blocks, kaiming.blocks, strict=True):
        assert not block.fc2.weight.any() and not block.fc2.bias.any()
        torch.testing.assert_close(block.fc1.weight, plain.fc1.weight * 4 ** -0.5, rtol=0, atol=0)
    assert not model.head.weight.any() and not model.head.bias.any()
    torch.testing.assert_close(model.stem.weight, kaiming.stem.weight, rtol=0, atol=0)


def test_a_branch_ending_in_a_norm_starts_at_zero_under_skipinit_its_gain_zeroed():
    """Goyal et al. 2017 (torchvision's zero_init_residual): each block's last BatchNorm gain
    at zero, so every block starts as the identity; the other norms keep their ones."""
    plan, scheme = _scheme(BNResNet(), "skipinit")
    assert (plan.depth, plan.branch_layers) == (3, 2)
    assert "residual_out.norm" in plan.grouping.groups
    model = apply_scheme(BNResNet(), scheme)
    for block in model.blocks:
        assert not block.bn2.weight.any() and not block.bn2.bias.any()
        assert bool((block.bn1.weight == 1).all())
    x = torch.randn(2, 1, 5, 5)
    stem = model.stem(x)
    torch.testing.assert_close(model.blocks[0](stem), torch.relu(stem), rtol=0, atol=0)
    again = apply_scheme(BNResNet(), type(scheme).from_json(scheme.to_json()))
    assert all(not b.bn2.weight.any() for b in again.blocks)


def test_a_branch_ending_norms_gain_takes_its_multiplier_and_depth_factor():
    plan = ModelPlan.of(BNResNet())
    params = preset_params(plan, SearchSpace(), "zero_readout")
    params.update({"residual_out.norm.family": "constant", "residual_out.norm.scale": 2.0,
                   "residual_out.norm.multiplier": 0.5,
                   "residual_out.norm.depth_exponent": -0.5})
    scheme = suggest_scheme(optuna.trial.FixedTrial(params), plan, SearchSpace(), 1e-3)[0]
    model = apply_scheme(BNResNet(), scheme)
    for block in model.blocks:  # 2 · 0.5 · 3^(-1/2)
        torch.testing.assert_close(block.bn2.weight, torch.full((4,), 3 ** -0.5))
        assert bool((block.bn1.weight == 1).all())


def test_gpt2_draws_std_002_and_scales_branch_outputs_by_one_over_sqrt_l():
    plan, scheme = _scheme(Encoder(), "gpt2")
    assert plan.depth == 6  # one attention and one MLP branch in each of the three layers
    model = apply_scheme(Encoder(), scheme)
    layer = model.enc.layers[0]
    assert float(model.emb.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
    out = torch.cat([lay.linear2.weight.flatten() for lay in model.enc.layers])
    assert float(out.detach().std()) == pytest.approx(0.02 / 6 ** 0.5, rel=0.15)
    assert not layer.linear1.bias.any() and bool((layer.norm1.weight == 1).all())


def test_small_init_emb_and_t_fixup_embeddings():
    _, scheme = _scheme(Encoder(), "small_init_emb")
    model = apply_scheme(Encoder(), scheme)
    assert float(model.emb.weight.detach().std()) == pytest.approx(1e-4, rel=0.1)
    plan, scheme = _scheme(Encoder(), "t_fixup")
    model = apply_scheme(Encoder(), scheme)
    expected = 16 ** -0.5 * (9 * 3) ** -0.25
    assert float(model.emb.weight.detach().std()) == pytest.approx(expected, rel=0.1)


class SharedAttention(nn.Module):
    """ALBERT's sharing: one attention + MLP block (q/k/v/o and fc1/fc2 layers) run three times."""

    def __init__(self):
        super().__init__()
        self.emb, self.attn, self.mlp = nn.Embedding(10, 8), nn.Module(), nn.Module()
        self.attn.q, self.attn.k, self.attn.v, self.attn.o = (nn.Linear(8, 8) for _ in range(4))
        self.mlp.fc1, self.mlp.fc2, self.head = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x):
        h, a, m = self.emb(x), self.attn, self.mlp
        for _ in range(3):
            h = h + a.o(torch.softmax(a.q(h) @ a.k(h).transpose(1, 2), -1) @ a.v(h))
            h = h + m.fc2(torch.relu(m.fc1(h)))
        return self.head(h.mean(1))


def test_t_fixup_counts_a_shared_blocks_runs_as_attention_blocks():
    plan = ModelPlan.of(SharedAttention())
    params = preset_params(plan, SearchSpace(), "t_fixup")
    assert plan.depth == 6  # 3 attention and 3 MLP branches
    assert params["hidden.linear.scale"] == pytest.approx(0.67 * (6 / 3) ** 0.25)  # N = 3 blocks


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_chrono_draws_gate_biases_up_to_log_t_max_on_bias_ih_only(cell):
    plan = ModelPlan.of(Recurrent(cell))
    space = SearchSpace(t_max=50.0)
    scheme = suggest_scheme(optuna.trial.FixedTrial(preset_params(plan, space, "chrono")), plan,
                            space, 1e-3)[0]
    rnn = apply_scheme(Recurrent(cell), scheme).rnn
    gate = slice(8, 16)  # LSTM (i, f, g, o): forget; GRU (r, z, n): update
    forget = rnn.bias_ih_l0[gate].detach()
    assert bool((forget >= 0).all() and (forget <= torch.log(torch.tensor(49.0))).all())
    assert forget.std() > 0.1 and not rnn.bias_hh_l0.any()
    if cell is nn.LSTM:
        torch.testing.assert_close(rnn.bias_ih_l0[:8], -forget)


def test_irnn_and_mimetic_set_their_structure():
    _, scheme = _scheme(Recurrent(nn.RNN, nonlinearity="relu"), "irnn")
    rnn = apply_scheme(Recurrent(nn.RNN, nonlinearity="relu"), scheme).rnn
    torch.testing.assert_close(rnn.weight_hh_l0.detach(), torch.eye(8), rtol=0, atol=0)
    assert not rnn.bias_hh_l0.any() and not rnn.bias_ih_l0.any()
    _, scheme = _scheme(Encoder(), "mimetic")
    attn = apply_scheme(Encoder(), scheme).enc.layers[0].self_attn
    q, k, v = attn.in_proj_weight.detach().chunk(3)
    assert torch.trace(q.T @ k) / 16 == pytest.approx(0.7, abs=0.1)
    assert torch.trace(attn.out_proj.weight.detach() @ v) / 16 < -0.2


def test_recurrent_gate_rules_are_searched_where_the_gates_exist():
    space = SearchSpace()
    lstm, gru = ModelPlan.of(Recurrent(nn.LSTM)), ModelPlan.of(Recurrent(nn.GRU))
    assert space.bias_rules(lstm, "rnn_ih.lstm")[-2:] == ["forget_gate", "chrono"]
    assert space.bias_rules(gru, "rnn_ih.gru")[-2:] == ["update_gate", "chrono"]
    assert "chrono" not in space.bias_rules(lstm, "rnn_hh.lstm")
    trial = optuna.trial.FixedTrial({**preset_params(gru, space, "chrono"), "rnn_ih.gru.t_max": 7.0})
    scheme = suggest_scheme(trial, gru, space, 1e-3)[0]
    assert (scheme.groups["rnn_ih.gru"].bias, scheme.groups["rnn_ih.gru"].bias_value) == ("chrono", 7.0)
    with pytest.raises(ConfigError, match="t_max must lie in t_max_range"):
        SearchSpace(t_max=2000.0)


def test_registry_names_and_errors():
    assert list_presets("*fixup") == ["fixup", "t_fixup"]
    assert get_preset("gpt2").summary
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known: "):
        get_preset("nope")


def test_named_candidates_come_after_the_baselines_and_set_the_pruner_warmup(tiny_loader):
    plan = ModelPlan.of(tiny_mlp())
    names = list(named_candidates(plan, SearchSpace(), 1e-3))
    assert names[-2:] == ["lsuv", "zero_readout"] and names[0] == "pytorch_default"
    study, _ = open_study(None, None, 0, 1, 4, len(names))
    assert study.pruner._n_startup_trials == len(names) + 1


def test_a_preset_shows_by_name_in_the_summary_and_the_status(tmp_path, tiny_loader, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    result = run_search(tiny_mlp(), tiny_loader, n_trials=8, probe_steps=6, storage=url,
                        study_name="tiny", seed=0, progress=False)
    assert "zero_readout" in result.baselines
    assert any(line.split()[:1] == ["zero_readout"] for line in result.summary().splitlines())
    status = autoinit.study_status(url, "tiny", top=8)
    assert "zero_readout" in {t.name for t in status.top}
    assert main(["status", "--storage", url, "--study-name", "tiny", "--top", "8"]) == 0
    assert "zero_readout" in capsys.readouterr().out
