"""Hugging Face ``Trainer``: search the initialization when training begins.

:class:`AutoinitTrainerCallback` runs :func:`autoinit.fit` in ``on_train_begin`` on the trainer's
train (and, when it has one, eval) dataloader with the model's own loss (``model(**batch).loss``),
then training goes on from the chosen weights (written in place, so the trainer's optimizer keeps
them). When the trainer reports to MLflow (``report_to="mlflow"``), the search's run is nested in
the trainer's run. A model loaded with ``from_pretrained`` keeps every weight it loaded: only the
parameters the checkpoint lacked (a new head) are searched, unless ``only=`` names others;
frozen parameters are always left alone.

Example:
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> from autoinit.integrations.hf import new_parameters
    >>> model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    >>> len(new_parameters(model)) == len(list(model.named_parameters()))  # nothing loaded
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from autoinit.integrations._callbacks import SearchOptions
from autoinit.integrations._optional import require

transformers = require("transformers", "autoinit.integrations.hf")

__all__ = ["AutoinitTrainerCallback", "model_loss", "new_parameters"]


def model_loss(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """The loss a Hugging Face model computes itself from a batch holding ``labels``."""
    return model(**batch).loss


def new_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters a checkpoint did not provide (all of them for a model built from a
    config): ``from_pretrained`` flags every tensor it loaded."""
    loaded = bool(getattr(model, "name_or_path", ""))
    return [n for n, p in model.named_parameters()
            if not (loaded and getattr(p, "_is_hf_initialized", False))]


class AutoinitTrainerCallback(SearchOptions, transformers.TrainerCallback):
    """Run an autoinit search at train begin; the result is kept in :attr:`result`.

    Args:
        only, exclude: regular expressions on parameter names (default ``only``: the parameters
            the checkpoint did not provide, see :func:`new_parameters`).
        **fit_options: passed to :func:`autoinit.fit` (``n_trials``, ``probe_steps``, ``lr``,
            ``budget_steps``, ``mlflow``, ...).
    """

    def on_train_begin(self, args: transformers.TrainingArguments,
                       state: transformers.TrainerState, control: transformers.TrainerControl,
                       model: nn.Module | None = None,
                       train_dataloader: Iterable[Any] | None = None,
                       eval_dataloader: Iterable[Any] | None = None,
                       **kwargs: Any) -> transformers.TrainerControl:
        from autoinit.api import fit

        only = self.only if self.only is not None else _anchored(new_parameters(model))
        if not only:  # everything came from the checkpoint and nothing was named
            return control
        options = {"loss_fn": model_loss, "val_dataloader": eval_dataloader, "only": only,
                   "exclude": self.exclude, "lr": args.learning_rate, **self.fit_options}
        self.result = fit(model, train_dataloader, **options)
        return control


def _anchored(names: list[str]) -> list[str]:
    return [f"^{re.escape(n)}$" for n in names]
