"""diagnose: per-layer records and the flags for vanishing, exploding, dead and symmetric nets."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from autoinit.diagnose import diagnose
from autoinit.errors import ConfigError

G = torch.Generator().manual_seed(0)
X = torch.randn(128, 32, generator=G)
Y = torch.randint(0, 4, (128,), generator=G)


def _net(act: type[nn.Module], depth: int = 12, width: int = 32) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 4))


def _fill(net: nn.Module, std: float, bias: float = 0.0) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight"):
                p.normal_(0, std, generator=g)
            else:
                p.fill_(bias)
    return net


def test_deep_tanh_with_tiny_weights_vanishes():
    d = diagnose(_fill(_net(nn.Tanh), 0.01), (X, Y))
    assert "vanishing_activation" in d.flags and "vanishing_gradient" in d.flags
    stds = [r.act_std for r in d.records]
    assert stds[-2] < stds[0] * 1e-3


def test_large_weights_explode_and_saturate():
    relu = diagnose(_fill(_net(nn.ReLU, depth=16), 1.0), (X, Y))
    assert "exploding_activation" in relu.flags
    tanh = diagnose(_fill(_net(nn.Tanh), 1.0), (X, Y))
    assert "saturated" in tanh.flags
    assert max(r.saturated_fraction for r in tanh.records) > 0.5


def test_constant_init_is_symmetric():
    d = diagnose(_fill(_net(nn.Tanh, depth=3), 0.0, bias=0.1).apply(
        lambda m: nn.init.constant_(m.weight, 0.05) if isinstance(m, nn.Linear) else None), (X, Y))
    assert all(r.symmetric for r in d.records)
    assert "symmetric" in d.flags


def test_healthy_net_has_no_flags_and_dead_units_are_counted():
    net = _net(nn.ReLU, depth=4)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
                m.bias.zero_()
    d = diagnose(net, (X, Y))
    assert d.flags == set()
    with torch.no_grad():
        net[0].bias.fill_(-100.0)  # every unit of the first layer is dead
    dead = diagnose(net, (X, Y))
    assert dead.records[0].dead_fraction == 1.0 and "dead_relu" in dead.flags


def test_records_table_dict_and_no_side_effects():
    net = _net(nn.ReLU, depth=2)
    before = [p.clone() for p in net.parameters()]
    d = diagnose(net, (X, Y))
    assert [r.name for r in d.records] == ["0", "2", "4"]
    assert [r.role for r in d.records] == ["input", "hidden", "head"]
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    table = d.table()
    assert table.splitlines()[0].startswith("layer") and len(table.splitlines()) == 5
    as_dict = d.to_dict()
    assert as_dict["records"][0]["name"] == "0" and isinstance(as_dict["loss"], float)


def test_norm_and_conv_layers_are_recorded():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 3))
    x = torch.randn(16, 1, 8, 8, generator=G)
    d = diagnose(net, (x, torch.randint(0, 3, (16,), generator=G)))
    assert [r.kind for r in d.records] == ["conv", "norm", "linear"]


def test_unknown_layers_are_listed():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.mat = nn.Parameter(torch.eye(32))

        def forward(self, x):
            return x @ self.mat

    net = nn.Sequential(Scale(), nn.Linear(32, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diagnose(net, (X, Y))
    assert d.unknown == ["0.mat"]
    assert "0.mat" in d.table() and d.to_dict()["unknown"] == ["0.mat"]



def test_a_compiled_model_already_run_is_measured_like_the_plain_one():
    torch._dynamo.reset()  # what is traced and cached depends on what ran before
    net = _fill(_net(nn.Tanh, depth=3), 0.2)
    compiled = torch.compile(net, backend="eager")
    nn.functional.cross_entropy(compiled(X), Y).backward()  # traced before diagnose's hooks
    records = diagnose(compiled, (X, Y)).records
    assert [r.name for r in records] == [str(i) for i in (0, 2, 4, 6)]  # named without the wrapper
    assert [r.act_std for r in records] == [r.act_std for r in diagnose(net, (X, Y)).records]


def test_a_weight_normed_layer_is_measured_at_its_output_not_its_weight():
    P = nn.utils.parametrizations
    plain = _fill(_net(nn.Tanh, depth=3), 0.3)
    normed = _net(nn.Tanh, depth=3)
    normed.load_state_dict(plain.state_dict())
    for i in (0, 2, 4):
        P.weight_norm(normed[i])  # the same weights, as direction and norm
    got, want = diagnose(normed, (X, Y)).records, diagnose(plain, (X, Y)).records
    assert [r.name for r in got] == [r.name for r in want] == ["0", "2", "4", "6"]
    for a, b in zip(got, want, strict=True):
        assert a.act_std == pytest.approx(b.act_std, rel=1e-4)
        assert a.grad_rms > 0


def test_a_lazy_model_gets_its_shapes_from_the_batch_and_is_measured_like_the_eager_one():
    """A model of lazy modules stopped diagnose with "run one batch through the model first";
    the search shapes it on the first batch, and so does diagnose now (the RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        lazy = nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(4))
        before = torch.random.get_rng_state()
        d = diagnose(lazy, (X, Y))
        assert torch.equal(torch.random.get_rng_state(), before)
    assert [p.shape for p in lazy.parameters()] == [(16, 32), (16,), (4, 16), (4,)]
    eager_net = nn.Sequential(nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))
    eager_net.load_state_dict(lazy.state_dict())
    e = diagnose(eager_net, (X, Y))
    assert [r.name for r in d.records] == [r.name for r in e.records] == ["0", "2"]
    assert [r.act_std for r in d.records] == [r.act_std for r in e.records]
    assert d.loss == e.loss


