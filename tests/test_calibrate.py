"""lsuv_scheme on models the plain path does not show (the main LSUV test is in test_space.py)."""

from __future__ import annotations

import torch
from torch import nn

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
