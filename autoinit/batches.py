"""Batches and losses: how autoinit runs a model on the user's data.

A batch may be ``(inputs, target)`` (tuple, list or namedtuple), a dict (or a dataclass, read as
the dict of its fields) with a ``target``/``y``/``label(s)`` key (the other keys are the inputs),
or anything a user ``loss_fn(model, batch)`` understands. Tuple inputs are spread over a
``forward`` that takes several (``forward(src, tgt)``), as is a flat ``(src, tgt, target)`` (a
``TensorDataset(src, tgt, y)``) where ``forward`` requires that many; dict inputs are passed by
keyword. The default loss is cross-entropy for integer or boolean targets (binary cross-entropy
where the model gives one logit per target: a single-logit binary classifier, integer
multi-label targets) and mean squared error, one output per target, for float targets; a search
(a comparison, a diagnosis) whose float targets are all class probabilities (soft or one-hot
labels, :func:`loss_fn_for`) takes cross-entropy, and one whose float targets are all 0 or 1
(binary or multi-label targets) reads them as integer labels. A model whose ``forward`` takes ``labels``
and returns a ``loss`` (a Hugging Face model, given a dict batch with ``labels``) is trained on
its own loss, as its Trainer does (a causal LM's is the shifted next-token loss; plain
cross-entropy on its logits would train it to copy its input), and a model with a
``training_step(batch, batch_idx)`` of its own (a LightningModule) on the loss that returns.
A ``loss_fn`` may also be ``"cross_entropy"``, ``"mse"``, ``"binary_cross_entropy"`` (float 0/1
targets read as integer labels), or a criterion module such as
``nn.CrossEntropyLoss()`` (called as ``criterion(output, target)``; a target that differs from
the output only by dimensions of size 1 takes the output's shape).

Example:
    >>> import torch, torch.nn as nn
    >>> loss = make_loss(None)
    >>> batch = (torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 1, 0]))
    >>> loss(nn.Linear(3, 2), batch).dim()
    0
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)

from autoinit.errors import ConfigError, DataError

__all__ = ["LossFn", "binary_labels", "check_batched", "fetch_batches", "fields_of", "is_distribution",
           "loss_fn_for", "make_loss", "move_batch", "own_loss", "soft_labels", "split_batch",
           "target_of"]

LossFn = Callable[[nn.Module, Any], torch.Tensor]
_TARGET_KEYS = ("target", "targets", "y", "label", "labels")


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(inputs, target)`` from a tuple/list pair or a dict (a dataclass) with a target key."""
    batch = fields_of(batch)
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        key = next((k for k in _TARGET_KEYS if k in batch), None)
        if key is not None:
            rest = {k: v for k, v in batch.items() if k != key}
            return (next(iter(rest.values())) if len(rest) == 1 else rest), batch[key]
    raise DataError(
        "batch must be an (inputs, target) pair or a dict with one of the keys "
        f"{list(_TARGET_KEYS)}, got {_describe(batch)}; pass loss_fn(model, batch) for other formats"
    )


def fields_of(value: Any) -> Any:
    """A dataclass instance as the dict of its fields (``None`` ones left out, as a Hugging Face
    ``ModelOutput`` leaves them), anything else as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                if getattr(value, f.name) is not None}
    return value


def _describe(batch: Any) -> str:
    if isinstance(batch, Mapping):
        return f"a dict with keys {sorted(map(str, batch))}"
    if isinstance(batch, tuple | list):
        return f"a {type(batch).__name__} of {len(batch)} items"
    return type(batch).__name__


def predict(model: nn.Module, inputs: Any) -> torch.Tensor:
    """The model's prediction on a batch's inputs, read as the default loss reads it: dict inputs
    by keyword, tuple inputs spread over a ``forward`` that takes several; a tuple's first item, a
    dict's or a namedtuple's ``logits`` (a dict without them refused with a ``ConfigError``)."""
    if isinstance(inputs, Mapping):
        return _prediction(model(**inputs))
    if type(inputs) in (tuple, list) and _required_positionals(type(model)) > 1:
        return _prediction(model(*inputs))  # forward(x1, x2): the inputs spread over it
    return _prediction(model(inputs))


@functools.cache
def _required_positionals(cls: type) -> int:
    """How many positional parameters a module class's ``forward`` requires (0: unknown)."""
    try:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # after self
    except (TypeError, ValueError):
        return 0
    return sum(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               for p in params)


