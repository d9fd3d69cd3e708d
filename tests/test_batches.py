"""Batches and losses: formats, defaults, and the errors for what cannot be understood."""

from __future__ import annotations

import warnings
from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    SequentialSampler,
    TensorDataset,
)

from autoinit.batches import (
    binary_labels,
    fetch_batches,
    loss_fn_for,
    make_loss,
    move_batch,
    own_loss,
    soft_labels,
    split_batch,
)
from autoinit.errors import ConfigError

G = torch.Generator().manual_seed(0)
X = torch.randn(6, 3, generator=G)
Y_INT = torch.tensor([0, 1, 1, 0, 1, 0])
NET = nn.Linear(3, 2)


def test_split_tuple_list_and_dict():
    assert split_batch((X, Y_INT))[1] is Y_INT
    assert split_batch([X, Y_INT])[0] is X
    inputs, target = split_batch({"x": X, "labels": Y_INT})
    assert inputs is X and target is Y_INT
    inputs, _ = split_batch({"a": X, "b": X, "y": Y_INT})
    assert set(inputs) == {"a", "b"}


def test_unknown_batch_format_names_what_it_got():
    with pytest.raises(ConfigError, match="got a dict with keys \\['a', 'b'\\]"):
        split_batch({"a": X, "b": X})
    with pytest.raises(ConfigError, match="got a tuple of 3 items"):
        split_batch((X, X, X))


def test_default_loss_is_cross_entropy_for_integers_and_mse_for_floats():
    ce = make_loss(None)(NET, (X, Y_INT))
    assert torch.allclose(ce, nn.functional.cross_entropy(NET(X), Y_INT))
    target = torch.randn(6, 2, generator=G)
    assert torch.allclose(make_loss(None)(NET, (X, target)), nn.functional.mse_loss(NET(X), target))
    with pytest.raises(ConfigError, match="cannot choose a loss for targets of dtype torch.complex64"):
        make_loss(None)(NET, (X, torch.zeros(6, 2, dtype=torch.complex64)))


def test_boolean_and_narrow_integer_targets_are_class_labels_for_every_cross_entropy():
    ce = F.cross_entropy(NET(X), Y_INT)
    for target in (Y_INT.bool(), Y_INT.int(), Y_INT.to(torch.uint8)):
        assert torch.allclose(make_loss(None)(NET, (X, target)), ce)
        assert torch.allclose(make_loss("cross_entropy")(NET, (X, target)), ce)
    single = nn.Linear(3, 1)
    assert torch.allclose(make_loss(None)(single, (X, Y_INT.bool())),
                          F.binary_cross_entropy_with_logits(single(X).squeeze(1), Y_INT.float()))


def test_soft_and_one_hot_float_targets_take_cross_entropy_when_all_batches_hold_them():
    soft = torch.softmax(torch.randn(6, 2, generator=G), 1)
    one_hot = F.one_hot(Y_INT, 2).float()
    for target in (soft, one_hot):
        assert torch.allclose(make_loss("cross_entropy")(NET, (X, target)),
                              F.cross_entropy(NET(X), target))
        # the default alone is mean squared error: a search decides on all its batches
        assert torch.allclose(make_loss(None)(NET, (X, target)), F.mse_loss(NET(X), target))
    assert soft_labels([(X, soft), (X, one_hot)])
    multi_hot = one_hot.clone()
    multi_hot[0] = 1.0  # a row with two labels: multi-label targets, for every batch
    assert not soft_labels([(X, one_hot), (X, multi_hot)])
    assert not soft_labels([(X, Y_INT)]) and not soft_labels([(X, soft * 2)])
    assert not soft_labels([X])  # a format only a loss_fn of yours reads


