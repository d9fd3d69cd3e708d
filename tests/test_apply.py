"""apply_scheme and default_values: determinism, the global RNG, model checks, edge cases."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import warnings
from collections import OrderedDict
from dataclasses import replace

import pytest
import torch
from torch import nn

from autoinit import ConfigError, GroupRule, InitScheme, SchemeError, apply_scheme, uniform_scheme
from autoinit.apply import default_values
from autoinit.layers import LayerParam, register_layer_kind
from autoinit.plan import ModelPlan


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Module construction draws from the global RNG: seed it here and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


# Shared with the subprocess: builds a model of many layer kinds and hashes its state.
SHARED_SRC = '''
import hashlib
import torch
from torch import nn

def build():
    return nn.ModuleDict({
        "conv": nn.Conv2d(3, 4, 3), "bn": nn.BatchNorm2d(4),
        "convt": nn.ConvTranspose2d(4, 2, 3, groups=2), "emb": nn.Embedding(10, 6),
        "lstm": nn.LSTM(6, 5, proj_size=3), "gru": nn.GRU(3, 4),
        "mha": nn.MultiheadAttention(8, 2), "ln": nn.LayerNorm(8), "fc": nn.Linear(8, 2),
    })

def state_hash(model):
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().contiguous().numpy().tobytes())
    return h.hexdigest()
'''
SHARED: dict = {}
exec(SHARED_SRC, SHARED)
build, state_hash = SHARED["build"], SHARED["state_hash"]

CHILD_SRC = SHARED_SRC + '''
import json, sys
import autoinit
torch.manual_seed(999)
torch.randn(1000)  # a different global RNG state and different construction draws
hashes = []
for path in sys.argv[1:]:
    model = build()
    autoinit.apply_scheme(model, autoinit.InitScheme.from_json(path))
    hashes.append(state_hash(model))
print(json.dumps(hashes))
'''


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def global_rule(model, rule: GroupRule, seed: int = 0, **plan_kw) -> InitScheme:
    """A scheme giving every non-norm parameter ``rule``."""
    plan = ModelPlan.of(model, "global", **plan_kw)
    return plan.scheme({"global": rule}, seed=seed)


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------- pytorch_default == reset


DEFAULT_MODULES = {
    "Linear": lambda: nn.Linear(5, 7),
    "Conv2d": lambda: nn.Conv2d(3, 4, 3),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(3, 4, 3),
    "Embedding": lambda: nn.Embedding(10, 4, padding_idx=0),
    "LSTM": lambda: nn.LSTM(4, 6, num_layers=2, proj_size=3),
    "GRU": lambda: nn.GRU(4, 6),
    "MultiheadAttention": lambda: nn.MultiheadAttention(8, 2),
    "LayerNorm": lambda: nn.LayerNorm(6),
    "BatchNorm": lambda: nn.BatchNorm2d(4),
}


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7])
@pytest.mark.parametrize("make", DEFAULT_MODULES.values(), ids=DEFAULT_MODULES.keys())
def test_default_values_equal_reset_parameters(make, seed):
    module = make()
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(0.123)  # so an unreset value can never pass
    g = torch.Generator().manual_seed(seed)
    before = torch.get_rng_state()
    vals = default_values(module, g)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.all(p == 0.123) for p in module.parameters())  # module itself untouched

    clone = copy.deepcopy(module)
    reset = getattr(clone, "reset_parameters", None) or clone._reset_parameters
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        reset()
    own = dict(clone.named_parameters(recurse=False))
    assert set(vals) == set(own)
    for name, value in vals.items():
        assert torch.equal(value, own[name]), name


def test_default_values_advances_the_generator():
    lin = nn.Linear(4, 4)
    g = torch.Generator().manual_seed(3)
    start = g.get_state()
    first = default_values(lin, g)["weight"]
    assert not torch.equal(g.get_state(), start)
    assert not torch.equal(default_values(lin, g)["weight"], first)


def test_default_values_module_without_reset():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(6, 16))
            self.bias = nn.Parameter(torch.zeros(6))

    vals = default_values(Plain(), torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(16)  # kaiming_uniform(a=sqrt 5) and the bias both give 1/sqrt(fan_in)
    for v in vals.values():
        assert 0 < v.abs().max() <= bound and v.std() > 0


def test_pytorch_default_gives_a_norm_without_reset_ones_and_zeros():
    class ScaleNorm(nn.Module):  # T5LayerNorm's shape: a gain and a shift, no reset method
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.full((8,), 3.0))
            self.bias = nn.Parameter(torch.full((8,), 3.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / x.norm(dim=-1, keepdim=True) * self.weight + self.bias

    register_layer_kind(ScaleNorm, lambda module, name, t: LayerParam("norm", f"norm_{name}"))
    model = nn.Sequential(nn.Linear(4, 8), ScaleNorm(), nn.Linear(8, 2))
    apply_scheme(model, uniform_scheme(model, "xavier_normal"))
    assert torch.equal(model[1].weight.detach(), torch.ones(8))
    assert torch.equal(model[1].bias.detach(), torch.zeros(8))


@pytest.mark.parametrize("family", ["orthogonal", "identity", "xavier_normal"])
def test_a_learned_vector_weight_is_drawn_as_one_row(family):
    class ClassToken(nn.Module):  # CLIP's vision embeddings hold a 1-D class_embedding
        def __init__(self) -> None:
            super().__init__()
            self.class_embedding = nn.Parameter(torch.zeros(16))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.class_embedding

    register_layer_kind(ClassToken, lambda module, name, t: LayerParam("embedding", "weight", 1, 16))
    model = nn.Sequential(ClassToken(), nn.Linear(16, 2))
    apply_scheme(model, uniform_scheme(model, family))
    row = model[0].class_embedding.detach()
    assert row.shape == (16,) and row.abs().sum() > 0
    if family == "orthogonal":
        assert row.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_pytorch_default_scheme_scales():
    model = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5))
    one = snapshot(apply_scheme(model, uniform_scheme(model, "pytorch_default", seed=4)))
    bound = 1 / math.sqrt(6)
    assert 0 < one["0.weight"].abs().max() <= bound
    assert torch.equal(one["1.weight"], torch.ones(5))
    plan = ModelPlan.of(model, "global")
    rules = {"global": plan.rule("global", "pytorch_default", scale=2.0),
             "norm": plan.rule("norm", "pytorch_default")}
    two = snapshot(apply_scheme(model, plan.scheme(rules, seed=4)))
    assert torch.equal(two["0.weight"], 2 * one["0.weight"])
    assert torch.equal(two["0.bias"], one["0.bias"])  # the bias rule "default" is not scaled


# ---------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("family", ["kaiming_uniform", "orthogonal", "pytorch_default"])
def test_same_scheme_same_weights_different_seed_different(family):
    a, b = build(), build()  # different construction draws
    scheme = uniform_scheme(a, family, seed=5)
    ha = state_hash(apply_scheme(a, scheme))
    assert state_hash(apply_scheme(b, scheme)) == ha
    assert state_hash(apply_scheme(b, scheme)) == ha  # re-applying is idempotent
    assert state_hash(apply_scheme(b, scheme.with_seed(6))) != ha
    fresh = snapshot(a)
    apply_scheme(a, scheme.with_seed(6))
    assert all(not torch.equal(fresh[k], v) for k, v in snapshot(a).items()
               if v.dtype.is_floating_point and k.endswith("weight") and "bn" not in k
               and "ln" not in k)


def test_identical_in_a_fresh_process(tmp_path):
    model = build()
    paths, hashes = [], []
    for i, family in enumerate(["kaiming_uniform", "pytorch_default", "orthogonal"]):
        scheme = uniform_scheme(model, family, seed=11)
        path = tmp_path / f"s{i}.json"
        scheme.to_json(path)
        paths.append(str(path))
        hashes.append(state_hash(apply_scheme(build(), scheme)))
    out = subprocess.run([sys.executable, "-c", CHILD_SRC, *paths], capture_output=True,
                         text=True, timeout=180, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == hashes


def test_changing_one_group_leaves_the_others():
    model = mlp()
    plan = ModelPlan.of(model)
    base = plan.uniform("kaiming_normal", seed=1)
    rules = {g: r for g, r in base.groups.items()}
    rules["head.linear"] = plan.rule("head.linear", "xavier_uniform")
    a = snapshot(apply_scheme(model, base))
    b = snapshot(apply_scheme(model, plan.scheme(rules, seed=1)))
    assert torch.equal(a["0.weight"], b["0.weight"]) and torch.equal(a["2.weight"], b["2.weight"])
    assert not torch.equal(a["4.weight"], b["4.weight"])


def test_global_rng_untouched_by_apply():
    model = build()
    for family in ("kaiming_normal", "pytorch_default", "orthogonal", "trunc_normal"):
        scheme = uniform_scheme(model, family, seed=2)
        before = torch.get_rng_state()
        apply_scheme(model, scheme)
        assert torch.equal(torch.get_rng_state(), before), family
    before = torch.get_rng_state()
    apply_scheme(model, global_rule(model, GroupRule("kaiming_normal", bias="default")))
    assert torch.equal(torch.get_rng_state(), before)


def test_dtype_is_kept():
    model = mlp().double()
    apply_scheme(model, uniform_scheme(model, "xavier_normal"))
    assert all(p.dtype == torch.float64 for p in model.parameters())
    ref = apply_scheme(mlp(), uniform_scheme(mlp(), "xavier_normal"))
    assert torch.equal(model[0].weight, ref[0].weight.double())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_pytorch_default_draws_the_same_weights_whatever_the_dtype(dtype):
    # reset_parameters in float64 draws other numbers: a float32 search's scheme re-created
    # other weights (and biases under bias="default") on a float64 model
    scheme = uniform_scheme(mlp(), "pytorch_default")
    ref = apply_scheme(mlp(), scheme)
    model = apply_scheme(mlp().to(dtype), scheme)
    assert all(torch.equal(p, r.to(dtype)) for p, r in zip(model.parameters(), ref.parameters(),
                                                           strict=True))


# -------------------------------------------------------------------------------- bias rules


def test_bias_forget_gate_on_lstm():
    lstm = nn.LSTM(3, 5, num_layers=2)
    apply_scheme(lstm, global_rule(lstm, GroupRule("orthogonal", bias="forget_gate",
                                                   bias_value=1.5)))
    expected = torch.zeros(20)
    expected[5:10] = 1.5
    for layer in (0, 1):
        assert torch.equal(getattr(lstm, f"bias_ih_l{layer}").detach(), expected)
        assert torch.equal(getattr(lstm, f"bias_hh_l{layer}").detach(), torch.zeros(20))


def test_bias_forget_gate_on_linear_raises():
    model = mlp()
    with pytest.raises(ConfigError, match="forget_gate"):
        apply_scheme(model, global_rule(model, GroupRule("orthogonal", bias="forget_gate",
                                                         bias_value=1.0)))


@pytest.mark.parametrize(("rule", "value"), [("zeros", 0.0), ("constant", 0.01),
                                             ("constant", -2.0)])
def test_bias_constant_rules(rule, value):
    model = mlp()
    apply_scheme(model, global_rule(model, GroupRule("lecun_normal", bias=rule,
                                                     bias_value=value)))
    for i in (0, 2, 4):
        assert torch.equal(model[i].bias.detach(), torch.full_like(model[i].bias, value))


def test_bias_normal():
    model = nn.Linear(4, 4000)
    apply_scheme(model, global_rule(model, GroupRule("zeros", bias="normal", bias_value=0.002)))
    assert model.bias.std().item() == pytest.approx(0.002, rel=0.05)
    assert abs(model.bias.mean().item()) < 2e-4


def test_bias_default_is_the_modules_own():
    model = nn.Sequential(nn.Linear(9, 30))
    ref = snapshot(apply_scheme(model, global_rule(model, GroupRule("pytorch_default",
                                                                    bias="default"), seed=8)))
    got = snapshot(apply_scheme(model, global_rule(model, GroupRule("kaiming_normal",
                                                                    bias="default"), seed=8)))
    assert torch.equal(got["0.bias"], ref["0.bias"])
    assert not torch.equal(got["0.weight"], ref["0.weight"])
    assert 0 < got["0.bias"].abs().max() <= 1 / 3


def test_family_that_does_not_fit_and_unknown_member():
    model = mlp()
    with pytest.raises(SchemeError, match="'constant' cannot initialize '0.weight'"):
        apply_scheme(model, global_rule(model, GroupRule("constant")))
    scheme = global_rule(model, GroupRule("zeros"))
    bad = InitScheme({"g": GroupRule("zeros", members=("nope",))}, parameters=scheme.parameters)
    with pytest.raises(SchemeError, match="'nope'"):
        apply_scheme(model, bad)


# ----------------------------------------------------------------------- model matching


def test_a_path_or_dict_for_the_scheme_is_one_line_naming_load_scheme(tmp_path):
    path = tmp_path / "scheme.json"
    uniform_scheme(mlp(), "kaiming_normal").to_json(path)
    for wrong in (str(path), path, json.loads(path.read_text())):
        with pytest.raises(SchemeError, match=r"^scheme must be an InitScheme "
                                              r"\(autoinit.load_scheme\(path_or_run\) reads one\), "
                                              rf"got {type(wrong).__name__}"):
            apply_scheme(mlp(), wrong)


def test_mismatched_model_lists_every_difference():
    made_for = nn.Sequential(OrderedDict(a=nn.Linear(4, 8), b=nn.Linear(8, 2),
                                         d=nn.Linear(2, 5)))
    other = nn.Sequential(OrderedDict(a=nn.Linear(4, 8), b=nn.Linear(8, 3),
                                      c=nn.Linear(3, 1)))
    scheme = uniform_scheme(made_for, "kaiming_normal")
    before = snapshot(other)
    with pytest.raises(SchemeError) as info:
        apply_scheme(other, scheme)
    msg = str(info.value)
    assert "missing from the model (2): d.weight, d.bias" in msg
    assert "not in the scheme (2): c.weight, c.bias" in msg
    assert "shape mismatch (2)" in msg and "b.weight: model (3, 8), scheme (2, 8)" in msg
    assert "b.bias" in msg
    assert all(torch.equal(before[k], v) for k, v in snapshot(other).items())  # nothing written


# --------------------------------------------------------------- tied, frozen, selections


class LM(nn.Module):
    def __init__(self, tie: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(300, 8)
        self.body = nn.Linear(8, 8)
        self.out = nn.Linear(8, 300, bias=False)
        if tie:
            self.out.weight = self.emb.weight

    def forward(self, x):
        return self.out(torch.relu(self.body(self.emb(x))))


def test_tied_weights_initialized_once_and_still_tied():
    tied = LM(tie=True)
    scheme = uniform_scheme(tied, "kaiming_normal", seed=3)
    assert "out.weight" not in scheme.parameters
    members = [m for r in scheme.groups.values() for m in r.members]
    assert members.count("emb.weight") == 1 and "out.weight" not in members
    apply_scheme(tied, scheme)
    assert tied.out.weight is tied.emb.weight
    assert tied.emb.weight.data_ptr() == tied.out.weight.data_ptr()
    # initialized as the embedding (fan_in 1: std 1), not as the 8-input head (std 1/sqrt 8)
    assert tied.emb.weight.std().item() == pytest.approx(1.0, rel=0.1)
    untied = LM(tie=False)
    apply_scheme(untied, uniform_scheme(untied, "kaiming_normal", seed=3))
    assert torch.equal(tied.emb.weight, untied.emb.weight)


def test_frozen_parameters_left_alone():
    model = mlp()
    model[0].requires_grad_(False)
    before = snapshot(model)
    plan = ModelPlan.of(model)
    assert not any(lay.name.startswith("0.") for lay in plan.layers)
    apply_scheme(model, plan.uniform("orthogonal"))
    after = snapshot(model)
    assert torch.equal(after["0.weight"], before["0.weight"])
    assert torch.equal(after["0.bias"], before["0.bias"])
    assert not torch.equal(after["2.weight"], before["2.weight"])
    assert not torch.equal(after["4.weight"], before["4.weight"])
    # include_frozen=True takes them in, and they stay frozen
    apply_scheme(model, ModelPlan.of(model, include_frozen=True).uniform("orthogonal"))
    assert not torch.equal(model[0].weight, before["0.weight"])
    assert not model[0].weight.requires_grad


@pytest.mark.parametrize(("kw", "changed"), [
    ({"only": r"^2\."}, {"2.weight", "2.bias"}),
    ({"only": [r"^0\.weight$", r"^4\."]}, {"0.weight", "4.weight", "4.bias"}),
    ({"exclude": r"^0\."}, {"2.weight", "2.bias", "4.weight", "4.bias"}),
    ({"only": r"weight$", "exclude": r"^2\."}, {"0.weight", "4.weight"}),
])
def test_only_and_exclude(kw, changed):
    model = mlp()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.5)
    apply_scheme(model, ModelPlan.of(model, **kw).uniform("xavier_normal"))
    moved = {k for k, v in model.state_dict().items() if not torch.all(v == 0.5)}
    assert moved == changed


def test_nothing_to_initialize():
    model = mlp().requires_grad_(False)
    with pytest.raises(ConfigError, match="no parameter to initialize"):
        ModelPlan.of(model)
    with pytest.raises(ConfigError, match="no parameter"):
        ModelPlan.of(mlp(), only="nothing-matches")


def test_lazy_module_not_materialized():
    lazy = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="run one batch"):
        uniform_scheme(lazy, "kaiming_normal")
    with pytest.raises(ConfigError, match="run one batch"):
        ModelPlan.of(lazy)
    ready = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    scheme = uniform_scheme(ready, "kaiming_normal")
    with pytest.raises(ConfigError, match="run one batch"):
        apply_scheme(lazy, scheme)
    lazy(torch.zeros(2, 3))
    apply_scheme(lazy, scheme)
    assert torch.equal(lazy[0].weight, apply_scheme(ready, scheme)[0].weight)


def test_batchnorm_running_stats_reset():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.fill_(3.0)
        bn.running_var.fill_(5.0)
        bn.num_batches_tracked.fill_(7)
        bn.weight.fill_(2.0)
        bn.bias.fill_(2.0)
    apply_scheme(model, uniform_scheme(model, "kaiming_normal"))
    assert torch.equal(bn.running_mean, torch.zeros(4))
    assert torch.equal(bn.running_var, torch.ones(4))
    assert bn.num_batches_tracked.item() == 0
    assert torch.equal(bn.weight.detach(), torch.ones(4))  # pytorch_default for the norm group
    assert torch.equal(bn.bias.detach(), torch.zeros(4))


def test_empty_parameter_warns_and_does_not_crash():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about zero-element tensors at construction
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 0))
    for family in ("kaiming_normal", "orthogonal", "pytorch_default"):
        scheme = uniform_scheme(model, family, seed=1)
        with pytest.warns(UserWarning, match="is empty") as record:
            apply_scheme(model, scheme)
        text = " ".join(str(w.message) for w in record)
        assert "'2.weight' is empty" in text and "'2.bias' is empty" in text
        first = model[0].weight.detach().clone()
        with pytest.warns(UserWarning, match="empty"):
            apply_scheme(model, scheme)
        assert torch.equal(model[0].weight, first)  # the rest is initialized as usual
        assert model[2].weight.shape == (0, 8)


# --------------------------------------------------------------------------------- plans


def test_plan_scheme_and_rule_defaults():
    model = mlp()
    plan = ModelPlan.of(model)
    with pytest.raises(ConfigError, match="unknown groups"):
        plan.scheme({"nope": GroupRule("zeros")})
    with pytest.raises(ConfigError, match="unknown family"):
        plan.uniform("magic")
    r = plan.rule("input.linear", "small_normal")
    assert (r.bias, r.bias_value, r.nonlinearity) == ("normal", 0.001, "relu")
    assert plan.rule("head.linear", "pytorch_default").bias == "default"
    s = plan.uniform("kaiming_normal", scale=0.5, seed=9)
    assert s.seed == 9 and all(r.scale == 0.5 for r in s.groups.values())
    assert s.model_class == "Sequential" and s.parameters["0.weight"] == (8, 4)
    assert InitScheme.from_json(s.to_json()) == s


# ------------------------------------------------------------ multiplier and depth factor

def _residual_net() -> nn.Module:
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(6, 6), nn.Linear(6, 6)

        def forward(self, x):
            return x + self.fc2(torch.relu(self.fc1(x)))

    return nn.Sequential(nn.Linear(3, 6), Block(), Block(), Block(), nn.Linear(6, 2))


def test_multiplier_zero_gives_exact_zeros_and_depth_exponent_scales_by_l_to_alpha():
    net = _residual_net()
    plan = ModelPlan.of(net)
    assert plan.depth == 3
    plain = plan.uniform("kaiming_normal")
    rules = dict(plain.groups)
    rules["residual_out.linear"] = replace(rules["residual_out.linear"], multiplier=0.0)
    rules["hidden.linear"] = replace(rules["hidden.linear"], depth_exponent=-0.5)
    scheme = plan.scheme(rules)
    out, ref = apply_scheme(copy.deepcopy(net), scheme), apply_scheme(copy.deepcopy(net), plain)
    for i in (1, 2, 3):
        w = out[i].fc2.weight
        assert torch.equal(w, torch.zeros_like(w)) and not torch.signbit(w).any()
        assert torch.equal(out[i].fc1.weight, ref[i].fc1.weight * 3 ** -0.5)
        assert torch.equal(out[i].fc1.bias, ref[i].fc1.bias)  # biases keep their rule
    assert torch.equal(out[0].weight, ref[0].weight)


def test_multiplier_and_depth_replay_bit_for_bit_from_json(tmp_path):
    net = _residual_net()
    plan = ModelPlan.of(net)
    rules = {g: replace(r, multiplier=0.3) if g == "residual_out.linear" else
             replace(r, depth_exponent=-0.25) if g == "hidden.linear" else r
             for g, r in plan.uniform("orthogonal").groups.items()}
    scheme = plan.scheme(rules, seed=5)
    again = InitScheme.from_json(scheme.to_json(tmp_path / "s.json"))
    assert again == scheme and again.depth == 3
    first, second = apply_scheme(copy.deepcopy(net), scheme), apply_scheme(copy.deepcopy(net), again)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_query_part_scales_the_query_block_and_the_depth_factor_the_value_block():
    mha = nn.MultiheadAttention(4, 2)
    plan = ModelPlan.of(mha)
    group = next(g for g in plan.grouping.groups if "attn_qkv" in g)
    base = plan.scheme({group: plan.rule(group, "xavier_uniform")})
    scaled = plan.scheme({group: plan.rule(group, "xavier_uniform", multiplier=0.0, part="query",
                                           depth_exponent=-0.5)})
    scheme = replace(scaled, depth=4)
    w0 = apply_scheme(copy.deepcopy(mha), base).in_proj_weight
    q, k, v = apply_scheme(copy.deepcopy(mha), scheme).in_proj_weight.chunk(3)
    assert not q.any()
    assert torch.equal(k, w0.chunk(3)[1]) and torch.equal(v, w0.chunk(3)[2] * 0.5)


@pytest.mark.parametrize("family", ["kaiming_normal", "orthogonal", "xavier_uniform", "pytorch_default"])
def test_embedding_padding_row_stays_zero_under_every_family(family):
    net = nn.ModuleDict({"emb": nn.Embedding(10, 4, padding_idx=2),
                         "bag": nn.EmbeddingBag(10, 4, padding_idx=0), "plain": nn.Embedding(10, 4)})
    apply_scheme(net, uniform_scheme(net, family, seed=5))
    assert torch.count_nonzero(net["emb"].weight[2]) == 0
    assert torch.count_nonzero(net["bag"].weight[0]) == 0
    assert torch.count_nonzero(net["emb"].weight[3]) == 4  # the other rows are drawn
    assert torch.count_nonzero(net["plain"].weight[0]) == 4  # no padding_idx: nothing zeroed



def test_weight_norm_weights_are_the_family_draw_and_replay_exactly():
    P = nn.utils.parametrizations

    def build():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return nn.Sequential(P.weight_norm(nn.Linear(256, 256)), nn.ReLU(),
                                 P.weight_norm(nn.Conv2d(3, 8, 3), dim=0),
                                 P.orthogonal(nn.Linear(16, 16)))

    net = build()
    orthogonal_before = net[3].weight.detach().clone()
    scheme = uniform_scheme(net, "kaiming_normal", seed=3)
    apply_scheme(net, scheme)
    for layer in (net[0], net[2]):
        torch.testing.assert_close(layer.weight, layer.parametrizations.weight.original1)
    assert net[0].weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    torch.testing.assert_close(net[3].weight, orthogonal_before)
    replayed = apply_scheme(build(), InitScheme.from_json(scheme.to_json()))
    for (name, a), b in zip(net.named_parameters(), replayed.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_a_compiled_model_takes_the_same_scheme_and_weights_as_the_plain_one():
    torch._dynamo.reset()
    plain = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    compiled = torch.compile(copy.deepcopy(plain), backend="eager")
    compiled(torch.zeros(1, 4))  # traced: a scheme must still reach its parameters
    scheme = uniform_scheme(compiled, "orthogonal", seed=3)
    assert scheme == uniform_scheme(plain, "orthogonal", seed=3)
    assert set(scheme.parameters) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert apply_scheme(compiled, scheme) is compiled
    apply_scheme(plain, scheme)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), compiled.parameters(),
                                                 strict=True))


@pytest.mark.parametrize("family", ["orthogonal", "identity"])
def test_identical_on_any_thread_count(family):
    """A QR of 64+ rows rounds differently on more threads; the draw must not."""
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Conv1d(128, 64, 3), nn.ReLU(),
                          nn.Linear(62, 64))
    scheme = uniform_scheme(model, family, seed=5)
    one = snapshot(apply_scheme(model, scheme))
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        four = snapshot(apply_scheme(model, scheme))
        assert torch.get_num_threads() == 4  # the caller's count is restored
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(one[k], four[k]) for k in one)


class _OffsetRMSNorm(nn.RMSNorm):
    """Gemma's norm: the gain is ``1 + weight``, with ``weight`` built as zeros."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.rms_norm(x, self.normalized_shape, None, self.eps) * (1.0 + self.weight)


