"""Fan rules per layer kind, packed gate blocks, custom and unknown layers."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from scipy import stats
from torch import nn
from torch.nn.utils import prune

from autoinit import (
    ConfigError,
    GroupRule,
    InitScheme,
    apply_scheme,
    register_layer_kind,
    uniform_scheme,
)
from autoinit import layers as layers_mod
from autoinit.apply import model_parameters
from autoinit.layers import LayerParam, describe_params, in_out_rule


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Module construction draws from the global RNG: seed it here and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


class InOut(nn.Module):
    """A layer that stores its matrix as (in, out), like GPT-2's Conv1D."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


register_layer_kind(InOut, in_out_rule)


class Holder(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


def spec_map(model, **kw):
    return {s.name: s for s in describe_params(model, **kw)}


def one_group(model, family, *, seed=0, scale=1.0, nonlinearity="linear", options=None):
    """A scheme giving every initializable parameter of ``model`` one rule."""
    members = tuple(describe_params(model))
    rule = GroupRule(family, scale=scale, nonlinearity=nonlinearity, options=options or {},
                     members=tuple(s.name for s in members))
    return InitScheme({"all": rule}, seed=seed, parameters=model_parameters(model))


def blocks_of(t: torch.Tensor, n: int) -> list[torch.Tensor]:
    return list(t.detach().chunk(n, dim=0))


def assert_orthonormal_rows(m: torch.Tensor, gain: float = 1.0) -> None:
    m = m.reshape(m.shape[0], -1).double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    torch.testing.assert_close(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64),
                               atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------ linear, conv


def test_linear():
    s = spec_map(nn.Linear(3, 5))
    w, b = s["weight"], s["bias"]
    assert (w.kind, w.param_type, w.fan_in, w.fan_out, w.blocks, w.layout) == (
        "linear", "weight", 3, 5, 1, "out_in")
    assert w.shape == (5, 3) and w.known and w.module_type == "Linear"
    assert (b.param_type, b.shape) == ("bias", (5,))


def test_bilinear_fans_count_both_inputs():
    w = spec_map(nn.Bilinear(3, 4, 5))["weight"]
    assert (w.kind, w.fan_in, w.fan_out) == ("linear", 12, 20)  # in1·in2 and out·in2, as torch
    model = nn.Bilinear(16, 16, 8)
    apply_scheme(model, one_group(model, "kaiming_normal"))
    # y_k sums 256 products x1_i W_kij x2_j: unit output variance needs std 1/16, not 1/4
    assert model.weight.std().item() == pytest.approx(1 / 16, rel=0.05)


CONVS = [(nn.Conv1d, 1), (nn.Conv2d, 2), (nn.Conv3d, 3)]
CONV_TS = [(nn.ConvTranspose1d, 1), (nn.ConvTranspose2d, 2), (nn.ConvTranspose3d, 3)]


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(("cls", "dims"), CONVS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_conv_fans(cls, dims, groups):
    conv = cls(4, 6, 3, groups=groups)
    s = spec_map(conv)
    w = s["weight"]
    rf = 3**dims
    assert w.shape == (6, 4 // groups, *([3] * dims))
    assert (w.kind, w.layout, w.blocks) == ("conv", "out_in", 1)
    assert w.fan_in == 4 // groups * rf
    assert w.fan_out == 6 // groups * rf  # each input channel feeds out/groups channels
    assert s["bias"].param_type == "bias"


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(("cls", "dims"), CONV_TS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_conv_transpose_fans(cls, dims, groups):
    conv = cls(4, 6, 3, groups=groups)
    w = spec_map(conv)["weight"]
    rf = 3**dims
    assert w.shape == (4, 6 // groups, *([3] * dims))  # (in, out / groups, *k)
    assert (w.kind, w.layout) == ("conv_transpose", "conv_transpose")
    assert w.fan_in == 4 // groups * rf
    assert w.fan_out == 6 // groups * rf
    # torch's generic rule reads the layout the other way round
    assert nn.init._calculate_fan_in_and_fan_out(conv.weight)[0] == 6 // groups * rf


def test_conv_transpose_applied_uses_in_channels_fan():
    conv = nn.ConvTranspose2d(64, 32, 3)  # fan_in 64*9 = 576; torch's own rule says 32*9
    apply_scheme(conv, one_group(conv, "kaiming_normal", seed=1))
    x = conv.weight.detach().double().numpy().ravel()
    assert stats.kstest(x, stats.norm(0, 1 / math.sqrt(576)).cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.norm(0, 1 / math.sqrt(288)).cdf).pvalue < 1e-3
    apply_scheme(conv, one_group(conv, "orthogonal", seed=1))
    # orthogonal in the canonical (out, in * k) layout
    assert_orthonormal_rows(conv.weight.detach().transpose(0, 1))


def test_embedding_fans_and_applied_std():
    for cls in (nn.Embedding, nn.EmbeddingBag):
        w = spec_map(cls(10, 7))["weight"]
        assert (w.kind, w.param_type, w.fan_in, w.fan_out) == ("embedding", "weight", 1, 7)
    emb = nn.Embedding(1000, 20)  # fan_in 1: kaiming gives unit std per entry
    apply_scheme(emb, one_group(emb, "kaiming_normal", seed=2))
    assert emb.weight.std().item() == pytest.approx(1.0, rel=0.03)


# --------------------------------------------------------------------------------- recurrent


@pytest.mark.parametrize(("cls", "gates", "kind"),
                         [(nn.RNN, 1, "rnn"), (nn.LSTM, 4, "lstm"), (nn.GRU, 3, "gru")])
def test_rnn_packed_blocks(cls, gates, kind):
    rnn = cls(8, 16, num_layers=2, bidirectional=True)
    s = spec_map(rnn)
    for name in ("weight_ih_l0", "weight_ih_l0_reverse"):
        assert (s[name].kind, s[name].blocks, s[name].fan_in, s[name].fan_out) == (
            kind, gates, 8, 16)
    assert (s["weight_hh_l0"].blocks, s["weight_hh_l0"].fan_in, s["weight_hh_l0"].fan_out) == (
        gates, 16, 16)
    assert (s["weight_ih_l1"].fan_in, s["weight_ih_l1"].fan_out) == (32, 16)  # 2 directions in
    for name in ("bias_ih_l0", "bias_hh_l1_reverse"):
        assert (s[name].param_type, s[name].blocks) == ("bias", gates)
    assert s["weight_hh_l0"].shape == (gates * 16, 16)


def test_lstm_proj_size():
    s = spec_map(nn.LSTM(8, 16, proj_size=4))
    assert (s["weight_ih_l0"].blocks, s["weight_ih_l0"].fan_in, s["weight_ih_l0"].fan_out) == (
        4, 8, 16)
    hh = s["weight_hh_l0"]
    assert (hh.shape, hh.blocks, hh.fan_in, hh.fan_out) == ((64, 4), 4, 4, 16)
    hr = s["weight_hr_l0"]
    assert (hr.shape, hr.blocks, hr.fan_in, hr.fan_out, hr.param_type) == (
        (4, 16), 1, 16, 4, "weight")


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_rnn_orthogonal_per_gate_block(cls, gates):
    rnn = cls(8, 12, proj_size=5) if cls is nn.LSTM else cls(8, 12)
    apply_scheme(rnn, one_group(rnn, "orthogonal", seed=3))
    for block in blocks_of(rnn.weight_hh_l0, gates):
        assert_orthonormal_rows(block)
    for block in blocks_of(rnn.weight_ih_l0, gates):  # (12, 8): orthonormal columns
        assert_orthonormal_rows(block)
    if cls is nn.LSTM:
        assert_orthonormal_rows(rnn.weight_hr_l0)


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3)])
def test_rnn_kaiming_per_block_std(cls, gates):
    rnn = cls(32, 64)
    apply_scheme(rnn, one_group(rnn, "kaiming_normal", seed=4))
    for block in blocks_of(rnn.weight_ih_l0, gates):
        assert block.std().item() == pytest.approx(1 / math.sqrt(32), rel=0.05)
    for block in blocks_of(rnn.weight_hh_l0, gates):
        assert block.std().item() == pytest.approx(1 / math.sqrt(64), rel=0.05)
    # fan_out is per block (64), not the packed 64 * gates rows
    apply_scheme(rnn, one_group(rnn, "kaiming_normal", seed=4, options={"mode": "fan_out"}))
    for block in blocks_of(rnn.weight_hh_l0, gates):
        assert block.std().item() == pytest.approx(1 / 8, rel=0.05)
    # blocks are independent draws, not copies
    b = blocks_of(rnn.weight_hh_l0, gates)
    assert not torch.equal(b[0], b[1])



@pytest.mark.parametrize(("cell", "gates", "kind"),
                         [(nn.LSTMCell(5, 12), 4, "lstm"), (nn.GRUCell(5, 12), 3, "gru"),
                          (nn.RNNCell(5, 12), 1, "rnn")])
def test_rnn_cells_pack_their_gates_like_rnns(cell, gates, kind):
    s = spec_map(cell)
    assert (s["weight_ih"].kind, s["weight_ih"].blocks, s["weight_ih"].fan_in,
            s["weight_ih"].fan_out) == (kind, gates, 5, 12)
    assert (s["weight_hh"].blocks, s["weight_hh"].fan_in) == (gates, 12)
    assert (s["bias_ih"].param_type, s["bias_ih"].blocks) == ("bias", gates)
    assert all(x.known for x in s.values())
    apply_scheme(cell, one_group(cell, "orthogonal", seed=2))
    for block in blocks_of(cell.weight_hh, gates):  # each gate's (12, 12) block on its own
        assert_orthonormal_rows(block)


def test_mha_in_proj_three_blocks():
    mha = nn.MultiheadAttention(16, 2)
    s = spec_map(mha)
    ip = s["in_proj_weight"]
    assert (ip.kind, ip.blocks, ip.fan_in, ip.fan_out, ip.shape) == ("mha", 3, 16, 16, (48, 16))
    assert (s["in_proj_bias"].param_type, s["in_proj_bias"].blocks) == ("bias", 3)
    assert (s["out_proj.weight"].kind, s["out_proj.weight"].fan_in) == ("linear", 16)
    apply_scheme(mha, one_group(mha, "orthogonal", seed=5))
    for block in blocks_of(mha.in_proj_weight, 3):  # q, k and v each orthogonal
        assert_orthonormal_rows(block)


def test_a_nanogpt_c_attn_linear_keeps_its_fans_whatever_is_loaded():
    # GPT-2's packing is transformers' Conv1D's: a plain nn.Linear of that name is planned as
    # written, before and after transformers' rules are loaded (it was packed only after)
    attn = nn.Module()
    attn.c_attn, attn.c_proj = nn.Linear(8, 24), nn.Linear(8, 8)
    model = nn.Module()
    model.attn = attn
    before = spec_map(model)["attn.c_attn.weight"]
    pytest.importorskip("transformers")
    import autoinit.layers_hf  # noqa: F401
    after = spec_map(model)["attn.c_attn.weight"]
    assert (before.blocks, before.fan_out) == (after.blocks, after.fan_out) == (1, 24)


def test_packing_registered_for_a_module_type_packs_only_that_type():
    class Fused(nn.Linear):
        pass

    before = dict(layers_mod._PACKED)
    try:
        layers_mod.register_packed(r"(^|\.)fused_only\.", 2, Fused)
        net = nn.Module()
        net.fused_only = Fused(4, 8)
        fused = spec_map(net)["fused_only.weight"]
        net.fused_only = nn.Linear(4, 8)
        assert (fused.blocks, fused.fan_out, spec_map(net)["fused_only.weight"].blocks) == (2, 4, 1)
        with pytest.raises(ConfigError, match="module_type must be an nn.Module subclass, got 'Linear'"):
            layers_mod.register_packed(r"x", 2, "Linear")
    finally:
        layers_mod._PACKED.clear()
        layers_mod._PACKED.update(before)


def test_mha_separate_projections_and_bias_kv():
    s = spec_map(nn.MultiheadAttention(16, 2, kdim=8, vdim=12, add_bias_kv=True))
    assert (s["q_proj_weight"].fan_in, s["q_proj_weight"].fan_out) == (16, 16)
    assert (s["k_proj_weight"].fan_in, s["k_proj_weight"].fan_out) == (8, 16)
    assert (s["v_proj_weight"].fan_in, s["v_proj_weight"].fan_out) == (12, 16)
    assert s["bias_k"].param_type == s["bias_v"].param_type == "bias"


@pytest.mark.parametrize("module", [
    nn.BatchNorm1d(4), nn.BatchNorm2d(4), nn.LayerNorm(4), nn.GroupNorm(2, 4), nn.RMSNorm(4),
    nn.InstanceNorm2d(4, affine=True),
], ids=lambda m: type(m).__name__)
def test_norm_layers(module):
    s = describe_params(module)
    types = {x.local_name: x.param_type for x in s}
    assert types["weight"] == "norm_weight"
    assert types.get("bias", "norm_bias") == "norm_bias"
    assert all(x.kind == "norm" for x in s)


class RMSNorm(nn.Module):  # LLaMA's reference code: a gain, no bias, no reset method
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class LayerScale(nn.Module):  # timm's: a learned branch scale the model sets itself
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(1e-5 * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


def test_a_hand_written_norm_class_is_a_norm_and_a_layer_scale_is_left_alone():
    net = nn.Sequential(nn.Linear(4, 4), RMSNorm(4), nn.Linear(4, 4), LayerScale(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn of
        s = spec_map(net)
        apply_scheme(net, uniform_scheme(net, "kaiming_normal"))
    assert (s["1.weight"].kind, s["1.weight"].param_type, s["1.weight"].known) == \
        ("norm", "norm_weight", True)
    assert torch.equal(net[1].weight, torch.ones(4))  # a norm without reset method: a gain of 1
    assert "3.gamma" not in s and torch.equal(net[3].gamma, torch.full((4,), 1e-5))


# --------------------------------------------------------------------- custom and unknown


def test_in_out_rule_fans():
    s = spec_map(InOut(3, 5))
    assert (s["weight"].fan_in, s["weight"].fan_out, s["weight"].layout) == (3, 5, "in_out")
    assert s["bias"].param_type == "bias"


def test_in_out_variance_follows_shape0():
    model = Holder(InOut(400, 50))
    apply_scheme(model, one_group(model, "kaiming_normal", seed=6))
    assert model.layer.weight.std().item() == pytest.approx(1 / math.sqrt(400), rel=0.04)


@pytest.mark.parametrize("family", ["orthogonal", "kaiming_uniform", "xavier_normal"])
def test_in_out_is_the_transposed_linear(family):
    # same parameter name and seed: the (in, out) layer gets exactly Linear's values transposed
    a, b = Holder(InOut(12, 5)), Holder(nn.Linear(12, 5))
    apply_scheme(a, one_group(a, family, seed=7))
    apply_scheme(b, one_group(b, family, seed=7))
    assert torch.equal(a.layer.weight, b.layer.weight.T)
    if family == "orthogonal":  # orthogonal on the (out, in) view
        assert_orthonormal_rows(a.layer.weight.T)


def test_rule_is_inherited_by_subclasses():
    class MyLinear(nn.Linear):
        pass

    class MyInOut(InOut):
        pass

    assert spec_map(MyLinear(3, 4))["weight"].kind == "linear"
    assert spec_map(MyInOut(3, 4))["weight"].layout == "in_out"


def test_register_layer_kind_validation(monkeypatch):
    monkeypatch.setattr(layers_mod, "_RULES", dict(layers_mod._RULES))
    with pytest.raises(ConfigError, match="nn.Module subclass"):
        register_layer_kind(int, in_out_rule)

    class Fresh(nn.Module):
        pass

    register_layer_kind(Fresh, in_out_rule)
    with pytest.warns(UserWarning, match="replaced"):
        register_layer_kind(Fresh, in_out_rule)


def test_rule_may_skip_a_parameter(monkeypatch):
    monkeypatch.setattr(layers_mod, "_RULES", dict(layers_mod._RULES))

    class Skippy(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(3, 3))
            self.scale = nn.Parameter(torch.ones(3, 3))

    register_layer_kind(
        Skippy, lambda m, name, t: in_out_rule(m, name, t) if name == "weight" else None)
    assert list(spec_map(Skippy())) == ["weight"]


def test_unknown_module_warns_once_per_class(monkeypatch):
    monkeypatch.setattr(layers_mod, "_warned_types", set())

    class Mystery(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(6, 4))
            self.kernel = nn.Parameter(torch.zeros(5, 2, 3))
            self.bias = nn.Parameter(torch.zeros(6))
            self.gain = nn.Parameter(torch.ones(6))  # 1-D, not a bias: left alone

    class Riddle(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3, 7))

    model = nn.Sequential(Mystery(), Mystery(), Riddle())
    with pytest.warns(UserWarning, match="no layer rule") as record:
        s = spec_map(model)
    messages = [str(w.message) for w in record if "no layer rule" in str(w.message)]
    assert len(messages) == 2
    assert sum("Mystery" in m for m in messages) == 1 and sum("Riddle" in m for m in messages) == 1
    # torch's (out, in, *k) convention
    assert (s["0.weight"].fan_in, s["0.weight"].fan_out, s["0.weight"].kind) == (4, 6, "unknown")
    assert (s["0.kernel"].fan_in, s["0.kernel"].fan_out) == (6, 15)
    assert (s["2.w"].fan_in, s["2.w"].fan_out) == (7, 3)
    assert s["0.bias"].param_type == "bias"
    assert "0.gain" not in s and "1.gain" not in s
    assert not any(x.known for x in s.values())
    # a second look stays silent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        describe_params(model)



def test_a_one_dim_parameter_left_alone_warns_of_no_convention(monkeypatch):
    monkeypatch.setattr(layers_mod, "_warned_types", set())
    net = nn.Sequential(nn.Linear(4, 6), nn.PReLU(6), nn.Linear(6, 2))
    before = net[1].weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PReLU's slopes are left alone: nothing to warn of
        s = spec_map(net)
        apply_scheme(net, uniform_scheme(net, "kaiming_normal"))
    assert "1.weight" not in s
    assert torch.equal(net[1].weight, before)


def test_complex_parameters_are_left_alone_with_one_warning(monkeypatch):
    monkeypatch.setattr(layers_mod, "_warned_types", set())

    class Spectral(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 6, dtype=torch.cfloat))
            self.out = nn.Linear(6, 2)

    net = Spectral()
    before = net.w.detach().clone()
    with pytest.warns(UserWarning, match="'w' is complex") as record:
        s = spec_map(net)
    assert list(s) == ["out.weight", "out.bias"]
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per parameter
        apply_scheme(net, uniform_scheme(net, "orthogonal"))
    assert torch.equal(net.w, before)  # its imaginary part is kept, not zeroed



def test_parametrized_tensors_are_described_by_their_layers_rule(monkeypatch):
    monkeypatch.setattr(layers_mod, "_warned_types", set())
    P = nn.utils.parametrizations
    net = nn.Sequential(P.weight_norm(nn.Linear(8, 16)), P.spectral_norm(nn.Conv2d(3, 6, 3)),
                        P.orthogonal(nn.Linear(16, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "no layer rule for ParametrizationList"
        s = spec_map(net)
    v, sn = s["0.parametrizations.weight.original1"], s["1.parametrizations.weight.original"]
    assert (v.kind, v.param_type, v.fan_in, v.fan_out, v.known) == ("linear", "weight", 8, 16, True)
    assert (sn.kind, sn.fan_in, sn.fan_out) == ("conv", 27, 54)
    # weight norm's magnitude follows the direction; an orthogonal weight is orthogonal anyway
    assert "0.parametrizations.weight.original0" not in s
    assert "2.parametrizations.weight.original" not in s
    assert {"0.bias", "1.bias", "2.bias"} <= set(s)



@pytest.mark.parametrize("wrap", ["spectral_norm", "weight_norm"])
def test_hook_based_norms_are_refused_in_one_line_naming_the_replacement(wrap):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the hook-based weight_norm
        net = nn.Sequential(nn.Linear(4, 8), getattr(nn.utils, wrap)(nn.Linear(8, 8)))
    net(torch.zeros(2, 4))  # after a forward its weight is a computed tensor
    with pytest.raises(ConfigError, match=rf"^module '1' uses torch.nn.utils.{wrap}, .* use "
                                          rf"torch.nn.utils.parametrizations.{wrap} instead$"):
        describe_params(net)
    net[1].requires_grad_(False)  # frozen: nothing to refuse (apply_scheme sees frozen ones too)
    assert list(spec_map(net)) == ["0.weight", "0.bias"]
    assert list(spec_map(net, include_frozen=True)) == ["0.weight", "0.bias", "1.bias"]
    frozen = net[1].weight_orig if wrap == "spectral_norm" else net[1].weight_v
    before = frozen.detach().clone()
    apply_scheme(net, uniform_scheme(net, "orthogonal"))
    assert torch.equal(frozen, before)


def test_a_pruned_module_is_refused_in_one_line_saying_what_to_do():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    prune.l1_unstructured(net[2], "weight", amount=0.5)
    with pytest.raises(ConfigError, match=r"^module '2' uses torch.nn.utils.prune, .* search "
                                          r"before pruning, or make the pruning permanent"):
        describe_params(net)
    prune.remove(net[2], "weight")
    assert "2.weight" in spec_map(net)


def test_data_parallel_models_are_described_without_the_wrappers_prefix():
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert list(spec_map(nn.DataParallel(nn.DataParallel(net)))) == list(spec_map(net))


# ----------------------------------------------------------------------- describe_params


def test_tied_parameters_once():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    names = [s.name for s in describe_params(model)]
    assert names == ["0.weight"]


def test_a_table_tied_to_an_output_layer_registered_first_is_described_as_the_embedding():
    model = nn.Sequential(nn.Linear(4, 10, bias=False), nn.Embedding(10, 4))
    model[1].weight = model[0].weight
    (spec,) = describe_params(model)
    assert (spec.name, spec.kind, spec.fan_in, spec.fan_out) == ("0.weight", "embedding", 1, 4)


def test_frozen_only_exclude():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.Linear(3, 1))
    model[0].weight.requires_grad_(False)
    assert "0.weight" not in spec_map(model)
    assert "0.weight" in spec_map(model, include_frozen=True)
    assert list(spec_map(model, only=r"^2\.")) == ["2.weight", "2.bias"]
    assert list(spec_map(model, only=[r"^2\.w", r"^3\.b"])) == ["2.weight", "3.bias"]
    assert list(spec_map(model, exclude=r"bias$")) == ["2.weight", "3.weight"]
    with pytest.raises(ConfigError, match="exclude pattern"):
        describe_params(model, exclude="(")


def test_lazy_module_not_materialized():
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="run one batch"):
        describe_params(model)
    model(torch.zeros(1, 3))
    assert spec_map(model)["0.weight"].fan_in == 3


def test_packed_parameters_have_fans_per_block():
    from autoinit.layers import register_packed

    register_packed(r"(^|\.)packed_qkv_test\.", 3)
    net = nn.Module()
    net.packed_qkv_test = nn.Linear(8, 24)
    weight, bias = describe_params(net)
    assert (weight.blocks, weight.fan_in, weight.fan_out) == (3, 8, 8)
    assert bias.blocks == 3
    with pytest.raises(ConfigError, match="blocks must be a positive integer, got 0"):
        register_packed("x", 0)
    net.packed_qkv_test = nn.Linear(8, 10)
    with pytest.raises(ConfigError, match="output size 10 does not split into 3"):
        describe_params(net)


def test_a_resolver_describes_classes_without_a_common_base():
    from autoinit.layers import register_layer_resolver

    class ResolverTestGain(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4))

    register_layer_resolver(lambda cls: (lambda m, n, t: LayerParam("norm", "norm_weight"))
                            if cls.__name__ == "ResolverTestGain" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (spec,) = describe_params(ResolverTestGain())
    assert (spec.kind, spec.param_type, spec.known) == ("norm", "norm_weight", True)