def test_one_hot_float_labels_are_measured_under_the_cross_entropy_a_search_takes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=g)
    y = nn.functional.one_hot(torch.randint(0, 3, (16,), generator=g), 3).float()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    expected = float(nn.functional.cross_entropy(model(x), y))
    assert diagnose(model, (x, y)).loss == pytest.approx(expected)


def test_a_complex_parameters_gradient_counts_with_its_imaginary_part():
    class Phase(nn.Module):  # an S4D-like layer: a real weight beside a complex parameter
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 32, generator=torch.Generator().manual_seed(2)))
            self.phase = nn.Parameter(torch.ones(4, dtype=torch.cfloat))

        def forward(self, x):
            return x @ self.weight.t() + self.phase.imag  # the gradient is imaginary

    net = nn.Sequential(Phase())
    nn.functional.cross_entropy(net(X), Y).backward()
    want = (sum(float(p.grad.abs().pow(2).sum()) for p in net.parameters()) / 132) ** 0.5
    net.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'casting complex values to real'
        warnings.filterwarnings("ignore", "parameter '0.phase' is complex")
        warnings.filterwarnings("ignore", "no layer rule")
        got = diagnose(net, (X, Y)).records
    assert [r.name for r in got] == ["0"] and got[0].grad_rms == pytest.approx(want, rel=1e-5)


def test_a_batch_of_nan_or_of_ignored_labels_only_is_refused_as_a_search_refuses_it():
    """Both gave a NaN loss and NaN gradients, measured as if they were the model's."""
    net = nn.Sequential(nn.Linear(4, 3))
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match=r"^every target of the 1 batches read from diagnose's "
                                          r"batches is negative"):
        diagnose(net, (x, torch.full((8,), -100)))
    with pytest.raises(ConfigError, match=r"is -1 \(the criterion's ignore_index\)"):
        diagnose(net, (x, torch.full((8,), -1)), nn.CrossEntropyLoss(ignore_index=-1))
    x[2, 1] = float("nan")
    with pytest.raises(ConfigError, match=r"holds NaN or infinite values in \[0\] \(1 of 32\)$"):
        diagnose(net, (x, torch.zeros(8, dtype=torch.long)))