@pytest.mark.parametrize("family, gain", [("xavier_normal", 1.0), ("orthogonal", 1.0)])
def test_a_norm_whose_gain_is_one_plus_its_weight_gets_the_gain_not_the_weight(family, gain):
    model = nn.Sequential(nn.Linear(4, 8), _OffsetRMSNorm(8), nn.Linear(8, 2))
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    apply_scheme(model, uniform_scheme(model, family))
    assert torch.equal(model[1].weight.detach(), torch.full((8,), gain - 1.0))  # effective gain 1
    h = model[0](x)
    assert torch.allclose(model[1](h), nn.functional.rms_norm(h, (8,), None, model[1].eps))


def test_an_offset_norms_gain_is_drawn_and_scaled_as_a_gain():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), _OffsetRMSNorm(8), nn.Linear(8, 2))
    plan = ModelPlan.of(model)
    [norm] = [g for g, lays in plan.grouping.groups.items() if lays[0].kind == "norm"]
    scheme = plan.uniform("xavier_normal", seed=0)

    def with_norm(**rule: object) -> InitScheme:
        return replace(scheme, groups={**scheme.groups, norm: replace(scheme.groups[norm], **rule)})

    apply_scheme(model, with_norm(family="gamma_normal"))
    assert abs(float(model[1].weight.detach().mean())) < 0.05  # N(1, 0.02) gains: weights about 0
    apply_scheme(model, with_norm(family="pytorch_default", scale=2.0))
    assert torch.equal(model[1].weight.detach(), torch.ones(8))  # a gain of 2: 1 + 1


