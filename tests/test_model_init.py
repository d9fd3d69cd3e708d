"""model_default: the model's own init, found, drawn reproducibly, searched only where it exists."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autoinit import apply_scheme
from autoinit.errors import ConfigError
from autoinit.model_init import model_default_values, model_init_of, register_model_init
from autoinit.plan import ModelPlan


class OwnInit(nn.Module):
    """A hand-written model whose reset_parameters is its authors' init (orthogonal, bias 0.1)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    def reset_parameters(self):
        for fc in (self.fc1, self.fc2):
            nn.init.orthogonal_(fc.weight)
            nn.init.constant_(fc.bias, 0.1)


def test_a_class_defining_reset_parameters_has_its_own_init():
    assert model_init_of(OwnInit()) is not None
    assert model_init_of(nn.Linear(2, 2)) is None  # torch's own reset is pytorch_default
    assert model_init_of(nn.Sequential(nn.Linear(2, 2))) is None


def test_model_default_applies_the_models_own_init_with_its_biases_and_a_scale():
    model = OwnInit()
    plan = ModelPlan.of(model)
    assert plan.model_init
    apply_scheme(model, plan.uniform("model_default", scale=0.5, seed=2))
    w = model.fc1.weight.detach()
    assert torch.allclose(w @ w.T, 0.25 * torch.eye(6), atol=1e-5)
    assert torch.equal(model.fc1.bias.detach(), torch.full((6,), 0.1))


def test_values_are_reproducible_and_leave_model_and_global_rng_alone():
    model = OwnInit()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    a = model_default_values(model, torch.Generator().manual_seed(3))
    b = model_default_values(model, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = model_default_values(copy.deepcopy(model).double(), torch.Generator().manual_seed(3))
    assert all(torch.equal(c[k].double(), a[k].double()) for k in a)  # float64 draws the same
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_registered_init_wins_and_a_model_without_one_is_a_clear_error():
    class Zeroed(nn.Sequential):
        pass

    register_model_init(Zeroed, lambda m: [nn.init.zeros_(p) for p in m.parameters()])
    values = model_default_values(Zeroed(nn.Linear(3, 3)), torch.Generator().manual_seed(0))
    assert all(bool((v == 0).all()) for v in values.values())
    with pytest.raises(ConfigError, match="model_default.*Sequential has none"):
        model_default_values(nn.Sequential(nn.Linear(2, 2)), torch.Generator())


def test_a_wrapper_around_one_model_with_its_own_init_has_that_init():
    class Wrapper(nn.Module):  # a LightningModule around a Hugging Face model, say
        def __init__(self):
            super().__init__()
            self.model = OwnInit()
            self.loss = nn.CrossEntropyLoss()

    values = model_default_values(Wrapper(), torch.Generator().manual_seed(0))
    assert torch.equal(values["model.fc2.bias"], torch.full((2,), 0.1))
    assert model_init_of(nn.Sequential(OwnInit(), nn.Linear(2, 2))) is None  # not all inside


class ApplyInit(nn.Module):
    """The tutorial pattern: ``self.apply(self.init_weights)``, a rule taking one module."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 6), nn.Linear(6, 2)
        self.apply(self.init_weights)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    def init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.eye_(module.weight)
            nn.init.constant_(module.bias, 0.5)


class NeedsStd(OwnInit):
    def reset_parameters(self, std):  # needs an argument autoinit cannot know
        for p in self.parameters():
            nn.init.normal_(p, std=std)


def test_an_init_method_taking_a_module_is_applied_to_every_module_and_one_needing_more_is_none():
    # once called without its module: a TypeError in every search's model_default trial
    values = model_default_values(ApplyInit(), torch.Generator().manual_seed(0))
    assert torch.equal(values["fc2.weight"], torch.eye(2, 6))
    assert torch.equal(values["fc1.bias"], torch.full((6,), 0.5))
    assert model_init_of(NeedsStd()) is None


class StaticApplyInit(ApplyInit):
    @staticmethod
    def init_weights(module):  # no self: its one argument is the module
        if isinstance(module, nn.Linear):
            nn.init.constant_(module.weight, 0.25)


def test_a_static_init_method_taking_a_module_is_applied_to_every_module():
    values = model_default_values(StaticApplyInit(), torch.Generator().manual_seed(0))
    assert torch.equal(values["fc1.weight"], torch.full((6, 6), 0.25))
