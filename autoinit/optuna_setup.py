"""How autoinit sets Optuna up, for a study in this process and for its worker processes alike:
the sampler, and Optuna's logging kept quiet while a search runs."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import optuna

__all__ = ["make_sampler", "quiet_optuna"]


def make_sampler(seed: int, parallel: bool) -> optuna.samplers.BaseSampler:
    """The TPE sampler every search uses: multivariate over grouped parameters, five random
    trials first; ``parallel``: trials running at once (workers, processes) lie constant.

    Example:
        >>> make_sampler(0, parallel=False).__class__.__name__
        'TPESampler'
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          constant_liar=parallel, n_startup_trials=5)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial INFO lines off while a search runs (autoinit reports progress itself),
    and no "Trial N failed ... KeyboardInterrupt" warning with its traceback for a trial cut by
    Ctrl-C (it is queued again on the next run)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logger, hide = logging.getLogger("optuna.study._optimize"), _HideInterrupted()
    logger.addFilter(hide)
    try:
        yield
    finally:
        logger.removeFilter(hide)
        optuna.logging.set_verbosity(level)


class _HideInterrupted(logging.Filter):
    """Drops Optuna's two warnings about a trial that failed by ``KeyboardInterrupt``."""

    def __init__(self) -> None:
        super().__init__()
        self.cut: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self.cut = text.split(" failed", 1)[0]  # "Trial 4"
            return False
        return not (self.cut and text.startswith(f"{self.cut} failed with value"))
