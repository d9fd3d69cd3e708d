"""Many workers on one study: a worker's trial loop that takes exactly the trials the study
still needs and rides out a storage that goes away.

* **Exactly N trials.** Workers decide to start a trial by counting the study's finished and
  running trials, but two workers can count at the same instant and both start one: eight
  workers started together overshot a 10-trial study by two. So each trial also checks its
  place once it exists: a trial preceded by ``n_trials`` trials that are not failed (finished,
  running or queued) is surplus; it is not run, and ends failed with the user attribute
  ``surplus`` (failed trials do not count, and a surplus one is never retried).
* **A trial failed by a peer.** While the database is away no heartbeat gets through; a peer
  may then fail this worker's running trial as stale and queue it again. Optuna refuses to
  tell the finished trial; the worker drops its copy and goes on.

Example:
    >>> import optuna
    >>> study = optuna.create_study()
    >>> optimize_patiently(study, lambda t: t.suggest_float("x", 0, 1), None,
    ...                    [lambda s, t: len(s.trials) >= 3 and s.stop()], n_trials=3)
    >>> len(study.trials)
    3
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from autoinit.errors import FAILURE, StorageError

__all__ = ["SURPLUS", "optimize_patiently"]

SURPLUS = "surplus"  # user attribute of a trial not run: the study already had its trials


@dataclass
class _Guarded:
    """``objective``, run only when its trial is one of the first ``n`` trials not failed
    (``n=None``: always); a storage fault inside it stops the worker instead of failing the
    trial (the storage could not record that anyway)."""

    objective: Callable[[optuna.Trial], float]
    n: int | None

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            if self.n is not None:
                self._check_place(trial, self.n)
            return self.objective(trial)
        except StorageError as exc:
            raise _StorageFault(exc) from exc

    @staticmethod
    def _check_place(trial: optuna.Trial, n: int) -> None:
        ahead = sum(t.state != TrialState.FAIL for t in trial.study.get_trials(deepcopy=False)
                    if t.number < trial.number)
        if ahead >= n:
            _unlogged.add(trial.number)
            trial.set_user_attr(SURPLUS, True)
            trial.set_user_attr(FAILURE, f"not run: the study already has its {n} trials")
            raise _Surplus(f"trial {trial.number} not run: {ahead} trials come before it")


class _Surplus(Exception):
    """A trial started by a worker that counted at the same instant as another."""


_unlogged: set[int] = set()  # surplus trials of this process, whose failure is not an error


class _QuietSurplus(logging.Filter):
    """Drops Optuna's "Trial N failed ..." warnings (and traceback) for surplus trials."""

    def filter(self, record: logging.LogRecord) -> bool:
        words = str(record.msg).split(maxsplit=2)
        return not (len(words) > 1 and words[0] == "Trial" and words[1].isdigit()
                    and int(words[1]) in _unlogged)


logging.getLogger("optuna.study._optimize").addFilter(_QuietSurplus())


class _StorageFault(BaseException):
    """Carries a :class:`StorageError` past Optuna's ``catch=(Exception,)``: the trial is not
    marked failed (it stays running; its heartbeat lapses and it is retried on resume)."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


def optimize_patiently(study: optuna.Study, objective: Callable, timeout: float | None,
                       callbacks: list, n_trials: int | None = None) -> None:
    """``study.optimize`` until ``callbacks`` stop it; with ``n_trials``, trials beyond the
    first ``n_trials`` are not run (see the module's docstring). Goes on when a peer failed
    this worker's trial meanwhile. A :class:`StorageError` stops the worker and is raised as
    itself, whether it came from inside a trial or while the trial was told (where Optuna 5
    hides it behind an ``AssertionError`` or ``UnboundLocalError`` of its own)."""
    objective = _Guarded(objective, n_trials)
    start = time.monotonic()
    while True:
        left = None if timeout is None else timeout - (time.monotonic() - start)
        if left is not None and left <= 0:
            return
        try:
            study.optimize(objective, timeout=left, callbacks=callbacks, catch=(Exception,),
                           gc_after_trial=False)
            return
        except _StorageFault as fault:
            raise fault.error from None
        except Exception as exc:  # Optuna's own errors may hide the storage's: find it
            chain = _context_chain(exc)
            if error := next((e for e in chain if isinstance(e, StorageError)), None):
                raise error from None
            if not any(str(e).startswith("Cannot tell a FAIL trial") for e in chain):
                raise
            warnings.warn("a trial of this worker was failed by another worker while the storage "
                          "was away and is queued again; this worker goes on", stacklevel=2)


def _context_chain(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__context__
    return chain
