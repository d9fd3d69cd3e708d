"""Contract tests for every registered initializer family, plus gains and bias rules."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from scipy import stats

from autoinit import ConfigError, list_families, register_family
from autoinit.families import (
    BIAS_RULES,
    GAINS,
    Family,
    Fans,
    _registry,
    bias_values,
    check_bias_rule,
    gain_of,
    get_family,
)

ALPHA = 1e-3  # KS significance; every draw is seeded, so a pass is a stable pass

# Families with a sampler, and the textbook law each one must follow. pytorch_default has no
# sampler (it is module-level); tests/test_apply.py checks it against reset_parameters().
MODULE_LEVEL = {"pytorch_default", "model_default"}  # model_default: tests/test_model_init.py
DISTRIBUTION = {
    "xavier_uniform": "uniform",
    "xavier_normal": "normal",
    "kaiming_uniform": "uniform",
    "kaiming_normal": "normal",
    "lecun_uniform": "uniform",
    "lecun_normal": "normal",
    "small_normal": "normal",
    "trunc_normal": "trunc_normal",
    "dcgan": "normal",
    "gamma_normal": "normal",
}
LOC = {"gamma_normal": 1.0}  # a norm gamma's law is centred on one
STRUCTURED = {"orthogonal", "identity", "zeros", "constant", "idinit", "mimetic", "mimetic_out"}
EXTRA_OPTIONS = {
    "kaiming_uniform": [{"mode": "fan_out"}],
    "kaiming_normal": [{"mode": "fan_out"}],
    "trunc_normal": [{"std": 0.5}],
    "mimetic": [{"alpha": 0.5, "beta": 0.2, "noise": 0.5, "heads": 2.0}],
    "mimetic_out": [{"beta": 0.2, "noise": 0.5}],
}
# Families for one layer kind draw blocks of that kind; their structure is checked in
# tests/test_families_mimetic.py.
OWN_FANS = {
    "mimetic": [Fans((16, 16), 16, 16, block=b, blocks=3) for b in range(3)],
    "mimetic_out": [Fans((16, 16), 16, 16)],
}

SAMPLED = [n for n in list_families() if get_family(n).sampler is not None]
CASES = [(n, {}) for n in SAMPLED] + [(n, o) for n in SAMPLED for o in EXTRA_OPTIONS.get(n, [])]
CASE_IDS = [n + "".join(f"-{k}={v}" for k, v in o.items()) for n, o in CASES]

# ~20k elements each: a dense matrix (wide) and a conv kernel (tall once flattened to (out, in*k)).
BIG_FANS = [
    pytest.param(Fans((100, 200), 200, 100, math.sqrt(2.0)), id="matrix-relu"),
    pytest.param(Fans((64, 32, 3, 3), 288, 576, 5.0 / 3.0), id="conv-tanh"),
]
SMALL_FANS = [
    pytest.param(Fans((6, 10), 10, 6, 1.0), id="matrix"),
    pytest.param(Fans((4, 3, 3, 3), 27, 36, math.sqrt(2.0)), id="conv"),
]


def with_fans(fans_params):
    """``(name, options, fans)`` cases: every case with ``fans_params``, or with its own fans."""
    out = []
    for (name, options), case_id in zip(CASES, CASE_IDS, strict=True):
        own = [pytest.param(f, id=f"block{f.block}") for f in OWN_FANS.get(name, [])]
        for p in own or fans_params:
            out.append(pytest.param(name, options, p.values[0], id=f"{case_id}-{p.id}"))
    return out


def draw(name, fans, scale=1.0, seed=0, options=None):
    g = torch.Generator().manual_seed(seed)
    return get_family(name).sampler(fans, scale=scale, generator=g, **(options or {}))


def textbook_std(name: str, fans: Fans, options: dict) -> float:
    gain, fan_in, fan_out = fans.gain, fans.fan_in, fans.fan_out
    if name.startswith("xavier"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    if name.startswith("kaiming"):
        fan = fan_out if options.get("mode") == "fan_out" else fan_in
        return gain / math.sqrt(fan)
    if name.startswith("lecun"):
        return 1.0 / math.sqrt(fan_in)
    if name == "small_normal":
        return 0.01
    if name in ("dcgan", "gamma_normal"):
        return 0.02
    if name == "trunc_normal":
        return options.get("std", 0.02)
    raise AssertionError(f"no theory for {name}")


def theoretical(name: str, fans: Fans, scale: float, options: dict, stretch: float = 1.0):
    """The exact law of one entry (``stretch`` widens it, to show the test has power)."""
    sd = scale * textbook_std(name, fans, options) * stretch
    law = DISTRIBUTION[name]
    if law == "normal":
        return stats.norm(LOC.get(name, 0.0), sd)
    if law == "uniform":
        bound = math.sqrt(3.0) * sd
        return stats.uniform(-bound, 2 * bound)
    return stats.truncnorm(-2.0, 2.0, loc=0.0, scale=sd)


def is_random(name: str, shape: tuple[int, ...]) -> bool:
    if name in ("zeros", "constant", "idinit"):
        return False
    return not (name == "identity" and len(shape) == 2)


def assert_orthogonal(w: torch.Tensor, gain: float) -> None:
    m = w.reshape(w.shape[0], -1).double()
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    eye = torch.eye(gram.shape[0], dtype=torch.float64)
    torch.testing.assert_close(gram, gain**2 * eye, atol=1e-4 * max(gain**2, 1.0), rtol=0)


# ----------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("name", list_families())
def test_every_registered_family_has_a_contract(name):
    family = get_family(name)
    if family.sampler is None:
        assert name in MODULE_LEVEL  # checked in test_apply.py, test_model_init.py
    else:
        assert name in DISTRIBUTION or name in STRUCTURED
        assert set(family.options) == {k for o in EXTRA_OPTIONS.get(name, []) for k in o}


# ------------------------------------------------------------------- distribution / theory


@pytest.mark.parametrize(("name", "options", "fans"), with_fans(BIG_FANS))
def test_distribution_matches_theory(name, options, fans):
    scale = 0.7
    w = draw(name, fans, scale=scale, seed=11, options=options)
    assert w.shape == fans.shape and w.dtype == torch.float32 and w.device.type == "cpu"
    assert torch.isfinite(w).all()
    gain = fans.gain * scale
    if name in DISTRIBUTION:
        x = w.double().numpy().ravel()
        assert stats.kstest(x, theoretical(name, fans, scale, options).cdf).pvalue > ALPHA
        # the same test rejects a law only 10% wider: it can fail
        wide = theoretical(name, fans, scale, options, stretch=1.1)
        assert stats.kstest(x, wide.cdf).pvalue < ALPHA
    elif name == "orthogonal":
        assert_orthogonal(w, gain)
    elif name == "identity":
        if w.dim() == 2:
            assert torch.equal(w, torch.eye(*w.shape) * scale)
        else:
            centre = tuple(k // 2 for k in w.shape[2:])
            tap = w[(slice(None), slice(None), *centre)]
            assert_orthogonal(tap, scale)
            rest = w.clone()
            rest[(slice(None), slice(None), *centre)] = 0
            assert torch.count_nonzero(rest) == 0
    elif name == "idinit":
        tap = w if w.dim() == 2 else w[(slice(None), slice(None), *(k // 2 for k in w.shape[2:]))]
        n = min(tap.shape)
        ones = torch.tensor([[i % n == j % n for j in range(tap.shape[1])]
                             for i in range(tap.shape[0])])
        assert torch.equal(tap, ones * scale)
        assert torch.count_nonzero(w) == torch.count_nonzero(tap)
    elif name in OWN_FANS:
        assert w.std() > 0  # the structure across blocks: tests/test_families_mimetic.py
    elif name == "zeros":
        assert torch.equal(w, torch.zeros(fans.shape))
    elif name == "constant":
        assert torch.equal(w, torch.full(fans.shape, scale))
    else:
        raise AssertionError(f"no contract for {name}")


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_mode_picks_the_fan(mode):
    fans = Fans((200, 100), 100, 400, 1.0)  # fans deliberately not the shape's
    w = draw("kaiming_normal", fans, options={"mode": mode})
    expected = 1 / math.sqrt(100 if mode == "fan_in" else 400)
    assert w.std().item() == pytest.approx(expected, rel=0.03)


def test_kaiming_rejects_unknown_mode():
    with pytest.raises(ConfigError, match="mode"):
        draw("kaiming_normal", Fans((4, 4), 4, 4), options={"mode": "fan_avg"})


def test_trunc_normal_is_truncated_at_two_std():
    w = draw("trunc_normal", Fans((100, 200), 200, 100), scale=3.0, options={"std": 0.1})
    assert w.abs().max().item() <= 2 * 0.3 + 1e-6
    assert w.abs().max().item() > 0.28  # the tails are actually reached


def test_orthogonal_tall_and_wide_and_gain():
    assert_orthogonal(draw("orthogonal", Fans((30, 10), 10, 30, 5 / 3)), 5 / 3)
    assert_orthogonal(draw("orthogonal", Fans((10, 30), 30, 10, 1.0), scale=0.5), 0.5)


# ---------------------------------------------------------------- seeding and the global RNG


@pytest.mark.parametrize(("name", "options", "fans"), with_fans(SMALL_FANS))
def test_seeded_generator_reproduces(name, options, fans):
    a = draw(name, fans, seed=3, options=options)
    b = draw(name, fans, seed=3, options=options)
    assert torch.equal(a, b)
    c = draw(name, fans, seed=4, options=options)
    assert torch.equal(a, c) != is_random(name, fans.shape)


@pytest.mark.parametrize(("name", "options", "fans"), with_fans(SMALL_FANS))
def test_global_rng_untouched(name, options, fans):
    before = torch.get_rng_state()
    draw(name, fans, seed=5, options=options)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(("name", "options", "fans"), with_fans(SMALL_FANS))
def test_scale_multiplies(name, options, fans):
    loc = LOC.get(name, 0.0)  # a gamma's deviation from one is what scales
    one = draw(name, fans, scale=1.0, seed=7, options=options) - loc
    for k in (0.0, 0.25, 2.5):
        torch.testing.assert_close(draw(name, fans, scale=k, seed=7, options=options) - loc,
                                   k * one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "options"), [c for c in CASES if c[0] in DISTRIBUTION],
                         ids=[i for i, c in zip(CASE_IDS, CASES, strict=True)
                              if c[0] in DISTRIBUTION])
def test_scale_multiplies_the_std(name, options):
    fans = Fans((100, 200), 200, 100, 1.0)
    ratio = (draw(name, fans, scale=3.0, seed=1, options=options).std()
             / draw(name, fans, scale=1.0, seed=2, options=options).std()).item()
    assert ratio == pytest.approx(3.0, rel=0.05)


# --------------------------------------------------------------------------------- registry


def test_list_families_pattern_and_get_family_error():
    assert list_families("kaiming*") == ["kaiming_normal", "kaiming_uniform"]
    assert list_families() == sorted(list_families())
    with pytest.raises(ConfigError, match="unknown family 'nope'.*kaiming_normal"):
        get_family("nope")


def test_register_family_validates_and_replaces(monkeypatch):
    monkeypatch.setattr(_registry, "_FAMILIES", dict(_registry._FAMILIES))

    def ones(fans, *, scale, generator):
        return torch.full(fans.shape, scale)

    with pytest.raises(ConfigError, match="identifier"):
        register_family(Family("not-an-id", ones))
    register_family(Family("test_ones", ones))
    assert "test_ones" in list_families()
    with pytest.warns(UserWarning, match="registered already"):
        register_family(Family("test_ones", ones, summary="again"))
    assert get_family("test_ones").summary == "again"


def test_family_fits():
    assert not get_family("identity").fits("weight", "embedding")
    assert get_family("identity").fits("weight", "linear")
    assert get_family("constant").fits("norm_weight", "norm")
    assert not get_family("constant").fits("weight", "linear")
    assert get_family("zeros").fits("norm_weight", "norm")
    assert not get_family("kaiming_normal").fits("norm_weight", "norm")
    assert get_family("pytorch_default").fits("norm_weight", "norm")
    mimetic, out = get_family("mimetic"), get_family("mimetic_out")
    assert mimetic.fits("weight", "mha") and mimetic.fits("weight", "mha", "attn_qkv")
    assert not mimetic.fits("weight", "linear", "attn_qkv")  # separate q/k/v projections
    assert not mimetic.fits("weight", "mha", "hidden")
    assert out.fits("weight", "linear", "attn_out") and not out.fits("weight", "linear", "head")
    assert not out.fits("weight", "mha", "attn_out")
    assert not get_family("idinit").fits("weight", "embedding")
    assert get_family("idinit").fits("weight", "conv", "hidden")


# ------------------------------------------------------------------------------------ gains


def test_gains_match_torch():
    for name in ("linear", "sigmoid", "tanh", "relu", "selu"):
        assert gain_of(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert gain_of("leaky_relu") == pytest.approx(torch.nn.init.calculate_gain("leaky_relu"))
    assert set(GAINS) >= {"gelu", "silu", "elu"}
    with pytest.raises(ConfigError, match="nonlinearity.*'swish'"):
        gain_of("swish")


# ------------------------------------------------------------------------------- bias rules


def bias(rule, shape=(8,), value=0.5, kind="linear", name="fc.bias", seed=0):
    g = torch.Generator().manual_seed(seed)
    return bias_values(shape, rule, value, kind=kind, param_name=name, generator=g)


def test_bias_zeros_and_constant():
    assert torch.equal(bias("zeros"), torch.zeros(8))
    assert torch.equal(bias("constant", value=0.01), torch.full((8,), 0.01))


def test_bias_normal_has_the_std():
    before = torch.get_rng_state()
    x = bias("normal", shape=(20000,), value=0.003, seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert stats.kstest(x.double().numpy(), stats.norm(0, 0.003).cdf).pvalue > ALPHA
    assert torch.equal(x, bias("normal", shape=(20000,), value=0.003, seed=1))
    assert not torch.equal(x, bias("normal", shape=(20000,), value=0.003, seed=2))


def test_bias_forget_gate_on_lstm():
    hidden = 5
    ih = bias("forget_gate", shape=(4 * hidden,), value=1.5, kind="lstm", name="rnn.bias_ih_l0")
    expected = torch.zeros(4 * hidden)
    expected[hidden:2 * hidden] = 1.5  # gate order i, f, g, o: block 1 is the forget gate
    assert torch.equal(ih, expected)
    rev = bias("forget_gate", shape=(4 * hidden,), value=1.5, kind="lstm",
               name="rnn.bias_ih_l1_reverse")
    assert torch.equal(rev, expected)
    hh = bias("forget_gate", shape=(4 * hidden,), value=1.5, kind="lstm", name="rnn.bias_hh_l0")
    assert torch.equal(hh, torch.zeros(4 * hidden))


@pytest.mark.parametrize("kind", ["linear", "gru", "conv"])
def test_bias_forget_gate_needs_an_lstm(kind):
    with pytest.raises(ConfigError, match="forget_gate.*LSTM"):
        bias("forget_gate", kind=kind)


def test_bias_rule_checks():
    assert set(BIAS_RULES) == {"zeros", "constant", "normal", "forget_gate", "chrono",
                               "update_gate", "default"}
    for rule in BIAS_RULES:
        check_bias_rule(rule)
    with pytest.raises(ConfigError, match="bias rule.*'ones'"):
        check_bias_rule("ones")
    with pytest.raises(ConfigError, match="'ones'"):
        bias("ones")
    with pytest.raises(ConfigError, match="reset"):  # "default" is the module's own business
        bias("default")


def test_no_warnings_from_samplers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, options in CASES:
            for fans in OWN_FANS.get(name, [Fans((3, 5), 5, 3)]):
                draw(name, fans, options=options)
