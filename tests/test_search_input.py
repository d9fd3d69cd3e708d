"""check_loss: bad input fails before any candidate trains, in one line naming the batch."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_sequence

from autoinit.batches import make_loss
from autoinit.errors import ConfigError
from autoinit.probe import ProbeData
from autoinit.search import Selection, run_search
from autoinit.search_input import (
    Unlabelled,
    check_finite,
    check_loss,
    materialize,
    probe_batches,
    unlabelled_by,
)

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


def test_a_later_training_batch_that_breaks_the_model_is_named_before_any_work():
    # a token id out of the embedding's range in one batch only: once the probes' first
    # steps, a deep IndexError traceback
    net = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    batches = [(torch.randint(0, 10, (8, 3), generator=G), torch.randint(0, 2, (8,), generator=G))
               for _ in range(5)]
    batches[3][0][2, 1] = 10
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on batch 3 of "
                                          r"dataloader: IndexError: index out of range"):
        check_loss(net, ProbeData(batches, batches[:1]))
    with pytest.raises(ConfigError, match=r"on batch 3 of dataloader"):  # after the held-out one
        check_loss(net, ProbeData(batches[1:], batches[:1]), places=[1, 2, 3, 4])


class _TakesTheDict(nn.Module):
    """A forward that takes the whole dict batch (not its keys as keywords)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.fc(batch["image"])


def test_a_model_that_takes_the_dict_batch_is_told_in_one_line_to_pass_a_loss():
    x, y = _batches(8)[0]
    data = ProbeData([{"image": x, "extra": x, "labels": y}], [None])
    with pytest.raises(ConfigError) as info:
        check_loss(_TakesTheDict(), data)
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "the loss could not be computed on the first batch: TypeError: ")
    assert "unexpected keyword argument 'image'" in message
    assert message.endswith("pass loss_fn(model, batch) for a model that takes the dict")
    # with a loss that hands it the dict, the same batch computes
    check_loss(_TakesTheDict(), ProbeData(data.train, data.train, loss=lambda m, b: m(b).sum()))


def test_a_many_line_error_is_reported_on_one_line_with_its_first_and_last_lines():
    def loss(model, batch):
        raise TypeError(f"{model}\ngot multiple values for keyword argument 'input_ids'")

    with pytest.raises(ConfigError) as info:
        check_loss(_bn_net(), ProbeData(_batches(4), [None], loss=loss))
    assert str(info.value) == ("the loss could not be computed on the first batch: TypeError: "
                               "Sequential( ... got multiple values for keyword argument "
                               "'input_ids'")


def test_a_dtype_mismatch_between_data_and_model_says_what_to_cast():
    batches = [(x.double(), y) for x, y in _batches(8, 8)]
    with pytest.raises(ConfigError, match=r"^the loss could not .* the batch holds torch.float64 "
                                          r"tensors and the model torch.float32 parameters: cast"):
        check_loss(_bn_net(), ProbeData(batches, batches))


def test_lazy_modules_are_shaped_on_the_first_batch_which_a_generator_still_yields():
    batches = _batches(8, 8, 8)
    lazy = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    loader = materialize(lazy, (b for b in batches), make_loss(None))
    assert [p.shape for p in lazy.parameters()] == [(8, 4), (8,), (2, 8), (2,)]
    assert all(a[0] is b[0] for a, b in zip(loader, batches, strict=True))
    assert lazy.training  # its mode is kept
    plain = nn.Linear(4, 2)
    assert materialize(plain, batches, make_loss(None)) is batches  # nothing to shape


