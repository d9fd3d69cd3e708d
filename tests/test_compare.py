"""``autoinit.compare``: the table of full trainings, and its MLflow record."""

from __future__ import annotations

import math
import re
from collections import namedtuple

import pytest
import torch
from conftest import SparseBag, tiny_mlp
from torch import nn

from autoinit.compare import CompareRun, ComparisonStopped, compare_runs, compare_table
from autoinit.errors import ConfigError
from autoinit.plan import uniform_scheme


def _runs() -> list[CompareRun]:
    runs = [CompareRun("chosen (s.json)", s, loss, 0.9, [(5, loss + 0.1), (10, loss)], 2.0, None)
            for s, loss in ((1, 0.20), (2, 0.40))]
    runs += [CompareRun("xavier_normal", s, 0.30, 0.8, [(10, 0.30)], 1.0, None) for s in (1, 2)]
    runs += [CompareRun("pytorch_default", 1, math.inf, None, [], 1.0, "non-finite loss"),
             CompareRun("pytorch_default", 2, 2.3, 0.1, [(10, 2.3)], 1.0, None)]
    return runs


def test_table_puts_the_chosen_first_then_baselines_by_median_and_pairs_the_verdict():
    table = compare_table(_runs(), steps=10, split="val")
    rows = [line.split()[0] for line in table.splitlines()[4:7]]
    assert rows == ["chosen", "xavier_normal", "pytorch_default"]
    assert re.search(r"^chosen \(s.json\)\s+0.3000\s+\[0.2000, 0.4000\]", table, re.M)
    assert "1/2" in table.splitlines()[6]  # one diverged run of the default
    assert table.splitlines()[-1] == ("chosen vs the best baseline (xavier_normal): median paired "
                                      "difference in val loss +0.0000; chosen lower in 1 of 2 seeds")


def test_log_compare_writes_a_parent_and_one_child_per_method(tmp_path):
    from mlflow import MlflowClient

    from autoinit.integrations.compare_log import log_compare

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    scheme = uniform_scheme(nn.Linear(2, 2), "orthogonal")
    run_id = log_compare(uri, "cmp", "compare tiny", {"steps": 10}, _runs(), "the table", scheme)
    client = MlflowClient(uri)
    parent = client.get_run(run_id)
    assert parent.data.params["steps"] == "10"
    assert parent.data.metrics["chosen.val_loss_median"] == pytest.approx(0.3)
    assert "pytorch_default.val_loss_median" not in parent.data.metrics  # a diverged seed: inf
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(c.info.run_name for c in children) == ["chosen (s.json)", "pytorch_default",
                                                          "xavier_normal"]


def test_compare_runs_takes_plain_values_and_pairs_every_method_per_seed(tiny_loader):
    model = tiny_mlp()
    before = [p.clone() for p in model.parameters()]
    chosen = uniform_scheme(model, "orthogonal")
    lines: list[str] = []
    runs = compare_runs(model, tiny_loader, tiny_loader, {"chosen": chosen, "xavier_normal": None},
                        loss_fn="cross_entropy", lr=1e-2, steps=6, seeds=2, device="cpu",
                        echo=lines.append)
    assert [(r.method, r.seed) for r in runs] == [("chosen", 1), ("xavier_normal", 1),
                                                  ("chosen", 2), ("xavier_normal", 2)]
    assert all(math.isfinite(r.loss) and r.curve[-1][0] == 6 for r in runs)
    assert runs[0].loss != runs[2].loss  # another seed, another scheme draw
    assert sum(line.startswith("seed ") for line in lines) == 4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    again = compare_runs(model, tiny_loader, tiny_loader, {"chosen": chosen}, loss_fn="cross_entropy",
                         lr=1e-2, steps=6, seeds=1, device="cpu")
    assert again[0].loss == runs[0].loss  # seeded: the same run twice


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"steps": 0}, "steps must be a positive integer, got 0"),
    ({"seeds": True}, "seeds must be a positive integer, got True"),
])
def test_compare_runs_checks_its_counts_before_any_training(tiny_loader, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        compare_runs(tiny_mlp(), tiny_loader, tiny_loader, {"xavier_normal": None}, **kwargs)


def test_an_unknown_baseline_fails_before_any_line_or_training(tiny_loader):
    """It failed once the methods before it had trained and been echoed."""
    lines: list[str] = []
    with pytest.raises(ConfigError, match="unknown family 'magic'"):
        compare_runs(tiny_mlp(), tiny_loader, tiny_loader,
                     {"chosen": uniform_scheme(tiny_mlp(), "orthogonal"), "magic": None}, steps=2,
                     seeds=1, echo=lines.append)
    assert lines == []


def test_an_optimizer_that_cannot_train_the_model_fails_in_one_line_before_any_training(
        token_loader):
    with pytest.raises(ConfigError, match=r"^the first training step failed with optimizer='adam'"):
        compare_runs(SparseBag(), token_loader, token_loader, {"pytorch_default": None}, steps=5,
                     seeds=1)
    runs = compare_runs(SparseBag(), token_loader, token_loader, {"pytorch_default": None},
                        steps=5, seeds=1, optimizer="sgd")
    assert [r.method for r in runs] == ["pytorch_default"]


def test_a_comparison_on_one_hot_float_labels_trains_on_cross_entropy_as_the_search():
    from torch.utils.data import DataLoader, TensorDataset

    from autoinit.compare import prepare_comparison

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    y = nn.functional.one_hot((x[:, 0] > 0).long(), 2).float()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    comparison = prepare_comparison(tiny_mlp(), loader, loader, {"xavier_normal": None}, steps=1,
                                    seeds=1)
    net = tiny_mlp()
    assert torch.allclose(comparison.loss(net, (x, y)), nn.functional.cross_entropy(net(x), y))


def _class_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 8, generator=g), torch.randint(0, 2, (8,), generator=g))
            for _ in range(n)]


