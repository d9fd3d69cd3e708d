"""transfer_scheme: role groups map onto a wider, deeper model; fan and depth follow the target;
groups without counterpart and layer groups are refused; the same scheme gives the same weights."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from autoinit import SchemeError, apply_scheme, uniform_scheme
from autoinit.plan import ModelPlan
from autoinit.tasks.mlp import residual_mlp
from autoinit.transfer import transfer_scheme


@pytest.fixture(autouse=True)
def _isolated_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        yield


def searched_on_small(alpha: float = -0.5):
    """A scheme as a search on a narrow, shallow residual MLP would leave it: LeCun with a scale
    on the input, Kaiming times ``L**alpha`` in the branches, zero branch ends."""
    small = residual_mlp(blocks=2, width=16, in_features=8)
    plan = ModelPlan.of(small)
    rules = {
        "input.linear": plan.rule("input.linear", "lecun_normal", scale=1.3),
        "hidden.linear": plan.rule("hidden.linear", "kaiming_normal", depth_exponent=alpha),
        "residual_out.linear": plan.rule("residual_out.linear", "kaiming_normal", multiplier=0.0),
        "head.linear": plan.rule("head.linear", "xavier_normal", scale=0.5),
    }
    return plan.scheme(rules, seed=11)


def test_role_groups_map_and_the_rules_follow_the_targets_fans_and_depth():
    scheme = searched_on_small()
    big = residual_mlp(blocks=6, width=96, in_features=8)
    moved = transfer_scheme(scheme, big)
    assert scheme.depth == 2 and moved.scheme.depth == 6 == ModelPlan.of(big).depth
    assert [(g.group, g.source_parameters, g.target_parameters) for g in moved.groups] == [
        ("input.linear", 2, 2), ("hidden.linear", 4, 12), ("residual_out.linear", 4, 12),
        ("head.linear", 2, 2)]
    assert moved.grouping == "role" and "depth 2 -> 6" in moved.describe()
    apply_scheme(big, moved.scheme)
    relu = math.sqrt(2)
    for block in big.blocks:
        # Kaiming for the ReLU after it, fan-in 96, times 6 ** -0.5 (the target's depth)
        want = relu / math.sqrt(96) * 6 ** -0.5
        assert block["fc1"].weight.std().item() == pytest.approx(want, rel=0.06)
        assert torch.count_nonzero(block["fc2"].weight) == 0
    # LeCun (gain 1) times 1.3 on fan-in 8; Xavier times 0.5 on fans 96 and 10
    assert big.input.weight.std().item() == pytest.approx(1.3 / math.sqrt(8), rel=0.1)
    assert big.head.weight.std().item() == pytest.approx(0.5 * math.sqrt(2 / 106), rel=0.1)


def test_the_same_scheme_and_model_give_the_same_weights_whatever_the_global_rng():
    scheme = searched_on_small()
    big = residual_mlp(blocks=4, width=32, in_features=8)
    first = apply_scheme(copy.deepcopy(big), transfer_scheme(scheme, big).scheme)
    torch.manual_seed(12345)
    torch.rand(100)
    second = apply_scheme(copy.deepcopy(big), transfer_scheme(scheme, big).scheme)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = apply_scheme(copy.deepcopy(big), transfer_scheme(scheme.with_seed(12), big).scheme)
    assert not torch.equal(other.blocks[0]["fc1"].weight, first.blocks[0]["fc1"].weight)


def mlp(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_groups_without_counterpart_are_refused_each_way_in_one_line():
    deep = uniform_scheme(mlp(4, 8, 8, 2), "orthogonal")  # input, hidden, head
    with pytest.raises(SchemeError, match=r"^scheme groups \['hidden.linear'\] have no "
                                          r"counterpart in Sequential, whose groups are"):
        transfer_scheme(deep, mlp(4, 16, 2))
    shallow = uniform_scheme(mlp(4, 8, 2), "orthogonal")
    with pytest.raises(SchemeError) as err:
        transfer_scheme(shallow, mlp(4, 16, 16, 2))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("groups ['hidden.linear'] of Sequential have no counterpart "
                                     "in the scheme; leave their parameters out (exclude=...)")


def test_target_groups_left_out_with_exclude_keep_their_values():
    shallow = uniform_scheme(mlp(4, 8, 2), "orthogonal", seed=3)
    target = mlp(4, 16, 16, 2)  # its hidden layer is "2"
    before = target[2].weight.detach().clone()
    moved = transfer_scheme(shallow, target, exclude=r"^2\.")
    apply_scheme(target, moved.scheme)
    assert torch.equal(target[2].weight, before)
    assert not torch.equal(target[0].weight, mlp(4, 16, 16, 2)[0].weight)
    assert moved.scheme.seed == 3


def test_layer_groups_cannot_transfer_across_depths():
    per_layer = uniform_scheme(mlp(4, 8, 8, 2), "orthogonal", groups="layer")
    with pytest.raises(SchemeError, match="cannot transfer to a model of another depth"):
        transfer_scheme(per_layer, mlp(4, 8, 8, 8, 2))
    role = uniform_scheme(mlp(4, 8, 8, 2), "orthogonal")
    with pytest.raises(SchemeError, match="groups='layer'"):
        transfer_scheme(role, mlp(4, 8, 8, 8, 2), groups="layer")


def test_global_and_pattern_groups_transfer_when_named():
    glob = uniform_scheme(mlp(4, 8, 8, 2), "kaiming_normal", groups="global")
    assert transfer_scheme(glob, mlp(4, 32, 32, 32, 2)).grouping == "global"
    patterns = {"first": r"^0\.", "rest": r"^[1-9]"}
    made = ModelPlan.of(mlp(4, 8, 8, 2), patterns).uniform("xavier_normal")
    with pytest.raises(SchemeError, match=r"neither role nor global groups; pass groups="):
        transfer_scheme(made, mlp(4, 32, 32, 2))
    moved = transfer_scheme(made, mlp(4, 32, 32, 2), groups=patterns)
    assert moved.grouping == "patterns" and {g.group for g in moved.groups} == {"first", "rest"}


def test_a_depth_factor_needs_residual_branches_in_the_target():
    everything = {"all": "."}
    plan = ModelPlan.of(residual_mlp(blocks=2, width=16, in_features=8), everything)
    scheme = plan.scheme({"all": plan.rule("all", "kaiming_normal", depth_exponent=-0.5)})
    with pytest.raises(SchemeError, match=r"depth exponent -0.5 but Sequential has no residual "
                                          r"branch \(depth L = 0\)"):
        transfer_scheme(scheme, mlp(8, 16, 16, 10), groups=everything)
