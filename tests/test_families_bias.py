"""Gate-bias rules for recurrent layers: chrono, the GRU update gate, and where the offset goes."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from autoinit import ConfigError, InitScheme, apply_scheme
from autoinit.families import GATES, bias_values, fitting_bias_rules
from autoinit.plan import ModelPlan

H = 2000  # hidden units: enough draws for a KS test


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Module construction draws from the global RNG: seed it here and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


def gate_bias(rule, kind, value, name="rnn.bias_ih_l0", hidden=H, seed=0):
    gates = len(GATES[kind])
    g = torch.Generator().manual_seed(seed)
    return bias_values((gates * hidden,), rule, value, kind=kind, param_name=name,
                       generator=g).view(gates, hidden)


def test_chrono_lstm_forget_is_log_uniform_and_input_its_negative():
    t_max = 100.0
    b = gate_bias("chrono", "lstm", t_max)
    i, f, g, o = b  # PyTorch's LSTM gate order
    assert torch.equal(i, -f)
    assert torch.count_nonzero(g) == 0 and torch.count_nonzero(o) == 0
    assert f.min() >= 0.0 and f.max() <= math.log(t_max - 1) + 1e-6
    law = stats.uniform(1.0, t_max - 2.0)  # exp(b_f) ~ U(1, T_max - 1)
    assert stats.kstest(f.exp().double().numpy(), law.cdf).pvalue > 1e-3
    assert stats.kstest(f.exp().double().numpy(), stats.uniform(1.0, 2 * t_max).cdf).pvalue < 1e-3


def test_chrono_gru_puts_the_log_uniform_on_the_update_gate():
    r, z, n = gate_bias("chrono", "gru", 50.0, name="gru.bias_ih_l1_reverse")
    assert torch.count_nonzero(r) == 0 and torch.count_nonzero(n) == 0
    assert z.min() >= 0.0 and z.max() <= math.log(49.0) + 1e-6 and z.std() > 0.5


def test_chrono_is_seeded():
    a, b = gate_bias("chrono", "lstm", 30.0, seed=1), gate_bias("chrono", "lstm", 30.0, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, gate_bias("chrono", "lstm", 30.0, seed=2))


def test_update_gate_on_the_z_slice_only():
    r, z, n = gate_bias("update_gate", "gru", 2.5, hidden=7)
    assert torch.equal(z, torch.full((7,), 2.5))
    assert torch.count_nonzero(r) == 0 and torch.count_nonzero(n) == 0


@pytest.mark.parametrize(("rule", "kind"), [("chrono", "lstm"), ("chrono", "gru"),
                                            ("update_gate", "gru"), ("forget_gate", "lstm")])
def test_gate_rules_leave_bias_hh_zero(rule, kind):
    assert torch.count_nonzero(gate_bias(rule, kind, 20.0, name="rnn.bias_hh_l0")) == 0


@pytest.mark.parametrize(("rule", "kind", "match"), [
    ("chrono", "linear", "'chrono' needs an LSTM or a GRU layer, got 'rnn.bias_ih_l0' of a linear"),
    ("chrono", "rnn", "'chrono' needs an LSTM or a GRU layer"),
    ("update_gate", "lstm", "'update_gate' needs a GRU layer"),
])
def test_gate_rules_refuse_other_layers(rule, kind, match):
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match=match):
        bias_values((8,), rule, 10.0, kind=kind, param_name="rnn.bias_ih_l0", generator=g)


@pytest.mark.parametrize("t_max", [2.0, 0.5, -3.0])
def test_chrono_needs_t_max_above_two(t_max):
    with pytest.raises(ConfigError, match=f"T_max > 2.*got {t_max!r}"):
        gate_bias("chrono", "lstm", t_max)


def test_fitting_bias_rules_per_kind():
    assert "chrono" in fitting_bias_rules("lstm") and "update_gate" not in fitting_bias_rules("lstm")
    assert {"chrono", "update_gate"} <= set(fitting_bias_rules("gru"))
    assert "forget_gate" not in fitting_bias_rules("gru")
    for kind in ("linear", "rnn", "conv", "mha"):
        assert not {"chrono", "update_gate", "forget_gate"} & set(fitting_bias_rules(kind))


def test_positive_update_bias_keeps_the_state():
    """PyTorch's GRU: h' = (1 - z) * n + z * h, so a large z bias copies h through a step."""
    gru = nn.GRU(3, 6)
    with torch.no_grad():
        gru.bias_ih_l0.copy_(bias_values((18,), "update_gate", 12.0, kind="gru",
                                         param_name="bias_ih_l0", generator=torch.Generator()))
        gru.bias_hh_l0.zero_()
    h0 = torch.randn(1, 1, 6)
    _, h1 = gru(torch.randn(1, 1, 3), h0)
    torch.testing.assert_close(h1, h0, atol=1e-4, rtol=0)


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, 8, num_layers=2)
        self.gru = nn.GRU(8, 6, bidirectional=True)
        self.head = nn.Linear(12, 1)


def gate_scheme(model, groups="role", seed=5):
    plan = ModelPlan.of(model, groups)
    rules = {}
    for group in plan.grouping.groups:
        if "lstm" in group and "rnn_hh" not in group:
            rules[group] = plan.rule(group, "orthogonal", bias="chrono", bias_value=100.0)
        elif "gru" in group and "rnn_hh" not in group:
            rules[group] = plan.rule(group, "orthogonal", bias="update_gate", bias_value=1.5)
        else:
            rules[group] = plan.rule(group, "xavier_uniform", bias="zeros")
    return plan.scheme(rules, seed)


@pytest.mark.parametrize("groups", ["role", "layer"])
def test_gate_rules_replay_bit_for_bit_through_json(groups):
    model = Recurrent()
    scheme = gate_scheme(model, groups)
    apply_scheme(model, scheme)
    other = Recurrent()
    apply_scheme(other, InitScheme.from_json(scheme.to_json()))
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # what the gates see is the sum of both biases: the offset counted once
    for suffix in ("l0", "l1"):
        total = (getattr(model.lstm, f"bias_ih_{suffix}") + getattr(model.lstm, f"bias_hh_{suffix}"))
        i, f, g, o = total.detach().view(4, 8)
        assert torch.equal(i, -f) and f.min() >= 0 and f.max() <= math.log(99) + 1e-6
        assert f.std() > 0
    for suffix in ("l0", "l0_reverse"):
        total = getattr(model.gru, f"bias_ih_{suffix}") + getattr(model.gru, f"bias_hh_{suffix}")
        assert torch.equal(total.detach().view(3, 6)[1], torch.full((6,), 1.5))
    assert not torch.equal(model.lstm.bias_ih_l0, model.lstm.bias_ih_l1)  # own draw per layer


def test_gate_rule_on_a_linear_group_is_refused_by_apply():
    model = Recurrent()
    plan = ModelPlan.of(model)
    rules = {g: plan.rule(g, "xavier_uniform", bias="zeros") for g in plan.grouping.groups}
    rules["head.linear"] = plan.rule("head.linear", "xavier_uniform", bias="chrono",
                                     bias_value=50.0)
    with pytest.raises(ConfigError, match="'chrono' needs an LSTM or a GRU layer, got 'head.bias'"):
        apply_scheme(model, plan.scheme(rules))