def test_a_weight_created_in_forward_is_one_config_error_naming_it():
    class HandLazy(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = None
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            if self.w is None:
                self.w = nn.Parameter(torch.randn(8, x.shape[-1]))
            return self.head(torch.relu(x @ self.w.t()))

    with pytest.raises(ConfigError, match=r"^model HandLazy created \['w'\] in its forward: run it "
                                          r"once on a batch before the search"):
        run_search(HandLazy(), _batches(8, 8, 8), n_trials=2, probe_steps=2, threads=1)


def test_nan_in_a_dataclass_batch_is_found():
    @dataclasses.dataclass
    class Record:
        x: torch.Tensor
        y: torch.Tensor

    with pytest.raises(ConfigError, match=r"^batch 1 of dataloader holds NaN or infinite values "
                                          r"in \['x'\] \(1 of 2\)$"):
        check_finite([Record(torch.zeros(2), torch.zeros(2)),
                      Record(torch.tensor([0.0, float("nan")]), torch.zeros(2))], "dataloader")


def test_a_non_finite_batch_is_named_by_its_place_in_the_loader_before_the_split():
    batches = _batches(4, 4, 4, 4)
    batches[3][0][1, 2] = float("inf")
    with pytest.raises(ConfigError, match=r"^batch 3 of dataloader holds NaN or infinite values "
                                          r"in \[0\] \(1 of 16\)$"):
        probe_batches(batches, None, probe_steps=3, val_batches=1, dev=torch.device("cpu"))
    batches[0][1].fill_(-100)  # left out as unlabelled after the check: the place stays 3
    with pytest.raises(ConfigError, match=r"^batch 3 of dataloader holds"):
        probe_batches(batches, None, 3, 1, torch.device("cpu"), unlabelled=Unlabelled())
    with pytest.raises(ConfigError, match=r"^batch 3 of val_dataloader holds"):
        probe_batches(batches[:1], batches, 1, 4, torch.device("cpu"))


def test_batches_whose_labels_are_all_ignored_are_left_out_of_the_probes():
    batches = _batches(4, 4, 4, 4)
    batches[0] = (batches[0][0], torch.full((4,), -100))  # a padded batch: nothing to score
    train, val, places = probe_batches(batches, None, probe_steps=2, val_batches=1,
                                       dev=torch.device("cpu"), unlabelled=Unlabelled())
    assert [b[1] for b in val] == [batches[1][1]] and [b[1] for b in train] == [batches[2][1]]
    assert places == [2]
    assert probe_batches(batches, None, 2, 1, torch.device("cpu"))[1][0][1] is batches[0][1]
    with pytest.raises(ConfigError, match=r"^every target of the 1 batches read from "
                                          r"val_dataloader is negative"):
        probe_batches(batches, batches[:1], 2, 1, torch.device("cpu"), unlabelled=Unlabelled())


def test_a_search_on_sequence_labels_with_an_all_ignored_batch_completes():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 7, (96, 5), generator=g)
    y = (x % 3).masked_fill(torch.rand(96, 5, generator=g) < 0.3, -100)
    y[:16] = -100  # the first batch, where the held-out batches are split off
    net = nn.Sequential(nn.Embedding(7, 8), nn.ReLU(), nn.Linear(8, 3))
    result = run_search(net, torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=16),
                        n_trials=6, probe_steps=4, threads=1, selection=Selection(seeds=0))
    assert math.isfinite(result.score)


def test_packed_sequences_count_their_sequences_as_the_batch_size():
    class LastState(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.norm = nn.LSTM(2, 4), nn.BatchNorm1d(4)

        def forward(self, packed):
            return self.norm(self.lstm(packed)[1][0][-1])  # one sequence breaks batch norm

    def packed(*lengths: int) -> tuple[PackedSequence, torch.Tensor]:
        return (pack_sequence([torch.randn(n, 2, generator=G) for n in lengths]),
                torch.zeros(len(lengths), 4))

    data = ProbeData([packed(5, 4, 2), packed(3, 3, 1), packed(6)], [packed(2, 2)])
    with pytest.raises(ConfigError, match=r"on a batch of 1 examples \(the first has 3\)"):
        check_loss(LastState(), data)
    nan = (pack_sequence([torch.tensor([[0.0, float("nan")]])]), torch.zeros(1))
    with pytest.raises(ConfigError, match=r"values in \[0\]\.data \(1 of 2\)$"):
        check_finite([nan], "dataloader")


def test_a_held_out_batch_the_loss_cannot_score_fails_before_any_trial_in_one_line():
    bad = _batches(16)
    bad[0][1][3] = 7  # a class the model has no logit for, only in the held-out batches
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on held-out batch 1: "
                                          r"IndexError: Target 7 is out of bounds\.$"):
        check_loss(_bn_net(), ProbeData(_batches(16, 16), _batches(16) + bad))
    net = _bn_net()
    check_loss(net, ProbeData(_batches(16), _batches(1)))  # one example: fine in eval mode
    assert net.training


