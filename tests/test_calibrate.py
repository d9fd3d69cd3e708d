"""lsuv_scheme on models the plain path does not show (the main LSUV test is in test_space.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.batches import make_loss
from autoinit.calibrate import lsuv_scheme


def _deep() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                             nn.Linear(64, 4))


def test_a_compiled_model_already_run_is_calibrated_as_a_fresh_one():
    torch._dynamo.reset()  # what is traced and cached depends on what ran before
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(128, 16, generator=g) * 3, torch.randint(0, 4, (128,), generator=g))
    loss = make_loss(None)
    compiled = torch.compile(_deep(), backend="eager")
    with torch.no_grad():  # its graph is traced, as LSUV runs it, before LSUV adds its hooks
        loss(compiled, batch)
    found = lsuv_scheme(compiled, batch, loss)
    assert any(abs(r.scale - 1) > 0.2 for r in found.groups.values())  # rescaled, not orthogonal
    torch._dynamo.reset()
    assert found == lsuv_scheme(torch.compile(_deep(), backend="eager"), batch, loss)


def _normed() -> nn.Sequential:
    norms = torch.nn.utils.parametrizations
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(norms.weight_norm(nn.Linear(16, 64)), nn.ReLU(),
                             norms.spectral_norm(nn.Linear(64, 64)), nn.ReLU(), nn.Linear(64, 4))


def _output_stds(model: nn.Module, x: torch.Tensor) -> list[float]:
    stds: list[float] = []
    hooks = [model[i].register_forward_hook(lambda m, a, out: stds.append(float(out.std())))
             for i in (0, 2, 4)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return stds


def test_a_weight_norm_layer_is_calibrated_and_a_spectral_norm_one_named_in_one_warning():
    """A parametrized weight stayed at scale 1 (the layer was hooked at its
    ParametrizationList, which outputs the weight, and had no ``weight`` to rescale)."""
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(128, 16, generator=g) * 3, torch.randint(0, 4, (128,), generator=g))
    model = _normed()
    with pytest.warns(UserWarning, match=r"^lsuv cannot calibrate '2': rescaling") as said:
        found = lsuv_scheme(model, batch, make_loss(None))
    assert len([w for w in said if "lsuv" in str(w.message)]) == 1
    weight_norm, spectral, plain = _output_stds(model, batch[0])
    assert abs(weight_norm - 1) < 0.1 and abs(plain - 1) < 0.1
    assert found.groups["0.parametrizations.weight"].scale != 1
    assert found.groups["2.parametrizations.weight"].scale == 1 and abs(spectral - 1) > 0.1
    # the scheme re-creates the calibrated weights: weight norm's magnitude follows the scale
    again = apply_scheme(_normed(), found)
    assert torch.allclose(again[0].weight, model[0].weight, atol=1e-6)
    assert torch.allclose(again[4].weight, model[4].weight, atol=1e-6)


def test_a_model_that_is_one_layer_is_calibrated():
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(64, 8, generator=g) * 5, torch.randint(0, 4, (64,), generator=g))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(8, 4)
    found = lsuv_scheme(model, batch, make_loss(None))
    assert found.groups["<model>"].scale < 0.5
    with torch.no_grad():
        assert abs(float(model(batch[0]).std()) - 1) < 0.1
