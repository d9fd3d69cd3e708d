"""The search's input, fetched once and checked before any candidate trains: the probes'
training and held-out batches, free of NaN and infinities, and a loss that computes on them.

Example:
    >>> import torch
    >>> batches = [(torch.ones(4, 2), torch.zeros(4)) for _ in range(6)]
    >>> read = probe_batches(batches, None, probe_steps=5, val_batches=1, dev=torch.device("cpu"))
    >>> len(read.train), len(read.val), read.places
    (5, 1, [1, 2, 3, 4, 5])
    >>> check_finite([(torch.tensor([float("nan")]),)], "dataloader")
    Traceback (most recent call last):
    ...
    autoinit.errors.DataError: batch 0 of dataloader holds NaN or infinite values in [0] (1 of 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from autoinit.batches import LossFn, fetch_batches, fields_of, move_batch, target_of
from autoinit.errors import AutoinitError, ConfigError, DataError

if TYPE_CHECKING:
    from autoinit.probe import ProbeData

__all__ = ["ProbeBatches", "Unlabelled", "check_finite", "check_loss", "check_state_kept",
           "checked_batches", "labelled_places", "materialize", "probe_batches", "unlabelled_by"]


def materialize(model: nn.Module, loader: Iterable, loss: LossFn | None) -> Iterable:
    """Give a model's lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``, ...) their parameters'
    shapes: the loss runs once on ``loader``'s first batch, in eval mode, without gradients and
    without touching the global RNG. Returns the loader to read the batches from (a one-shot
    iterator, such as a generator, with its first batch put back). Without a loss, or a lazy
    parameter, nothing happens."""
    if loss is None or not any(isinstance(p, nn.parameter.UninitializedParameter)
                               for p in model.parameters()):
        return loader
    try:
        iterator = iter(loader)
    except TypeError:
        return loader  # fetch_batches says what it must be
    first = next(iterator, None)
    if first is None:
        return loader
    device = next(model.parameters()).device
    training = model.training
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            model.eval()
            loss(model, move_batch(first, device))
        except AutoinitError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as bad input, with the cause
            raise ConfigError(f"the lazy modules' parameters could not be materialized on the "
                              f"first batch: {type(exc).__name__}: {_one_line(exc)}") from exc
        finally:
            model.train(training)
    return itertools.chain([first], iterator) if iterator is loader else loader


class ProbeBatches(NamedTuple):
    """The probes' training and held-out batches, and each training batch's place in
    ``dataloader`` (which names it in an error)."""

    train: list[Any]
    val: list[Any]
    places: list[int]


@dataclass(frozen=True)
class Unlabelled:
    """Which integer targets a loss ignores: those equal to ``index`` (a criterion's
    ``ignore_index``), or with ``index=None`` every negative one (the default loss's: torch's
    ``ignore_index=-100``, Hugging Face's padded labels, and the negative targets its binary
    cross-entropy leaves out). Called on a target: whether it holds no label to learn."""

    index: int | None = None

    def __call__(self, target: Any) -> bool:
        if not isinstance(target, torch.Tensor) or target.is_floating_point() \
                or target.is_complex() or target.dtype == torch.bool or not target.numel():
            return False
        return not bool((target >= 0 if self.index is None else target != self.index).any())

    def ignores(self, batch: Any) -> bool:
        """Whether ``batch``'s target (:func:`~autoinit.batches.target_of`'s: a flat
        ``(x1, x2, target)``'s last item too) is all ignored;
        ``False`` for a format only your ``loss_fn`` reads."""
        try:
            return self(target_of(batch))
        except ConfigError:
            return False

    def none_left(self, count: int, what: str) -> DataError:
        """The error where every one of ``count`` batches read from ``what`` is ignored."""
        ignored = "negative (ignored, as ignore_index=-100)" if self.index is None \
            else f"{self.index} (the criterion's ignore_index)"
        return DataError(f"every target of the {count} batches read from {what} is {ignored}: "
                         "no label to learn or score")


def unlabelled_by(loss_fn: Any, train_step: Any = None) -> Unlabelled | None:
    """The targets autoinit's own steps on ``loss_fn`` ignore (:class:`Unlabelled`): the default
    loss's and ``"cross_entropy"``'s negative ones, a criterion's ``ignore_index``
    (``nn.CrossEntropyLoss(ignore_index=-1)``, ``nn.NLLLoss``); ``None`` for any other loss and
    for a ``train_step`` of yours (its negative integers may be labels: hinge's -1)."""
    if train_step is not None:
        return None
    if loss_fn is None or (isinstance(loss_fn, str) and loss_fn == "cross_entropy"):
        return Unlabelled()
    index = getattr(loss_fn, "ignore_index", None)
    if isinstance(loss_fn, nn.Module) and isinstance(index, int) and not isinstance(index, bool):
        return Unlabelled(index)
    return None


def probe_batches(loader: Iterable, val_loader: Iterable | None, probe_steps: int,
                  val_batches: int, dev: torch.device, unlabelled: Unlabelled | None = None
                  ) -> ProbeBatches:
    """The probes' training batches and held-out batches, on ``dev``: ``val_batches`` from
    ``val_loader``, or split off the front of ``loader``'s, free of NaN and infinities
    (:func:`check_finite`); batches whose class labels are all ``unlabelled`` (the loss's
    ignored ones, :func:`unlabelled_by`) are left out (:func:`checked_batches`)."""
    def fetch(source: Iterable, count: int, what: str) -> list[tuple[int, Any]]:
        return checked_batches(fetch_batches(source, count, dev, what), what, unlabelled)

    if val_loader is not None:
        train, val = fetch(loader, probe_steps, "dataloader"), \
            fetch(val_loader, val_batches, "val_dataloader")
    else:
        train = fetch(loader, probe_steps + val_batches, "dataloader")
        if len(train) < 2:
            raise DataError("dataloader yielded only 1 batch: held-out batches cannot be split "
                            "off; pass val_dataloader or use a smaller batch size")
        n_val = min(val_batches, max(1, len(train) // 5))
        train, val = train[n_val:], train[:n_val]
    return ProbeBatches([b for _, b in train], [b for _, b in val], [i for i, _ in train])


def checked_batches(batches: list[Any], what: str, unlabelled: Unlabelled | None,
                    first: int = 0) -> list[tuple[int, Any]]:
    """``batches`` (read from ``what``, the first at place ``first``) checked free of NaN and
    infinities (:func:`check_finite`), then, with ``unlabelled``, those whose targets are all
    ignored left out (:func:`labelled_places`): each kept one with its place in the loader."""
    check_finite(batches, what, first)  # before any is left out: the place is the loader's
    kept = labelled_places(batches, what, unlabelled) if unlabelled is not None \
        else range(len(batches))
    return [(first + i, batches[i]) for i in kept]


def labelled_places(batches: list[Any], what: str, unlabelled: Unlabelled) -> list[int]:
    """The places in ``batches`` of those whose integer targets are not all ignored
    (``unlabelled``: the default loss's every negative target, torch's ``ignore_index=-100`` and
    Hugging Face's padded labels; a cross-entropy over no target is NaN, which would mark every
    candidate diverged); an error where none is left."""
    kept = [i for i, b in enumerate(batches) if not unlabelled.ignores(b)]
    if not kept:
        raise unlabelled.none_left(len(batches), what)
    return kept


def check_finite(batches: list, what: str, first: int = 0) -> None:
    """Refuse batches holding NaN or infinite floats, naming the first one by its place in
    ``what`` (``first`` for the first batch), where in it (its index or key) and how many
    values."""
    for i, batch in enumerate(batches, first):
        for where, t in _placed_tensors(batch):
            bad = int((~torch.isfinite(t)).sum()) if t.is_floating_point() else 0
            if bad:
                raise DataError(f"batch {i} of {what} holds NaN or infinite values in "
                                f"{where or 'it'} ({bad} of {t.numel()})")


def _tensors(batch: Any) -> Iterator[torch.Tensor]:
    return (t for _, t in _placed_tensors(batch))


def _placed_tensors(batch: Any, where: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor in ``batch`` with its place (``[0]``, ``['x'][1]``)."""
    batch = fields_of(batch)  # a dataclass as the dict of its fields
    if isinstance(batch, torch.Tensor):
        yield where, batch
    elif isinstance(batch, PackedSequence):  # its index tensors are no data
        yield f"{where}.data", batch.data
    elif isinstance(batch, dict):
        for k, v in batch.items():
            yield from _placed_tensors(v, f"{where}[{k!r}]")
    elif isinstance(batch, tuple | list):
        for i, v in enumerate(batch):
            yield from _placed_tensors(v, f"{where}[{i}]")


def check_state_kept(model: nn.Module, initial: Mapping[str, torch.Tensor]) -> None:
    """One line where a forward created parameters or buffers (a weight made on the first call):
    the search restores every trial from the state it had before any forward, which lacks them."""
    new = sorted(set(model.state_dict()) - set(initial))
    if new:
        raise ConfigError(f"model {type(model).__name__} created {new} in its forward: run it "
                          "once on a batch before the search (or use torch.nn's Lazy modules, "
                          "which autoinit materializes)")


def check_loss(model: nn.Module, data: ProbeData, places: Sequence[int] | None = None,
               what: str = "dataloader") -> None:
    """One forward pass with the user's loss on every training batch (a ragged last batch: one
    example breaks batch norm; a token id beyond an embedding, or a class the model has no
    output for, in one batch), then on every held-out batch in eval mode, as the probes score
    them, so bad input fails early, naming a training batch by its place in the loader ``what``
    (``places``, :attr:`ProbeBatches.places`; default: its index) (forward passes without
    gradients: on deep_relu_mlp, 100 batches take the time of 12 training steps)."""
    first = _examples(data.train[0])
    training = model.training
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for i, batch in enumerate(data.train):
            size = _examples(batch)
            where = "the first batch" if i == 0 else \
                f"batch {places[i] if places is not None else i} of {what}"
            if size != first:
                where = f"a batch of {size} examples (the first has {first})"
            _loss_on(model, data.loss, batch, where, short=size != first)
        model.eval()
        try:
            for i, batch in enumerate(data.val):
                _loss_on(model, data.loss, batch, f"held-out batch {i}")
        finally:
            model.train(training)


def _loss_on(model: nn.Module, loss: LossFn, batch: Any, where: str, short: bool = False) -> None:
    """``loss(model, batch)``, any failure a one-line error naming ``where`` and a way out."""
    try:
        loss(model, batch)
    except AutoinitError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as bad input, with the cause
        if short:
            hint = "; DataLoader(..., drop_last=True) leaves out a short last batch"
        elif isinstance(batch, Mapping) and "keyword argument" in str(exc):
            hint = ("; a dict batch is passed as model(**batch) without its target key: "
                    "pass loss_fn(model, batch) for a model that takes the dict")
        else:
            hint = _ignore_hint(exc, batch) or _dtype_hint(model, batch)
        raise ConfigError(f"the loss could not be computed on {where}: "
                          f"{type(exc).__name__}: {_one_line(exc)}{hint}") from exc


def _ignore_hint(exc: BaseException, batch: Any) -> str:
    """Advice where cross-entropy met a negative class other than -100: the user's data marks
    ignored labels with another value (-1), which only their criterion's ``ignore_index``
    ignores; else ``""``."""
    try:
        labels = target_of(batch)
    except ConfigError:  # a format only your loss_fn reads
        return ""
    if not isinstance(exc, IndexError) or not isinstance(labels, torch.Tensor) \
            or labels.is_floating_point():
        return ""
    negative = labels[(labels < 0) & (labels != -100)]
    if not negative.numel():
        return ""
    value = int(negative[0])
    return (f"; cross-entropy ignores only the label -100, and this batch holds {value}: pass "
            f"loss_fn=nn.CrossEntropyLoss(ignore_index={value}) if {value} marks no label")


def _dtype_hint(model: nn.Module, batch: Any) -> str:
    """Advice when the batch's floating-point tensors are of another dtype than the model's
    parameters (float64 data from NumPy against a float32 model), else ``""``."""
    params = {p.dtype for p in model.parameters() if p.is_floating_point()}
    data = {t.dtype for t in _tensors(batch) if t.is_floating_point()} - params
    if len(params) != 1 or not data:
        return ""
    have, want = ", ".join(sorted(str(d) for d in data)), str(next(iter(params)))
    return (f"; the batch holds {have} tensors and the model {want} parameters: cast the data "
            f"(tensor.to({want}) in the dataset or collate_fn) or the model (model.to(...))")


def _one_line(exc: BaseException) -> str:
    """The message's first and last lines (a module's repr in a TypeError spans dozens)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ... ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else "".join(lines)


def _examples(batch: Any) -> int | None:
    """The batch's size: the leading dimension of its first tensor, or the number of sequences
    of a packed sequence (``None``: no tensor)."""
    batch = fields_of(batch)
    if isinstance(batch, PackedSequence):
        return int(batch.batch_sizes[0])
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    items = batch.values() if isinstance(batch, dict) else \
        batch if isinstance(batch, tuple | list) else ()
    return next((n for n in map(_examples, items) if n is not None), None)