def test_float_zero_one_targets_are_labels_when_all_batches_hold_them():
    multi = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]] * 2)  # multi-label, as BCEWithLogits
    binary = Y_INT.float()  # (B,) 0/1 against two logits: class indices
    assert binary_labels([(X, multi), (X, binary)])
    assert loss_fn_for(None, NET, [(X, multi)]) == "binary_cross_entropy"
    assert loss_fn_for(None, NET, [(X, F.one_hot(Y_INT, 2).float())]) == "cross_entropy"  # one-hot
    assert loss_fn_for("mse", NET, [(X, multi)]) == "mse"  # yours is kept
    assert torch.allclose(make_loss("binary_cross_entropy")(NET, (X, multi)),
                          F.binary_cross_entropy_with_logits(NET(X), multi))
    assert torch.allclose(make_loss("binary_cross_entropy")(NET, (X, binary)),
                          F.cross_entropy(NET(X), Y_INT))
    single = nn.Linear(3, 1)
    assert torch.allclose(make_loss("binary_cross_entropy")(single, (X, binary)),
                          F.binary_cross_entropy_with_logits(single(X).squeeze(1), binary))
    counts = binary.clone()
    counts[0] = 2.0  # count data: one batch beyond 0 and 1 keeps mean squared error
    assert not binary_labels([(X, binary), (X, counts)]) and not binary_labels([(X, Y_INT)])
    assert loss_fn_for(None, single, [(X, torch.rand(6, generator=G))]) is None


def test_named_binary_cross_entropy_keeps_soft_targets_in_between():
    smoothed = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.9, 0.9]] * 2)  # label smoothing
    assert torch.allclose(make_loss("binary_cross_entropy")(NET, (X, smoothed)),
                          F.binary_cross_entropy_with_logits(NET(X), smoothed))
    with pytest.raises(ConfigError, match="0.9"):  # class indices cannot be fractions
        make_loss("binary_cross_entropy")(NET, (X, torch.full((6,), 0.9)))


