"""Identity families through apply_scheme: IDInit's tiled identity and IRNN's recurrent identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinit import InitScheme, SchemeError, apply_scheme
from autoinit.families._idinit import identity_like
from autoinit.plan import ModelPlan


@pytest.fixture(autouse=True)
def _isolated_rng():
    """Module construction draws from the global RNG: seed it here and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


def tiled(rows: int, cols: int) -> torch.Tensor:
    """The expected matrix, written out the slow way: identity blocks along the longer side."""
    out = torch.zeros(rows, cols)
    n = min(rows, cols)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = float(i % n == j % n)
    return out


@pytest.mark.parametrize(("rows", "cols"), [(6, 6), (6, 2), (2, 6), (7, 3), (3, 7), (1, 4)])
def test_identity_like_repeats_identity_blocks(rows, cols):
    w = identity_like(rows, cols)
    assert torch.equal(w, tiled(rows, cols))
    assert (w.sum(0) > 0).all() and (w.sum(1) > 0).all()  # no input or output left unconnected


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv1d(8, 4, 5)
        self.up = nn.ConvTranspose2d(8, 6, 3)
        self.wide = nn.Linear(10, 4)
        self.tall = nn.Linear(4, 12)


def uniform(model, family, scale, groups="layer"):
    return ModelPlan.of(model, groups).uniform(family, scale, seed=3)


def test_idinit_through_apply_is_exact_and_replays():
    model = Net()
    scheme = uniform(model, "idinit", 0.5)
    apply_scheme(model, InitScheme.from_json(scheme.to_json()))
    assert torch.equal(model.wide.weight, 0.5 * tiled(4, 10))
    assert torch.equal(model.tall.weight, 0.5 * tiled(12, 4))
    assert torch.equal(model.conv.weight[:, :, 1, 1], 0.5 * tiled(8, 3))
    assert torch.equal(model.down.weight[:, :, 2], 0.5 * tiled(4, 8))
    # ConvTranspose stores (in, out, k, k): the tiled (out, in) matrix, transposed, at the centre
    assert torch.equal(model.up.weight[:, :, 1, 1], 0.5 * tiled(6, 8).T)
    for conv in (model.conv, model.down, model.up):
        assert torch.count_nonzero(conv.weight) == torch.count_nonzero(tiled(*conv.weight.shape[:2]))
    again = Net()
    apply_scheme(again, scheme)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_idinit_conv_keeps_a_signal_through_a_channel_change():
    """3 -> 8 channels with 'same' padding: every output channel copies input channel c mod 3."""
    model = Net()
    apply_scheme(model, uniform(model, "idinit", 1.0))
    x = torch.randn(2, 3, 5, 5)
    y = model.conv(x) - model.conv.bias[None, :, None, None]
    torch.testing.assert_close(y, x[:, torch.arange(8) % 3])


def test_identity_is_irnn_on_every_recurrent_gate_layout():
    """The ``identity`` family puts I on each square recurrent block: IRNN for ``nn.RNN``."""
    model = nn.ModuleDict({"rnn": nn.RNN(3, 5, nonlinearity="relu"), "lstm": nn.LSTM(5, 5),
                           "gru": nn.GRU(5, 4)})
    plan = ModelPlan.of(model, "role")
    rules = {g: plan.rule(g, "identity" if g.startswith("rnn_hh") else "xavier_uniform",
                          scale=0.9 if g.startswith("rnn_hh") else 1.0, bias="zeros")
             for g in plan.grouping.groups}
    apply_scheme(model, InitScheme.from_json(plan.scheme(rules).to_json()))
    assert torch.equal(model["rnn"].weight_hh_l0, 0.9 * torch.eye(5))
    for name, gates, hidden in (("lstm", 4, 5), ("gru", 3, 4)):
        blocks = model[name].weight_hh_l0.detach().view(gates, hidden, hidden)
        for block in blocks:
            assert torch.equal(block, 0.9 * torch.eye(hidden))
    assert torch.count_nonzero(model["rnn"].bias_hh_l0) == 0


def test_identity_like_families_refuse_embeddings():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    plan = ModelPlan.of(model, "global")
    assert "idinit" not in plan.families_for("global")
    rules = {g: plan.rule(g, "idinit") for g in plan.grouping.groups}
    with pytest.raises(SchemeError, match="family 'idinit' cannot initialize '0.weight' "
                                          r"\(weight of a embedding layer\)"):
        apply_scheme(model, plan.scheme(rules))