def _prediction(out: Any) -> torch.Tensor:
    out = fields_of(out)  # a dataclass output (logits, hidden states, ...) read as a dict
    if isinstance(out, tuple) and "logits" in getattr(out, "_fields", ()):
        return out.logits  # a namedtuple's logits wherever the field stands: Out(features, logits)
    if isinstance(out, tuple | list):  # e.g. nn.LSTM returns (output, state)
        out = out[0]
    if isinstance(out, Mapping) and "logits" not in out and len(out) != 1:
        raise ConfigError(f"the model returned a dict with keys {sorted(map(str, out))} and no "
                          "'logits': autoinit cannot tell which is the prediction; pass "
                          "loss_fn(model, batch)")
    if isinstance(out, Mapping):
        out = out.get("logits", next(iter(out.values())))
    return out


def default_criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer or boolean targets (binary cross-entropy on one logit per
    target), mean squared error for float targets (a search on soft or one-hot float labels
    takes ``"cross_entropy"`` instead, :func:`soft_labels`)."""
    if not isinstance(target, torch.Tensor):
        raise ConfigError(f"target must be a tensor, got {type(target).__name__}")
    if _labels(target):
        if output.numel() == target.numel():
            return _binary_cross_entropy(output, target)
        return _cross_entropy(output, target)
    if target.is_floating_point():
        return _mse(output, target)
    raise ConfigError(f"cannot choose a loss for targets of dtype {target.dtype}; "
                      "pass loss_fn='cross_entropy', 'mse', a criterion or loss_fn(model, batch)")


def _labels(target: torch.Tensor) -> bool:
    """Whether ``target`` holds class labels: integers or booleans."""
    return target.dtype == torch.bool or not (target.is_floating_point() or target.is_complex())


def is_distribution(target: torch.Tensor) -> bool:
    """Whether float ``target`` holds class probabilities on its last dimension (of at least 2
    classes): soft or one-hot labels, every row non-negative and summing to 1."""
    if target.dim() < 2 or target.shape[-1] < 2 or not target.numel():
        return False
    return bool((target >= 0).all()) and bool(
        torch.allclose(target.sum(-1), target.new_ones(()).expand(target.shape[:-1]), atol=1e-3))


def soft_labels(batches: list[Any]) -> bool:
    """Whether every batch's target is float class probabilities (:func:`is_distribution`):
    soft or one-hot labels, for which a search takes cross-entropy rather than the default's
    mean squared error. Decided once for all the batches: a per-batch choice would mix two
    losses where a multi-hot batch happens to hold one label per row."""
    return _every_float_target(batches, is_distribution)


def binary_labels(batches: list[Any]) -> bool:
    """Whether every batch's target is float and holds only 0s and 1s: binary or multi-label
    targets as ``nn.BCEWithLogitsLoss`` takes them. Decided once for all the batches, as
    :func:`soft_labels`."""
    return _every_float_target(batches, lambda t: bool(t.numel()) and bool(((t == 0) | (t == 1)).all()))


def _every_float_target(batches: list[Any], test: Callable[[torch.Tensor], bool]) -> bool:
    """Whether every batch has a float tensor target that passes ``test``; ``False`` where a
    batch has a format only your ``loss_fn`` reads."""
    targets = []
    for batch in batches:
        try:
            targets.append(split_batch(batch)[1])
        except ConfigError:
            return False
    return bool(targets) and all(isinstance(t, torch.Tensor) and t.is_floating_point() and test(t)
                                 for t in targets)


def loss_fn_for(loss_fn: str | nn.Module | LossFn | None, model: nn.Module, batches: list[Any]
                ) -> str | nn.Module | LossFn | None:
    """``loss_fn``; for the default (``None``), where the model has no loss of its own
    (:func:`own_loss`), ``"cross_entropy"`` when every batch holds soft or one-hot float labels
    (:func:`soft_labels`) and ``"binary_cross_entropy"`` when every batch holds float 0/1 labels
    (:func:`binary_labels`): the loss a search and a comparison train autoinit's own loop on."""
    if loss_fn is None and batches and not own_loss(model, batches[0]):
        if soft_labels(batches):
            return "cross_entropy"
        if binary_labels(batches):
            return "binary_cross_entropy"
    return loss_fn