def test_a_comparison_leaves_out_batches_of_ignored_labels_as_the_search_does():
    """An all -100 batch gave a NaN held-out loss: every run 'diverged'."""
    train, held = _class_batches(4), _class_batches(3)
    train[1][1].fill_(-100)
    held[2][1].fill_(-100)
    runs = compare_runs(tiny_mlp(), train, held, {"xavier_normal": None}, steps=6, seeds=2,
                        device="cpu")
    assert all(r.diverged is None and math.isfinite(r.loss) for r in runs)
    from autoinit.compare import prepare_comparison

    comparison = prepare_comparison(tiny_mlp(), train, held, {"xavier_normal": None}, steps=6,
                                    seeds=1, device="cpu")
    assert len(comparison.held_batches) == 2 and len(comparison.first_batches) == 6
    assert all(bool((b[1] >= 0).all()) for b in comparison.first_batches)
    kept = prepare_comparison(tiny_mlp(), train, held, {"xavier_normal": None}, steps=6, seeds=1,
                              device="cpu", loss_fn=lambda m, b: m(b[0]).sum())  # yours: no ignored labels
    assert len(kept.held_batches) == 3
    with pytest.raises(ConfigError, match=r"^every target of the 1 batches read from "
                                          r"train_loader is negative"):
        compare_runs(tiny_mlp(), train[1:2], held, {"xavier_normal": None}, steps=2, seeds=1)


def test_a_comparison_refuses_nan_and_a_batch_its_loss_cannot_take_before_any_run():
    train, held = _class_batches(4), _class_batches(2)
    train[2][0][0, 0] = float("nan")
    lines: list[str] = []
    with pytest.raises(ConfigError, match=r"^batch 2 of train_loader holds NaN or infinite "
                                          r"values in \[0\] \(1 of 64\)$"):
        compare_runs(tiny_mlp(), train, held, {"xavier_normal": None}, steps=6, seeds=1,
                     echo=lines.append)
    held[1][0][1, 1] = float("inf")
    with pytest.raises(ConfigError, match=r"^batch 1 of val loader holds NaN"):
        compare_runs(tiny_mlp(), _class_batches(2), held, {"xavier_normal": None}, steps=2,
                     seeds=1)
    bad = _class_batches(4)
    bad[3][1][0] = 5  # a class the model has no output for
    with pytest.raises(ConfigError, match=r"^the loss could not be computed on batch 3 of "
                                          r"train_loader: IndexError"):
        compare_runs(tiny_mlp(), bad, _class_batches(1), {"xavier_normal": None}, steps=4,
                     seeds=1, echo=lines.append)
    assert lines == []