def test_a_regression_target_without_its_unit_dimension_is_not_broadcast():
    single = nn.Linear(3, 1)
    y = torch.randn(6, generator=G)  # (B,) against the model's (B, 1)
    expected = F.mse_loss(single(X).squeeze(1), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's broadcast warning would be a (B, B) loss
        for loss_fn in (None, "mse", nn.MSELoss()):
            assert torch.allclose(make_loss(loss_fn)(single, (X, y)), expected)
        counts = torch.arange(6)  # integer regression targets, through a criterion of yours
        assert torch.allclose(make_loss(nn.MSELoss())(single, (X, counts)),
                              F.mse_loss(single(X).squeeze(1), counts.float()))


def test_float_targets_that_do_not_match_the_outputs_are_one_line_errors():
    classes = Y_INT.float()  # class indices as floats against 2 logits: no (B, B) broadcast
    for loss_fn in (None, "mse"):
        with pytest.raises(ConfigError, match=r"output \(6, 2\) .* target \(6,\) .*\(target\.long\(\)\)"):
            make_loss(loss_fn)(NET, (X, classes))


@pytest.mark.parametrize("batch", [3, 6])
def test_float_class_labels_are_refused_not_broadcast_against_the_logits(batch):
    # float labels (from NumPy) against 3 logits: with 3 examples mse_loss would broadcast
    # (3, 3) against (3,) and train on nonsense; with 6 it fails deep in torch
    labels = torch.tensor([0.0, 2.0, 1.0] * (batch // 3))
    with pytest.raises(ConfigError, match=rf"output \({batch}, 3\) and target \({batch},\) "
                                          rf".*target.long\(\)"):
        make_loss(None)(nn.Linear(3, 3), (X[:batch], labels))


def test_sequence_logits_are_flattened():
    logits_net = nn.Linear(3, 5)
    x = torch.randn(2, 4, 3, generator=G)
    y = torch.randint(0, 5, (2, 4), generator=G)
    expected = nn.functional.cross_entropy(logits_net(x).reshape(-1, 5), y.reshape(-1))
    assert torch.allclose(make_loss("cross_entropy")(logits_net, (x, y)), expected)
    assert torch.allclose(make_loss(None)(logits_net, (x, y)), expected)



@pytest.mark.parametrize("conv", [nn.Conv1d(3, 5, 1), nn.Conv2d(3, 5, 1)])
def test_per_position_logits_with_classes_on_dim_1_are_torchs_cross_entropy(conv):
    x = torch.randn(2, 3, *[4] * (conv.weight.dim() - 2), generator=G)  # (B, C_in, d1, ...)
    y = torch.randint(0, 5, (2, *x.shape[2:]), generator=G)  # (B, d1, ...)
    expected = nn.functional.cross_entropy(conv(x), y)
    assert torch.allclose(make_loss(None)(conv, (x, y)), expected)
    assert torch.allclose(make_loss("cross_entropy")(conv, (x, y)), expected)


def test_criterion_module_and_custom_callable():
    assert torch.allclose(make_loss(nn.CrossEntropyLoss())(NET, (X, Y_INT)),
                          make_loss(None)(NET, (X, Y_INT)))
    custom = make_loss(lambda model, batch: model(batch["inp"]).sum())
    assert custom(NET, {"inp": X}).dim() == 0


def test_non_scalar_loss_is_refused():
    with pytest.raises(ConfigError, match=r"loss must be a scalar tensor, got \(6, 2\)"):
        make_loss(lambda model, batch: model(batch[0]))(NET, (X, Y_INT))
    with pytest.raises(ConfigError, match="loss must be a scalar tensor, got float"):
        make_loss(lambda model, batch: 1.0)(NET, (X, Y_INT))


def test_bad_loss_names():
    with pytest.raises(ConfigError, match="loss_fn must be one of"):
        make_loss("nll2")
    with pytest.raises(ConfigError, match="loss_fn must be a name"):
        make_loss(3)


def test_move_batch_keeps_structure():
    moved = move_batch({"a": (X, [Y_INT])}, "cpu")
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list)


def test_fetch_batches_counts_and_errors():
    assert len(fetch_batches([(X, Y_INT)] * 10, 4, "cpu", "dataloader")) == 4
    with pytest.raises(ConfigError, match="dataloader yielded no batch"):
        fetch_batches([], 4, "cpu", "dataloader")
    with pytest.raises(ConfigError, match="must be iterable"):
        fetch_batches(5, 4, "cpu", "dataloader")


def test_a_loader_that_drops_its_only_short_batch_says_so():
    loader = DataLoader(TensorDataset(X, Y_INT), batch_size=8, drop_last=True)
    with pytest.raises(ConfigError, match=r"^dataloader yielded no batch: 6 examples and "
                                          r"batch_size=8 with drop_last=True$"):
        fetch_batches(loader, 4, "cpu", "dataloader")


def test_a_dataset_of_single_examples_is_refused_and_its_loader_or_stream_taken():
    dataset = TensorDataset(X, Y_INT)  # its items are single examples, not batches
    with pytest.raises(ConfigError, match=r"^dataloader is a TensorDataset, whose items are single "
                                          r"examples: .*DataLoader\(dataset, batch_size="):
        fetch_batches(dataset, 4, "cpu", "dataloader")
    assert fetch_batches(DataLoader(dataset, batch_size=3), 4, "cpu", "dataloader")[1][0].shape \
        == (3, 3)

    class Stream(IterableDataset):  # an iterable dataset yielding batches of its own
        def __iter__(self):
            return iter([(X, Y_INT)])

    assert len(fetch_batches(Stream(), 4, "cpu", "dataloader")) == 1


class _DictOut(nn.Module):
    def __init__(self, keys: tuple[str, ...]) -> None:
        super().__init__()
        self.keys, self.fc = keys, nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: self.fc(x) * (i + 1) for i, k in enumerate(self.keys)}


def test_a_dict_output_is_read_by_its_logits_or_its_one_value_else_refused():
    x, y = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0])
    for keys in (("out",), ("features", "logits")):
        net = _DictOut(keys)
        want = nn.functional.cross_entropy(net(x)["logits" if "logits" in keys else "out"], y)
        assert torch.allclose(make_loss(None)(net, (x, y)), want)
    with pytest.raises(ConfigError, match=r"dict with keys \['features', 'out'\] and no 'logits'"):
        make_loss(None)(_DictOut(("features", "out")), (x, y))


