"""Mimetic attention through apply_scheme: W_qᵀW_k ≈ αI, W_oW_v ≈ −βI, replay and refusals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinit import ConfigError, InitScheme, SchemeError, apply_scheme
from autoinit.families import Fans, get_family
from autoinit.families._mimetic import dct_matrix
from autoinit.plan import ModelPlan
from autoinit.presets import preset_names
from autoinit.space import SearchSpace

D, HEADS = 32, 4


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Module construction draws from the global RNG: seed it here and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


class Attention(nn.Module):
    def __init__(self, d: int = D, heads: int = HEADS, **kw) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True, **kw)
        self.head = nn.Linear(d, 2)

    def forward(self, x):
        return self.head(self.attn(x, x, x, need_weights=False)[0])


def mimetic_scheme(model, seed=0, **options):
    plan = ModelPlan.of(model)
    out_options = {k: v for k, v in options.items() if k in ("beta", "noise")}
    rules = {"attn_qkv.mha": plan.rule("attn_qkv.mha", "mimetic", options=options),
             "attn_out.linear": plan.rule("attn_out.linear", "mimetic_out", options=out_options),
             "head.linear": plan.rule("head.linear", "xavier_uniform")}
    return plan.scheme(rules, seed)


def projections(model):
    q, k, v = model.attn.in_proj_weight.detach().double().chunk(3)
    return q, k, v, model.attn.out_proj.weight.detach().double()


def cosine_with_eye(m: torch.Tensor) -> float:
    return float(torch.trace(m) / (m.norm() * m.shape[0] ** 0.5))


def test_dct_matrix_is_orthogonal():
    c = dct_matrix(7)
    torch.testing.assert_close(c @ c.T, torch.eye(7, dtype=torch.float64))


def test_one_head_qk_product_is_exactly_alpha_identity_plus_noise():
    model = Attention(heads=1)
    apply_scheme(model, mimetic_scheme(model, alpha=0.7, noise=0.0, heads=1.0))
    q, k, _, _ = projections(model)
    torch.testing.assert_close(q.T @ k, 0.7 * torch.eye(D, dtype=torch.float64), atol=1e-5, rtol=0)


def test_qk_and_vo_products_look_like_trained_attention():
    model = Attention()
    apply_scheme(model, mimetic_scheme(model, seed=4, alpha=0.7, beta=0.4, heads=float(HEADS)))
    q, k, v, o = projections(model)
    assert cosine_with_eye(q.T @ k) > 0.4  # a random init sits near 0 (see the control below)
    width = D // HEADS
    for h in range(HEADS):  # every head attends to similar tokens
        rows = slice(h * width, (h + 1) * width)
        assert torch.trace(q[rows].T @ k[rows]) > 0.3 * width
    vo = o @ v
    assert cosine_with_eye(vo) < -0.4
    assert torch.diagonal(vo).mean().item() == pytest.approx(-0.4, abs=0.08)
    # noise as in the paper: beta * Z with Z ~ N(0, 1/d) off the diagonal
    off = vo - torch.diag(torch.diagonal(vo))
    assert off.std().item() == pytest.approx(0.4 / D**0.5, rel=0.25)


def test_a_default_init_has_no_such_structure():
    q, k, v, o = projections(Attention())
    assert abs(cosine_with_eye(q.T @ k)) < 0.2 and abs(cosine_with_eye(o @ v)) < 0.2


def test_mimetic_replays_bit_for_bit_and_follows_the_seed():
    model = Attention()
    scheme = mimetic_scheme(model, seed=9, heads=2.0, beta=0.3)
    apply_scheme(model, scheme)
    again = Attention()
    apply_scheme(again, InitScheme.from_json(scheme.to_json()))
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = apply_scheme(Attention(), scheme.with_seed(10))
    assert not torch.equal(other.attn.in_proj_weight, model.attn.in_proj_weight)


def test_q_and_k_blocks_draw_the_same_matrix_in_a_shared_generator():
    g = torch.Generator().manual_seed(0)
    blocks = [get_family("mimetic").sampler(Fans((8, 8), 8, 8, block=b, blocks=3), scale=1.0,
                                            generator=g, noise=0.5) for b in range(3)]
    torch.testing.assert_close(blocks[0].double().T @ blocks[1].double(), _qk(8, 0.5),
                               atol=1e-5, rtol=0)


def _qk(d, noise):
    g = torch.Generator().manual_seed(0)
    z = torch.empty(d, d).normal_(0.0, d**-0.5, generator=g).double()
    return 0.7 * (torch.eye(d, dtype=torch.float64) + noise * z)


def test_mimetic_is_refused_outside_a_packed_attention_projection():
    model = Attention()
    plan = ModelPlan.of(model)
    assert "mimetic" not in plan.families_for("head.linear")
    assert "mimetic_out" not in plan.families_for("head.linear")
    rules = {g: plan.rule(g, "mimetic") for g in plan.grouping.groups}
    with pytest.raises(SchemeError, match="family 'mimetic' cannot initialize "
                                          r"'attn.out_proj.weight' \(weight of a linear layer\)"):
        apply_scheme(model, plan.scheme(rules))


def test_mimetic_needs_q_and_k_in_one_parameter():
    model = Attention(kdim=8, vdim=8)  # separate q_proj_weight, k_proj_weight, v_proj_weight
    plan = ModelPlan.of(model)
    # neither searched nor queued as a preset there: it would fail every trial that drew it
    assert "mimetic" not in plan.families_for("attn_qkv.mha")
    assert "mimetic" not in preset_names(plan, SearchSpace())
    assert "mimetic" in preset_names(ModelPlan.of(Attention()), SearchSpace())
    rules = {g: plan.rule(g, "mimetic" if g == "attn_qkv.mha" else "xavier_uniform")
             for g in plan.grouping.groups}
    with pytest.raises(ConfigError, match=r"packed \(q, k, v\) in_proj_weight of 3 blocks, got 1"):
        apply_scheme(model, plan.scheme(rules))


@pytest.mark.parametrize("heads", [3.0, 0.0, 1.5])
def test_mimetic_heads_must_divide_the_width(heads):
    model = Attention()
    with pytest.raises(ConfigError, match=f"'heads' must be a whole number dividing the width "
                                          f"{D}, got {heads!r}"):
        apply_scheme(model, mimetic_scheme(model, heads=heads))


@pytest.mark.parametrize(("family", "options"), [
    ("mimetic", {"alpha": "big"}), ("mimetic", {"beta": -0.4}), ("mimetic", {"heads": "4"}),
    ("mimetic_out", {"noise": float("nan")}), ("mimetic_out", {"beta": True}),
])
def test_mimetic_options_must_be_non_negative_numbers(family, options):
    (name, value), = options.items()
    fans = Fans((8, 8), 8, 8, block=0, blocks=3)
    with pytest.raises(ConfigError, match=f"option '{name}' must be a finite number >= 0, "
                                          f"got {value!r}"):
        get_family(family).sampler(fans, scale=1.0, generator=torch.Generator(), **options)


def test_mimetic_out_needs_a_square_matrix():
    with pytest.raises(ConfigError, match=r"'mimetic_out' needs square \(d, d\) blocks, got shape"):
        get_family("mimetic_out").sampler(Fans((4, 6), 6, 4), scale=1.0,
                                          generator=torch.Generator())