def _one_per_class(output: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``target`` holds one value per output, classes on the last dimension of both."""
    return target.numel() == output.numel() and target.shape[-1:] == output.shape[-1:]


def _mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, one output per target: a ``(B,)`` target against a ``(B, 1)`` output
    takes the output's shape (torch would broadcast them to ``(B, B)``)."""
    if target.numel() != output.numel():
        raise ConfigError(
            f"mean squared error needs one output per target, got output {tuple(output.shape)} "
            f"and target {tuple(target.shape)} of {target.dtype}: class indices must be integers "
            "(target.long()) for cross-entropy; else pass loss_fn")
    return F.mse_loss(output, target.reshape(output.shape))


def _cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over classes on the last dimension (``(B, C)``, sequence logits
    ``(B, T, C)``), or on dimension 1 as torch has them (``(B, C, d1, ...)`` against a
    ``(B, d1, ...)`` target: a segmentation's or a 1-D convolution's per-position logits).
    Integer and boolean targets are class indices, float targets of the output's shape class
    probabilities (on the last dimension, or on dimension 1 where only there they sum to 1)."""
    if target.is_floating_point() and target.shape == output.shape and output.dim() > 2 \
            and not is_distribution(target) and is_distribution(target.movedim(1, -1)):
        return F.cross_entropy(output, target.to(output.dtype))  # (B, C, d1, ...), as torch's
    if target.is_floating_point() and _one_per_class(output, target):
        return F.cross_entropy(output.reshape(-1, output.shape[-1]),
                               target.reshape(-1, target.shape[-1]).to(output.dtype))
    target = target.long() if _labels(target) else target
    if output.dim() > 2 and target.shape != output.shape[:-1] \
            and target.shape == output.shape[:1] + output.shape[2:]:
        return F.cross_entropy(output, target)
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


def _binary_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits for integer 0/1 targets, one logit per target (a
    ``(B, 1)`` output against ``(B,)`` classes: cross-entropy over one class is always 0);
    negative targets are ignored, as torch's ``ignore_index`` has them."""
    kept = target >= 0
    if bool((target > 1).any()):
        raise ConfigError(
            f"the model gives one logit per target (output {tuple(output.shape)}, target "
            f"{tuple(target.shape)}) but the integer targets go up to {int(target.max())}, not "
            "only 0 and 1: give the model one output per class for cross-entropy, make the "
            "targets float for mean squared error, or pass loss_fn")
    return F.binary_cross_entropy_with_logits(output.reshape(target.shape)[kept],
                                              target[kept].to(output.dtype))


def _float_labels(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Float 0/1 targets read as the integer labels they are: binary cross-entropy on one logit
    per target (a binary classifier, multi-label targets), cross-entropy over the classes on
    the last dimension otherwise. Soft targets between 0 and 1 (label smoothing) take binary
    cross-entropy as they are, one logit per target (``.long()`` would make 0.9 a 0)."""
    if target.is_floating_point() and not bool((target == target.round()).all()):
        if output.numel() != target.numel():
            raise ConfigError(
                f"binary cross-entropy of targets that are not whole numbers (as "
                f"{float(target[target != target.round()][0]):g}) needs one logit per target, got "
                f"output {tuple(output.shape)} and target {tuple(target.shape)}")
        return F.binary_cross_entropy_with_logits(output.reshape(target.shape),
                                                  target.to(output.dtype))
    return default_criterion(output, target.long())


_NAMED = {"cross_entropy": _cross_entropy, "mse": _mse, "binary_cross_entropy": _float_labels}


def make_loss(loss_fn: str | nn.Module | LossFn | None) -> LossFn:
    """Normalize the user's ``loss_fn`` to ``loss(model, batch) -> scalar tensor``."""
    if loss_fn is None:
        criterion = default_criterion
    elif isinstance(loss_fn, str):
        if loss_fn not in _NAMED:
            raise ConfigError(f"loss_fn must be one of {sorted(_NAMED)}, a criterion or a "
                              f"callable(model, batch), got {loss_fn!r}")
        named = _NAMED[loss_fn]

        def criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return named(output, target)
    elif isinstance(loss_fn, nn.Module):
        def criterion(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return loss_fn(output, _unit_aligned(output, target))
    elif callable(loss_fn):
        return _checked(loss_fn)
    else:
        raise ConfigError(f"loss_fn must be a name, a criterion or a callable, got {loss_fn!r}")

    def loss(model: nn.Module, batch: Any) -> torch.Tensor:
        if loss_fn is None and _has_training_step(type(model)):
            return _training_step_loss(model, batch)
        if loss_fn is None and own_loss(model, batch):
            _refuse_one_target(batch["labels"])
            out = model(**batch)
            own = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
            if isinstance(own, torch.Tensor):
                return own
            return criterion(_prediction(out), batch["labels"])
        inputs, target = _split_for(model, batch)
        _refuse_one_target(target)
        return criterion(predict(model, inputs), target)

    return _checked(loss)


_UNBATCHED = ("a DataLoader with batch_size=None, or a dataset iterated as it is, yields single "
              "examples: pass DataLoader(dataset, batch_size=...)")


def _refuse_one_target(target: Any) -> None:
    """Refuse a single example's target (a number, a 0-dim tensor): the batch is one example,
    which the default losses would silently train on alone at every step (``(C,)`` logits
    against a 0-dim class are torch's unbatched cross-entropy)."""
    if isinstance(target, bool | int | float) or (
            isinstance(target, torch.Tensor) and target.dim() == 0):
        shown = type(target).__name__ if not isinstance(target, torch.Tensor) else "0-dim tensor"
        raise DataError(f"the batch's target is one value (a {shown}), not a batch of them: "
                        f"{_UNBATCHED}; or pass loss_fn(model, batch) to train on it as it is")


def target_of(batch: Any) -> torch.Tensor:
    """The target the default loss reads: :func:`split_batch`'s, or the last item of a flat
    ``(x1, ..., xk, target)``."""
    batch = fields_of(batch)
    if type(batch) in (tuple, list) and len(batch) > 2:
        return batch[-1]
    return split_batch(batch)[1]


def _split_for(model: nn.Module, batch: Any) -> tuple[Any, torch.Tensor]:
    """:func:`split_batch`, and a flat ``(x1, ..., xk, target)`` (a ``TensorDataset(x1, x2, y)``)
    for a ``forward`` that requires exactly ``k >= 2`` inputs."""
    if type(batch) in (tuple, list) and len(batch) > 2 \
            and _required_positionals(type(model)) == len(batch) - 1:
        return tuple(batch[:-1]), batch[-1]
    return split_batch(batch)


def _unit_aligned(output: Any, target: Any) -> Any:
    """``target`` in ``output``'s shape where the two differ only by dimensions of size 1
    (``(B,)`` against ``(B, 1)``: a criterion such as ``nn.MSELoss`` would broadcast them to
    ``(B, B)``), else as it is."""
    if isinstance(output, torch.Tensor) and isinstance(target, torch.Tensor) \
            and target.shape != output.shape \
            and target.squeeze().shape == output.squeeze().shape:
        return target.reshape(output.shape)
    return target


def own_loss(model: nn.Module, batch: Any) -> bool:
    """Whether the default loss asks ``model`` for its own: its ``training_step``'s, or a dict
    batch with ``labels`` and a ``forward`` that takes them (a model returning no ``loss`` then
    falls back to the default)."""
    return _has_training_step(type(model)) or (
        isinstance(batch, Mapping) and "labels" in batch and _takes_labels(type(model)))


_STEP_LIBRARIES = ("lightning", "pytorch_lightning")  # their base training_step only warns


@functools.cache
def _has_training_step(cls: type) -> bool:
    """Whether a module class defines a ``training_step(batch, batch_idx)`` of its own (a
    LightningModule's)."""
    owner = next((c for c in cls.__mro__ if "training_step" in vars(c)), None)
    if owner is None or owner.__module__.split(".")[0] in _STEP_LIBRARIES:
        return False
    try:
        inspect.signature(owner.training_step).bind(None, None, 0)  # (self, batch, batch_idx)
    except (TypeError, ValueError):
        return False
    return True


def _training_step_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The loss ``model.training_step(batch, 0)`` returns (a tensor or a dict with ``"loss"``);
    its ``self.log`` calls warn without a trainer, and are ignored. A module that steps its own
    optimizers (``automatic_optimization = False``) cannot score a probe this way."""
    if getattr(model, "automatic_optimization", True) is False:
        raise ConfigError(
            f"{type(model).__name__} steps its own optimizers (automatic_optimization=False), so "
            "its training_step cannot score the probes; pass loss_fn=(model, batch) -> loss, or "
            "train_step= with score=")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.training_step(batch, 0)
    return out["loss"] if isinstance(out, Mapping) else out


@functools.cache
def _takes_labels(cls: type) -> bool:
    """Whether a module class's ``forward`` takes ``labels`` (and so may compute its own loss)."""
    try:
        return "labels" in inspect.signature(cls.forward).parameters
    except (TypeError, ValueError):
        return False


def _checked(loss: LossFn) -> LossFn:
    def checked(model: nn.Module, batch: Any) -> torch.Tensor:
        value = loss(model, batch)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(f"loss must be a scalar tensor, got {shape}")
        return value.reshape(())

    return checked


def move_batch(batch: Any, device: torch.device | str) -> Any:
    """``batch`` with every tensor in it moved to ``device`` (tuples, namedtuples, lists, dicts,
    dataclasses and ``PackedSequence`` kept)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, PackedSequence):  # its batch sizes stay on the CPU, as torch needs
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: move_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(move_batch(v, device) for v in batch))
    if isinstance(batch, tuple | list):
        return type(batch)(move_batch(v, device) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        return dataclasses.replace(batch, **{f.name: move_batch(getattr(batch, f.name), device)
                                             for f in dataclasses.fields(batch) if f.init})
    return batch


def fetch_batches(loader: Any, count: int, device: torch.device | str, what: str) -> list[Any]:
    """Up to ``count`` batches from ``loader``, moved to ``device`` once. A source of single
    examples is refused (:func:`check_batched`)."""
    if isinstance(loader, Dataset) and not isinstance(loader, IterableDataset):
        check_batched(loader, None, what)  # before its items are read
    out = []
    try:
        iterator = iter(loader)
    except TypeError:
        raise DataError(f"{what} must be iterable (a DataLoader), got "
                        f"{type(loader).__name__}") from None
    for batch in iterator:
        if not out:
            check_batched(loader, batch, what)
        out.append(move_batch(batch, device))
        if len(out) >= count:
            break
    if not out:
        raise DataError(f"{what} yielded no batch{_dropped(loader)}")
    return out


def check_batched(loader: Any, first: Any, what: str) -> None:
    """Refuse a ``loader`` (named ``what``) of single examples rather than batches, told by
    itself (:func:`_check_loader`) or by its ``first`` item (:func:`_check_first`)."""
    _check_loader(loader, what)
    if first is not None:
        _check_first(first, what)


def _check_loader(loader: Any, what: str) -> None:
    """Refuse a loader whose items are single examples by construction: a map-style
    ``Dataset``, a Hugging Face ``datasets.Dataset`` (:func:`_hf_rows`), a
    ``DataLoader(batch_size=None)`` over either of a ``TensorDataset`` or such a dataset,
    sampled one index at a time (their rows; a ``sampler=BatchSampler(...)`` indexes them by
    batches)."""
    name = type(loader).__name__
    if isinstance(loader, Dataset) and not isinstance(loader, IterableDataset):
        raise DataError(f"{what} is a {name}, whose items are single examples: "
                        "pass torch.utils.data.DataLoader(dataset, batch_size=...)")
    if _hf_rows(loader):
        raise DataError(f"{what} is a Hugging Face {name}, whose items are single examples: "
                        "pass DataLoader(dataset.with_format('torch'), batch_size=..., "
                        "collate_fn=...) (a DataCollator pads text)")
    if isinstance(loader, DataLoader) and loader.batch_size is None \
            and isinstance(loader.sampler, SequentialSampler | RandomSampler) \
            and (isinstance(_base(loader.dataset), TensorDataset) or _hf_rows(loader.dataset)):
        raise DataError(f"{what} is a DataLoader with batch_size=None over a "
                        f"{type(loader.dataset).__name__}, whose items are its single rows: "
                        "pass DataLoader(dataset, batch_size=...)")


def _hf_rows(dataset: Any) -> bool:
    """Whether ``dataset`` is a Hugging Face map-style dataset, whose items are rows (told by
    its module, without importing ``datasets``; its ``IterableDataset`` may be batched)."""
    return type(dataset).__module__.split(".")[0] == "datasets" \
        and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")


def _base(dataset: Any) -> Any:
    """The dataset under any ``Subset``."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _check_first(batch: Any, what: str) -> None:
    """Refuse a first batch of Python values only, a number among them (``{"x": [...],
    "label": 3}``): a collated batch holds tensors, so this is one example (a Hugging Face
    dataset's row, a DataLoader with batch_size=None)."""
    items = fields_of(batch)
    items = list(items.values()) if isinstance(items, Mapping) else \
        items if isinstance(items, tuple | list) else []
    if any(isinstance(v, bool | int | float) for v in items) \
            and not any(map(_holds_tensor, items)):
        raise DataError(f"the first batch of {what} is {_describe(batch)} of Python values and "
                        f"no tensor, a single example: {_UNBATCHED}")


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor | PackedSequence):
        return True
    if isinstance(value, Mapping):
        return any(map(_holds_tensor, value.values()))
    return isinstance(value, tuple | list) and any(map(_holds_tensor, value))


def _dropped(loader: Any) -> str:
    """Why a ``DataLoader`` yielded nothing where its ``drop_last`` dropped its one short batch."""
    try:
        size, batch_size = len(loader.dataset), loader.batch_size
    except (AttributeError, TypeError):
        return ""
    if not getattr(loader, "drop_last", False) or not size or not batch_size or size >= batch_size:
        return ""
    return f": {size} examples and batch_size={batch_size} with drop_last=True"
