"""check_loss: bad input fails before any candidate trains, in one line naming the batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autoinit.errors import ConfigError
from autoinit.probe import ProbeData
from autoinit.search_input import check_loss

G = torch.Generator().manual_seed(0)


def _batches(*sizes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(n, 4, generator=G), torch.randint(0, 2, (n,), generator=G)) for n in sizes]


def _bn_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_a_short_last_batch_that_breaks_the_model_is_named_with_the_way_out():
    data = ProbeData(_batches(16, 16, 1, 16), _batches(16))
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on a batch of 1 "
                                          r"examples \(the first has 16\): ValueError: .*"
                                          r"drop_last=True\) leaves out a short last batch$"):
        check_loss(_bn_net(), data)


def test_batches_of_several_sizes_that_compute_pass_and_the_first_keeps_its_wording():
    check_loss(_bn_net(), ProbeData(_batches(16, 16, 5), _batches(1)))
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on the first batch: "
                                          r"ValueError"):
        check_loss(_bn_net(), ProbeData(_batches(1, 16), _batches(16)))
