"""Whether the probes learned anything: the prior loss, the lengthened round, the reason's note."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from conftest import tiny_mlp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autoinit.evidence import LEARNED_MARGIN, best_loss, learned, nothing_learned, prior_loss
from autoinit.search import Selection, run_search


def _pairs(y: torch.Tensor, size: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(len(part), 2), part) for part in y.split(size)]


# ------------------------------------------------------------------------------- the prior loss

def test_the_cross_entropy_prior_is_the_held_out_loss_of_the_training_frequencies():
    train = _pairs(torch.tensor([0, 0, 0, 1, 1, 2, 0, 0]))  # counts 5, 2, 1 (+1 each: 6, 3, 2)
    val = _pairs(torch.tensor([0, 1]))
    expected = -(math.log(6 / 11) + math.log(3 / 11)) / 2
    assert prior_loss(train, val, None) == pytest.approx(expected)
    assert prior_loss(train, val, "cross_entropy") == pytest.approx(expected)
    flat = [[x, x, y] for x, y in train]  # a TensorDataset(x1, x2, y): the target comes last
    assert prior_loss(flat, [[x, x, y] for x, y in val], None) == pytest.approx(expected)


def test_labels_as_large_as_ids_are_counted_without_an_array_of_every_class():
    train = _pairs(torch.tensor([0, 0, 7, 10**12]))  # smoothed over 10**12 + 1 classes
    val = _pairs(torch.tensor([0, 3]))
    expected = -(math.log(3 / (4 + 10**12 + 1)) + math.log(1 / (4 + 10**12 + 1))) / 2
    assert prior_loss(train, val, None) == pytest.approx(expected)


def test_ignored_targets_do_not_count_and_sequence_targets_are_flattened():
    train = [(torch.zeros(2, 3), torch.tensor([[0, 1, -100], [1, 1, -100]]))]
    val = [(torch.zeros(1, 3), torch.tensor([[1, -100, -100]]))]
    # counts 1, 3 (+1: 2, 4); one held-out target, class 1
    assert prior_loss(train, val, None) == pytest.approx(-math.log(4 / 6))


def test_the_mse_prior_is_the_held_out_error_of_the_training_mean():
    train = [(torch.zeros(2, 1), torch.tensor([[1.0], [3.0]]))]  # mean 2
    val = [(torch.zeros(2, 1), torch.tensor([[0.0], [2.0]]))]
    assert prior_loss(train, val, None) == pytest.approx(2.0)  # (4 + 0) / 2
    assert prior_loss(train, val, "mse") == pytest.approx(2.0)


def test_dict_batches_are_read_by_their_target_key():
    batch = {"x": torch.zeros(4, 2), "labels": torch.tensor([0, 1, 0, 1])}
    assert prior_loss([batch], [batch], None) == pytest.approx(math.log(2))


@pytest.mark.parametrize("loss_fn", [nn.CrossEntropyLoss(), lambda model, batch: batch[1].sum()])
def test_a_loss_of_your_own_has_no_prior(loss_fn):
    batches = _pairs(torch.tensor([0, 1, 0, 1]))
    assert prior_loss(batches, batches, loss_fn) is None


def test_soft_and_one_hot_float_labels_have_the_cross_entropy_prior_of_their_sums():
    train = _pairs(torch.tensor([0, 0, 0, 1, 1, 2, 0, 0]))
    val = _pairs(torch.tensor([0, 1]))
    hot = [(x, nn.functional.one_hot(y, 3).float()) for x, y in train + val]
    # one-hot rows: the frequencies' prior (a search on them takes "cross_entropy")
    assert prior_loss(hot[:2], hot[2:], "cross_entropy") == pytest.approx(
        prior_loss(train, val, None))
    soft = [(torch.zeros(2, 2), torch.tensor([[0.5, 0.5], [1.0, 0.0]]))]  # sums 1.5, 0.5 (+1)
    assert prior_loss(soft, soft, "cross_entropy") == pytest.approx(
        -(0.5 * math.log(2.5 / 4) + 0.5 * math.log(1.5 / 4) + math.log(2.5 / 4)) / 2)
    for loss_fn in (None, "mse"):  # the default loss alone: mean squared error
        assert prior_loss(soft, soft, loss_fn) == pytest.approx(0.0625)  # mean (0.75, 0.25)


def test_float_zero_one_labels_have_the_binary_prior_of_each_columns_frequency():
    train = [(torch.zeros(4, 2), torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))]
    val = [(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))]
    p = torch.tensor([4 / 6, 2 / 6])  # ones per column, add-one smoothed over 4 rows
    y = val[0][1]
    expected = float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())
    assert prior_loss(train, val, "binary_cross_entropy") == pytest.approx(expected)
    classes = [(torch.zeros(4, 1), torch.tensor([1.0, 1.0, 0.0, 1.0]))]  # one column: the two
    assert prior_loss(classes, classes, "binary_cross_entropy") == pytest.approx(  # classes' prior
        prior_loss([(x, y.long()) for x, y in classes], [(x, y.long()) for x, y in classes], None))


def test_targets_it_cannot_read_give_no_prior():
    constant = [(torch.zeros(2, 1), torch.ones(2, 1))]
    assert prior_loss(constant, constant, "mse") is None  # a prior of 0 says nothing
    assert prior_loss([torch.zeros(3)], [torch.zeros(3)], None) is None  # no target


def test_learned_means_the_margin_below_the_prior():
    assert learned((1 - LEARNED_MARGIN) * 2.0, 2.0)
    assert not learned((1 - LEARNED_MARGIN) * 2.0 + 1e-9, 2.0)
    assert not learned(math.inf, 2.0) and not learned(math.nan, 2.0)


def test_a_trial_learned_when_any_point_of_its_curve_did():
    trial = optuna.trial.create_trial(value=1.0, user_attrs={"curve": [[5, 0.5], [10, 1.0]]})
    assert best_loss(trial) == 0.5
    assert nothing_learned([trial], [], prior=1.0) is None
    note = nothing_learned([trial], [0.95], prior=0.5)
    assert note is not None and "0.5000 against 0.5000" in note
    assert nothing_learned([trial], [], prior=None) is None


# --------------------------------------------------------------------------------- the search

def _loader(y: torch.Tensor, seed: int = 0) -> DataLoader:
    x = torch.randn(len(y), 8, generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(x, y), batch_size=32)


def _noise_labels(n: int = 512) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=torch.Generator().manual_seed(1))


def test_a_search_where_no_probe_learns_lengthens_its_round_twice_and_says_so():
    result = run_search(tiny_mlp(), _loader(_noise_labels()), n_trials=7,
                        selection=Selection(seeds=0), seed=0)
    assert result.context.config.steps == 400  # 100 -> 200 -> 400: at most 4x the first length
    assert "probes lengthened to 400 steps: no probe of 200 steps learned" in result.reason
    assert "no probe learned beyond predicting the training targets' frequencies" in result.reason
    assert "close to a guess" in result.summary()
    # the shorter rounds count: the 7 named candidates at 100 steps, then 200, then 400
    assert result.cost.probe_steps == 7 * (100 + 200 + 400)


def test_a_search_whose_probes_learn_keeps_their_length_and_says_nothing():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, 8, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32)
    result = run_search(tiny_mlp(), loader, n_trials=8, selection=Selection(top=1, seeds=1),
                        seed=0)
    assert result.context.config.steps == 100
    assert "lengthened" not in result.reason and "no probe learned" not in result.reason


@pytest.mark.parametrize("option", [
    {"probe_steps": 10}, {"timeout": 600.0}, {"budget_steps": 5000}, {"storage": "memory"},
    {"rungs": 2}, {"loss_fn": nn.CrossEntropyLoss()}])
def test_where_a_round_may_not_be_lengthened_the_probes_keep_their_length(option):
    """Your own probe length, step budget or timeout is kept (on a storage too), and rungs or
    a loss without a prior loss are not lengthened."""
    if option.get("storage") == "memory":
        option = {"storage": optuna.storages.InMemoryStorage(), "study_name": "s"}
    option = {"probe_steps": 10, **option}
    result = run_search(tiny_mlp(), _loader(_noise_labels()), n_trials=8,
                        selection=Selection(top=1, seeds=1), seed=0, **option)
    assert result.context.config.steps == (30 if "rungs" in option else 10)  # rungs: 10, 30
    assert "lengthened" not in result.reason
    # the note needs a prior loss: a criterion of your own has none
    assert ("no probe learned" in result.reason) == ("loss_fn" not in option)


def test_a_model_trained_on_its_own_loss_has_no_prior():
    """Its loss may be any (BCE, a shifted next-token loss): the targets' frequencies or mean do
    not say what a constant prediction scores under it."""

    class OwnLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tiny_mlp()

        def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
            logits = self.net(x)
            return {"logits": logits, "loss": nn.functional.cross_entropy(logits, labels)}

    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    batches = [{"x": x[i:i + 32], "labels": _noise_labels()[i:i + 32]} for i in range(0, 512, 32)]
    result = run_search(OwnLoss(), batches, n_trials=7, selection=Selection(seeds=0), seed=0)
    assert result.context.config.steps == 100 and "no probe learned" not in result.reason


def test_a_stored_search_keeps_each_length_in_a_study_of_its_own_and_a_rerun_resumes(tmp_path):
    from autoinit.status import study_status

    url = f"sqlite:///{tmp_path}/s.db"
    options = dict(n_trials=7, selection=Selection(seeds=0), seed=0, storage=url, study_name="s")
    first = run_search(tiny_mlp(), _loader(_noise_labels()), **options)
    assert first.study.study_name == "s@400-steps" and first.context.config.steps == 400
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    assert names == ["s", "s@200-steps", "s@400-steps"]
    again = run_search(tiny_mlp(), _loader(_noise_labels()), **options)  # resumes: nothing new
    assert again.chosen == first.chosen and again.scheme == first.scheme
    assert [len(optuna.load_study(study_name=n, storage=url).trials) for n in names] == [7, 7, 7]
    status = study_status(url, "s", n_trials=7)
    assert status.study_name == "s@400-steps" and status.earlier == ("s", "s@200-steps")
    assert "the earlier rounds: 's', 's@200-steps'" in status.summary()