def test_a_training_loader_of_single_examples_or_read_only_once_is_refused_in_one_line():
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    rows = TensorDataset(torch.randn(16, 8, generator=g), torch.randn(16, 2, generator=g))
    with pytest.raises(ConfigError, match=r"^train_loader is a DataLoader with batch_size=None "
                                          r"over a TensorDataset"):  # (8,) against (2,): mse ran
        compare_runs(tiny_mlp(), DataLoader(rows, batch_size=None), _class_batches(1),
                     {"xavier_normal": None}, steps=2, seeds=1, loss_fn="mse")
    with pytest.raises(ConfigError, match=r"^train_loader yielded no batch on a new pass, after 3 "
                                          r"batches: a one-shot iterator \(a generator\)"):
        compare_runs(tiny_mlp(), iter(_class_batches(3)), _class_batches(1),
                     {"xavier_normal": None}, steps=5, seeds=1)
    with pytest.raises(ConfigError, match=r"^train_loader yielded no batch$"):
        compare_runs(tiny_mlp(), [], _class_batches(1), {"xavier_normal": None}, steps=5, seeds=1)


def test_accuracy_leaves_out_ignored_labels():
    """Padded positions (-100) counted as wrong: a perfect tagger scored 50 %."""
    from autoinit.compare import _accuracy

    class Echo(nn.Module):
        def forward(self, x):
            return nn.functional.one_hot(x, 3).float()

    x = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]])
    y = x.masked_fill(torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]], dtype=torch.bool), -100)
    assert _accuracy(Echo(), [(x, y)]) == 1.0
    assert _accuracy(Echo(), [(x, torch.full_like(x, -100))]) is None


def test_the_accuracy_of_one_logit_is_its_sign():
    """A binary classifier's (B, 1) logits: argmax over one column always said class 0."""
    from autoinit.compare import _accuracy

    x = torch.tensor([[-2.0], [3.0], [1.0], [-1.0]])
    assert _accuracy(nn.Identity(), [(x, torch.tensor([0, 1, 1, 0]))]) == 1.0
    assert _accuracy(nn.Identity(), [(x, torch.tensor([1, 0, 1, 0]))]) == 0.5


class _TwoOutputs(nn.Module):
    """Features (always class 3 by argmax) and exact logits, as a namedtuple or a dict."""

    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor) -> object:
        features = nn.functional.one_hot(torch.full((len(x),), 3), 4).float()
        logits = torch.stack([-x[:, 0], x[:, 0]], 1)
        if self.as_dict:
            return {"features": features, "logits": logits}
        return _Outputs(features, logits)


_Outputs = namedtuple("_Outputs", "features logits")


@pytest.mark.parametrize("as_dict", [False, True])
def test_accuracy_reads_the_prediction_as_the_loss_does(as_dict):
    from autoinit.compare import _accuracy

    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    assert _accuracy(_TwoOutputs(as_dict), [(x, (x[:, 0] > 0).long())]) == 1.0


class _FailsAfter:
    """A training loader that raises once it has yielded ``limit`` batches in all (a disk or a
    worker lost in the middle of a comparison)."""

    def __init__(self, loader, limit: int) -> None:
        self.loader, self.limit, self.read = loader, limit, 0

    def __iter__(self):
        for batch in self.loader:
            if self.read >= self.limit:
                raise OSError("the shard went away")
            self.read += 1
            yield batch


def test_a_loader_that_fails_before_a_later_seed_keeps_the_seeds_that_finished(tiny_loader):
    model = tiny_mlp()
    chosen = uniform_scheme(model, "orthogonal")
    flaky = _FailsAfter(tiny_loader, limit=12)  # 6 steps a seed: seeds 1 and 2, not 3
    with pytest.raises(ComparisonStopped, match=r"^the comparison stopped before seed 3: "
                       r"train_loader failed on a new pass: OSError: the shard went away; the 4 "
                       r"runs of seeds 1-2 are kept") as stopped:
        compare_runs(model, flaky, tiny_loader, {"chosen": chosen, "xavier_normal": None},
                     loss_fn="cross_entropy", lr=1e-2, steps=6, seeds=3, device="cpu")
    runs = stopped.value.runs
    assert [(r.method, r.seed) for r in runs] == [("chosen", 1), ("xavier_normal", 1),
                                                  ("chosen", 2), ("xavier_normal", 2)]
    whole = compare_runs(model, tiny_loader, tiny_loader, {"chosen": chosen, "xavier_normal": None},
                         loss_fn="cross_entropy", lr=1e-2, steps=6, seeds=2, device="cpu")
    assert [r.loss for r in runs] == [r.loss for r in whole]  # the same trainings, kept
    assert "6 steps x 2 seeds" in compare_table(runs, 6, "val")
