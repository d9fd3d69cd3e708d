"""How autoinit sets Optuna up, for a study in this process and for its worker processes alike:
the sampler (stage 1 the queued named candidates, stage 2 a refinement around the best of them),
and Optuna's logging kept quiet while a search runs."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import optuna

from autoinit.errors import ConfigError
from autoinit.refine import RefineSampler

__all__ = ["STAGE2_SAMPLERS", "make_sampler", "quiet_optuna"]


STAGE2_SAMPLERS = ("local", "tpe", "gp", "axes")  # "local": no model, every value a step from the best
STAGE2_DEFAULT = "local"  # chosen by measurement: docs/search_strategy.md


def make_sampler(seed: int, parallel: bool, stage2: str = STAGE2_DEFAULT
                 ) -> optuna.samplers.BaseSampler:
    """The sampler every search uses: a :class:`~autoinit.refine.RefineSampler` that, once a
    named candidate has completed, keeps the best one's families and bias rules and refines its
    continuous parameters with ``stage2``: ``"local"`` (normal steps around the best trial
    that shares them, the measured best), ``"axes"`` (one group's scale ×2 or ×½ at a time
    first, then local steps), ``"gp"`` (Optuna's GPSampler) or ``"tpe"`` (multivariate TPE),
    both fitted ones after four local steps. Before that, multivariate TPE
    over the whole space. ``parallel``: trials running at once (workers, processes) lie constant.

    Example:
        >>> make_sampler(0, parallel=False, stage2="gp").inner.__class__.__name__
        'GPSampler'
    """
    if stage2 not in STAGE2_SAMPLERS:
        raise ConfigError(f"stage2 must be one of {list(STAGE2_SAMPLERS)}, got {stage2!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        first = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                           constant_liar=parallel, n_startup_trials=5)
        inner = {
            "local": lambda: optuna.samplers.RandomSampler(seed=seed),
            "axes": lambda: optuna.samplers.RandomSampler(seed=seed),
            "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                                      constant_liar=parallel, n_startup_trials=4),
            "gp": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=4,
                                                    warn_independent_sampling=False),
        }[stage2]()
    return RefineSampler(inner, first, seed, axes=stage2 == "axes")


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