Outputs = namedtuple("Outputs", "features logits")


class _NamedTupleOut(nn.Module):
    """Returns ``Outputs(features, logits)``: the features first, 4 wide, so cross-entropy on
    them against 2-class targets would run too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.head = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> Outputs:
        h = torch.relu(self.fc(x))
        return Outputs(h, self.head(h))


def test_a_namedtuple_output_is_read_by_its_logits_field_else_by_its_first_item():
    x, y = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0])
    net = _NamedTupleOut()
    out = net(x)
    assert torch.allclose(make_loss(None)(net, (x, y)), F.cross_entropy(out.logits, y))
    assert not torch.allclose(F.cross_entropy(out.features, y), F.cross_entropy(out.logits, y))
    plain = nn.LSTM(3, 2, batch_first=True)  # (output, (h, c)): a plain tuple, its first item
    seq, target = x[:, None], torch.tensor([[0], [1], [1], [0]])
    want = F.cross_entropy(plain(seq)[0].reshape(4, 2), target.reshape(4))
    assert torch.allclose(make_loss(None)(plain, (seq, target)), want)


class _TinyCausalLM(nn.Module):
    """A Hugging Face-shaped causal LM: ``forward(input_ids, labels=None)`` returns a dict with
    ``logits`` and, given labels, its own shifted next-token ``loss``."""

    def __init__(self, returns_loss: bool = True) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.emb, self.out = nn.Embedding(5, 8), nn.Linear(8, 5)
        self.returns_loss = returns_loss

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.out(self.emb(input_ids))
        result = {"logits": logits}
        if labels is not None and self.returns_loss:
            result["loss"] = F.cross_entropy(logits[:, :-1].reshape(-1, 5), labels[:, 1:].reshape(-1))
        return result


def _lm_batch() -> dict[str, torch.Tensor]:
    ids = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(0))
    return {"input_ids": ids, "labels": ids.clone()}


def test_a_model_that_computes_its_own_loss_from_labels_is_trained_on_it():
    model, batch = _TinyCausalLM(), _lm_batch()
    shifted = model(**batch)["loss"]
    copy_task = F.cross_entropy(model(batch["input_ids"])["logits"].reshape(-1, 5),
                                batch["labels"].reshape(-1))
    assert not torch.allclose(shifted, copy_task)
    assert torch.equal(make_loss(None)(model, batch), shifted)
    # a named loss is the user's choice: plain cross-entropy on the logits
    assert torch.allclose(make_loss("cross_entropy")(model, batch), copy_task)


def test_a_model_that_takes_labels_but_returns_no_loss_gets_the_default_loss():
    model, batch = _TinyCausalLM(returns_loss=False), _lm_batch()
    expected = F.cross_entropy(model(batch["input_ids"])["logits"].reshape(-1, 5),
                               batch["labels"].reshape(-1))
    assert torch.allclose(make_loss(None)(model, batch), expected)


# ----------------------------------------------------------- what users wrap their data in


Pair = namedtuple("Pair", "inputs target")


@dataclass
class Record:
    x: torch.Tensor
    label: torch.Tensor
    note: str | None = None


def test_move_batch_keeps_namedtuples_dataclasses_and_packed_sequences():
    packed = pack_padded_sequence(torch.randn(2, 3, 4, generator=G), torch.tensor([3, 2]),
                                  batch_first=True)
    moved = move_batch([Pair(X, Y_INT), Record(X, Y_INT, "n"), packed], "cpu")
    assert isinstance(moved[0], Pair) and moved[0].target is Y_INT
    assert isinstance(moved[1], Record) and moved[1].note == "n"
    assert isinstance(moved[2], PackedSequence) and torch.equal(moved[2].data, packed.data)


def test_a_dataclass_batch_is_read_as_the_dict_of_its_fields():
    inputs, target = split_batch(Record(X, Y_INT))
    assert inputs is X and target is Y_INT


def test_tuple_inputs_are_spread_over_a_forward_that_takes_several():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x1, x2, scale=1.0):
            return (self.a(x1) + self.b(x2)) * scale

    net = TwoInputs()
    loss = make_loss(None)(net, ((X, 2 * X), Y_INT))
    assert torch.allclose(loss, F.cross_entropy(net.a(X) + net.b(2 * X), Y_INT))
    # a TensorDataset(x1, x2, y) yields them flat: as many inputs as forward requires, then y
    assert torch.equal(make_loss(None)(net, [X, 2 * X, Y_INT]), loss)
    with pytest.raises(ConfigError, match="got a list of 4 items"):
        make_loss(None)(net, [X, 2 * X, X, Y_INT])
    with pytest.raises(ConfigError, match="got a tuple of 3 items"):  # (x, y, weight): a loss_fn's
        make_loss(None)(NET, (X, Y_INT, torch.ones(6)))


def test_a_dataclass_output_is_read_by_its_logits():
    @dataclass
    class Output:
        logits: torch.Tensor
        hidden: torch.Tensor | None = None

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return Output(self.fc(x), x)

    net = Net()
    assert torch.allclose(make_loss(None)(net, (X, Y_INT)), F.cross_entropy(net.fc(X), Y_INT))


def test_integer_targets_against_one_logit_each_take_binary_cross_entropy():
    single = nn.Linear(3, 1)
    expected = F.binary_cross_entropy_with_logits(single(X).squeeze(1), Y_INT.float())
    assert torch.allclose(make_loss(None)(single, (X, Y_INT)), expected)
    ignored = torch.tensor([0, 1, -100, 0, 1, -100])  # torch's ignore_index
    kept = ignored >= 0
    assert torch.allclose(make_loss(None)(single, (X, ignored)), F.binary_cross_entropy_with_logits(
        single(X).squeeze(1)[kept], ignored[kept].float()))
    multi = torch.randint(0, 2, (6, 2), generator=G)  # integer multi-label targets
    assert torch.allclose(make_loss(None)(NET, (X, multi)),
                          F.binary_cross_entropy_with_logits(NET(X), multi.float()))
    with pytest.raises(ConfigError, match=r"one logit per target .* go up to 3, not only 0 and 1"):
        make_loss(None)(single, (X, torch.tensor([0, 1, 2, 3, 0, 1])))


def test_a_model_with_its_own_training_step_is_trained_on_its_loss():
    class Stepper(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            warnings.warn("self.log without a trainer", stacklevel=2)  # ignored
            return {"loss": F.cross_entropy(self(x), y, label_smoothing=0.2)}

    net = Stepper()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = make_loss(None)(net, (X, Y_INT))
    assert torch.allclose(loss, F.cross_entropy(net(X), Y_INT, label_smoothing=0.2))
    assert own_loss(net, (X, Y_INT)) and not own_loss(NET, (X, Y_INT))


def test_a_training_step_of_another_signature_is_not_called():
    class OneArgument(nn.Linear):
        def training_step(self, batch):  # not (batch, batch_idx): the default loss is kept
            raise AssertionError("called")

    net = OneArgument(3, 2)
    assert torch.allclose(make_loss(None)(net, (X, Y_INT)), F.cross_entropy(net(X), Y_INT))


class _Fixed(nn.Module):
    """A model that returns ``logits`` whatever its input."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def test_cross_entropy_on_per_position_class_probabilities_reads_the_classes_on_dimension_1():
    # a segmentation's logits (B, C, H, W) against one-hot maps of that shape, as torch has them
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    maps = F.one_hot(torch.randint(0, 3, (2, 4, 5), generator=g), 3).permute(0, 3, 1, 2).float()
    loss = make_loss("cross_entropy")(_Fixed(logits), (torch.zeros(2), maps))
    assert torch.allclose(loss, F.cross_entropy(logits, maps))
    rows = F.one_hot(torch.randint(0, 5, (2, 3, 4), generator=g), 5).float()  # classes last
    loss = make_loss("cross_entropy")(_Fixed(logits), (torch.zeros(2), rows))
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(-1, 5), rows.reshape(-1, 5)))