def test_a_label_the_model_has_no_output_for_in_a_later_batch_is_named_before_any_trial():
    train = _batches(16, 16, 16, 16)
    train[2][1][5] = 2  # a class the model has no logit for, in a later batch of the same size
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on batch 2 of "
                                          r"dataloader: IndexError: Target 2 is out of bounds\.$"):
        check_loss(_bn_net(), ProbeData(train, _batches(16)))
    train[2][1][5], train[3][1][0] = 1, -1  # -1 is no ignore_index (-100 is)
    with pytest.raises(ConfigError, match=r"on batch 3 of dataloader: IndexError: Target -1 is "
                                          r"out of bounds\.; cross-entropy ignores only the label "
                                          r"-100, and this batch holds -1: pass loss_fn=nn\."
                                          r"CrossEntropyLoss\(ignore_index=-1\) if -1 marks no "
                                          r"label$"):
        check_loss(_bn_net(), ProbeData(train, _batches(16)))


def test_a_later_batch_is_named_by_its_place_in_the_loader_after_unlabelled_ones_are_left_out():
    net = nn.Sequential(nn.Linear(4, 2))
    batches = _batches(4, 4, 4, 4, 4)
    batches[1][1].fill_(-100)  # left out: nothing to score
    batches[3][1][0] = 9  # a class the model has no logit for
    read = probe_batches(batches, None, 4, 1, torch.device("cpu"), unlabelled=Unlabelled())
    assert read.places == [2, 3, 4]  # batch 0 held out, batch 1 left out
    with pytest.raises(ConfigError, match=r"on batch 3 of dataloader: IndexError: Target 9"):
        check_loss(net, ProbeData(read.train, read.val), read.places)


def test_the_ignored_targets_are_the_losss_own():
    assert unlabelled_by(None) == Unlabelled() == unlabelled_by("cross_entropy")
    assert unlabelled_by(nn.CrossEntropyLoss(ignore_index=-1)) == Unlabelled(-1)
    assert unlabelled_by(nn.NLLLoss()) == Unlabelled(-100)
    assert unlabelled_by("mse") is unlabelled_by(nn.MSELoss()) is None
    assert unlabelled_by(None, train_step=lambda *a: {}) is None  # hinge's -1 is a label
    assert Unlabelled()(torch.full((3,), -1)) and not Unlabelled(-1)(torch.tensor([-1, -100]))
    assert not Unlabelled()(torch.full((3,), -1.0))  # float targets are no class labels


def test_a_search_on_a_criterion_ignoring_minus_one_leaves_out_a_batch_of_only_minus_ones():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    y[24:32] = -1  # an unlabelled batch, as the user's CrossEntropyLoss(ignore_index=-1) has it
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 64, 8)]
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    result = run_search(net, batches, loss_fn=nn.CrossEntropyLoss(ignore_index=-1), n_trials=3,
                        probe_steps=5, threads=1, selection=Selection(seeds=0))
    assert math.isfinite(result.score)  # the NaN loss of that batch marked every trial diverged
    with pytest.raises(ConfigError, match=r"^every target of the 1 batches read from "
                                          r"val_dataloader is -1 \(the criterion's ignore_index\)"):
        probe_batches(batches, batches[3:4], 2, 1, torch.device("cpu"), Unlabelled(-1))


def test_a_flat_batch_of_ignored_labels_only_is_left_out_too():
    """(x1, x2, target) for a forward(x1, x2): its all -100 target was not read, so kept."""
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g),
                torch.randint(0, 2, (4,), generator=g)) for _ in range(4)]
    batches[2][2].fill_(-100)
    assert Unlabelled().ignores(batches[2]) and not Unlabelled().ignores(batches[1])
    assert probe_batches(batches, None, 3, 1, torch.device("cpu"), Unlabelled()).places == [1, 3]
