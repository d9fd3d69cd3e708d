"""PyTorch Lightning: search the initialization when ``Trainer.fit`` starts.

:class:`AutoinitCallback` runs :func:`autoinit.fit` in ``on_fit_start`` on the trainer's train and
validation dataloaders, scoring candidates with the module's own ``training_step`` loss; the
chosen weights are written into the module in place before the first step. When the trainer logs
with an ``MLFlowLogger``, the search's run is nested in the logger's run, in its experiment and
tracking URI. A module that steps its own optimizers (``automatic_optimization = False``: a GAN's
two) needs ``loss_fn=``, or ``train_step=`` with ``score=``. Pretrained weights stay untouched:
pass ``only=`` (the new head) or ``exclude=`` (the pretrained body) as regular expressions on
parameter names; frozen parameters are always left alone.

Example:
    >>> from autoinit.integrations.lightning import AutoinitCallback
    >>> callback = AutoinitCallback(n_trials=12, probe_steps=20, only=r"^head\\.")
    >>> # lightning.Trainer(callbacks=[callback], ...).fit(module, train_loader, val_loader)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from autoinit.errors import ConfigError
from autoinit.integrations._callbacks import SearchOptions
from autoinit.integrations._optional import require

lightning = require("lightning", "autoinit.integrations.lightning")

__all__ = ["AutoinitCallback", "training_step_loss"]


def training_step_loss(module: nn.Module, batch: Any) -> torch.Tensor:
    """The loss ``module.training_step(batch, 0)`` returns (a tensor or a dict with ``"loss"``).

    ``self.log`` calls inside it are ignored: the probe's copies of the module have no trainer.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = module.training_step(batch, 0)
    return out["loss"] if isinstance(out, Mapping) else out


class AutoinitCallback(SearchOptions, lightning.pytorch.Callback):
    """Run an autoinit search at fit start; the result is kept in :attr:`result`.

    Args:
        only, exclude: regular expressions on parameter names (see :func:`autoinit.fit`).
        **fit_options: passed to :func:`autoinit.fit` (``n_trials``, ``probe_steps``, ``lr``,
            ``budget_steps``, ``mlflow``, ``tracking_uri``, ...).
    """

    def on_fit_start(self, trainer: lightning.pytorch.Trainer,
                     pl_module: lightning.pytorch.LightningModule) -> None:
        from autoinit.api import fit

        given = set(self.fit_options)
        if not pl_module.automatic_optimization and "loss_fn" not in given and not (
                {"train_step", "score"} <= given):
            raise ConfigError(
                f"{type(pl_module).__name__} steps its own optimizers (automatic_optimization="
                "False), so its training_step cannot score the probes; pass loss_fn=(module, "
                "batch) -> loss, or train_step= with score=, to AutoinitCallback")
        train, val = _dataloaders(trainer)
        own = pl_module.automatic_optimization  # else your train_step and score train and score
        options = {"loss_fn": training_step_loss if own else None, "val_dataloader": val,
                   "only": self.only, "exclude": self.exclude, **_mlflow_target(trainer), **self.fit_options}
        self.result = fit(pl_module, train, **options)


def _dataloaders(trainer: lightning.pytorch.Trainer) -> tuple[Any, Any]:
    """The trainer's train dataloader and its first validation dataloader (or ``None``)."""
    trainer.fit_loop.setup_data()
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    val_loop.setup_data()
    val = trainer.val_dataloaders
    if isinstance(val, list | tuple):
        val = val[0] if val else None
    return trainer.train_dataloader, val


def _mlflow_target(trainer: lightning.pytorch.Trainer) -> dict[str, str]:
    """Where an ``MLFlowLogger`` of the trainer logs: its tracking URI and run, as fit options."""
    from lightning.pytorch.loggers import MLFlowLogger

    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            return {"tracking_uri": logger.experiment.tracking_uri, "parent_run_id": logger.run_id}
    return {}