class _SandwichBlock(nn.Module):
    """A residual branch ending in an offset norm (the gain is ``1 + weight``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.norm = nn.Linear(8, 8), _OffsetRMSNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm(self.fc(x))


def test_the_gain_of_a_branch_ending_offset_norm_takes_the_multiplier_as_a_gain():
    model = nn.Sequential(nn.Linear(4, 8), _SandwichBlock(), _SandwichBlock(), nn.Linear(8, 2))
    plan = ModelPlan.of(model)
    assert plan.depth == 2 and plan.roles("residual_out.norm") == {"residual_out"}
    scheme = plan.uniform("xavier_normal", seed=0)

    def ends(**rule: object) -> InitScheme:
        group = scheme.groups["residual_out.norm"]
        return replace(scheme, groups={**scheme.groups, "residual_out.norm": replace(group, **rule)})

    apply_scheme(model, ends(family="pytorch_default", multiplier=0.0))
    assert torch.equal(model[1].norm.weight.detach(), torch.full((8,), -1.0))  # gain 0
    apply_scheme(model, ends(family="pytorch_default", multiplier=0.5, depth_exponent=-1.0))
    assert torch.equal(model[2].norm.weight.detach(), torch.full((8,), -0.75))  # gain 1/4


class _PreNormBlock(nn.Module):
    """A pre-norm residual branch: its norm opens the branch and does not end it."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.norm(x))


def test_a_group_mixing_weights_and_norms_takes_a_depth_factor_on_its_weights_only():
    from autoinit.space import has_depth

    model = nn.Sequential(nn.Linear(4, 8), _PreNormBlock(), _PreNormBlock(), nn.Linear(8, 2))
    plan = ModelPlan.of(model, {"blocks": r"[12]\.", "rest": r".*"})
    assert plan.roles("blocks") == {"residual_out"} and has_depth(plan, "blocks")
    scheme = plan.uniform("xavier_normal", seed=0)
    rule = replace(scheme.groups["blocks"], depth_exponent=-0.5)
    apply_scheme(model, replace(scheme, groups={**scheme.groups, "blocks": rule}))
    assert torch.equal(model[1].norm.weight.detach(), torch.ones(8))  # a pre-norm's gain: one
    plain = apply_scheme(copy.deepcopy(model), scheme)
    torch.testing.assert_close(model[1].fc.weight, plain[1].fc.weight * 2 ** -0.5)