class _Rows:
    """A dataset iterated as it is: one dict of Python values per example."""

    def __iter__(self):
        for i in range(6):
            yield {"x": X[i].tolist(), "label": int(Y_INT[i])}


class _HFRows(_Rows):
    """A Hugging Face map-style dataset, told by its module."""

    __module__ = "datasets.arrow_dataset"

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {"x": X[i], "label": Y_INT[i]}  # with_format("torch"): a row of tensors


class _HFStream(_Rows):
    """A Hugging Face IterableDataset after .batch(3): dicts of lists, its batches."""

    __module__ = "datasets.iterable_dataset"

    def __iter__(self):
        yield {"x": X[:3], "label": Y_INT[:3]}


class _Labelled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, labels):
        return {"loss": F.cross_entropy(self.lin(x), labels)}


def test_single_examples_instead_of_batches_are_refused_in_one_line():
    """A DataLoader(batch_size=None) trained on one example per step without a word."""
    rows = TensorDataset(X, Y_INT)
    with pytest.raises(ConfigError, match=r"^dataloader is a DataLoader with batch_size=None over "
                                          r"a TensorDataset, whose items are its single rows"):
        fetch_batches(DataLoader(rows, batch_size=None), 4, "cpu", "dataloader")
    with pytest.raises(ConfigError, match=r"^dataloader is a Hugging Face _HFRows, whose items are "
                                          r"single examples: pass DataLoader\(dataset\.with_format"):
        fetch_batches(_HFRows(), 4, "cpu", "dataloader")
    with pytest.raises(ConfigError, match=r"^dataloader is a DataLoader with batch_size=None over "
                                          r"a _HFRows, whose items are its single rows"):
        fetch_batches(DataLoader(_HFRows(), batch_size=None), 4, "cpu", "dataloader")
    assert len(fetch_batches(_HFStream(), 4, "cpu", "dataloader")) == 1
    with pytest.raises(ConfigError, match=r"^the first batch of dataloader is a dict with keys "
                                          r"\['label', 'x'\] of Python values and no tensor"):
        fetch_batches(_Rows(), 4, "cpu", "dataloader")
    loss = make_loss(None)
    for target in (Y_INT[0], 1):  # a row of another dataset, with batch_size=None
        with pytest.raises(ConfigError, match=r"^the batch's target is one value \(a (0-dim "
                                              r"tensor|int)\), not a batch of them"):
            loss(nn.Linear(3, 2), (X[0], target))
    with pytest.raises(ConfigError, match="one value"):
        make_loss(nn.CrossEntropyLoss())(nn.Linear(3, 2), (X[0], Y_INT[0]))
    with pytest.raises(ConfigError, match="one value"):  # a model of its own loss, as Hugging Face's
        make_loss(None)(_Labelled(), {"x": X[0], "labels": Y_INT[0]})
    assert make_loss(lambda m, b: m(b[0])[b[1]])(nn.Linear(3, 2), (X[0], Y_INT[0])).dim() == 0
    batches = [(X[:3], Y_INT[:3]), {"ids": [[1, 2]], "label": 1, "x": X[:1]}]  # tensors: batches
    assert len(fetch_batches(batches, 4, "cpu", "dataloader")) == 2
    by_batch = BatchSampler(SequentialSampler(rows), batch_size=3, drop_last=False)
    assert [b[1].shape for b in fetch_batches(DataLoader(rows, batch_size=None, sampler=by_batch),
                                              4, "cpu", "x")] == [(3,), (3,)]
