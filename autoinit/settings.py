"""Every default of a search, stated once, and the one check of each numeric option.

:func:`autoinit.fit` / :func:`~autoinit.search.run_search`, :class:`~autoinit.probe.ProbeConfig`,
the study file (:mod:`autoinit.config`) and the command line read their defaults from
:data:`DEFAULTS`, and check a value with :func:`check_option`, which each caller raises in its
own words (``n_trials`` for ``fit``, ``search.n_trials`` for a study file).

Example:
    >>> DEFAULTS.n_trials, DEFAULTS.probe_steps, DEFAULTS.storage
    (30, 100, 'sqlite:///autoinit.db')
    >>> check_option("n_trials", -3)
    Traceback (most recent call last):
    ...
    autoinit.errors.ConfigError: n_trials must be a positive integer, got -3
    >>> check_option("seed", 5)
    5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from autoinit.errors import ConfigError

__all__ = ["DEFAULTS", "Defaults", "broken_rule", "check_option"]

T = TypeVar("T")


@dataclass(frozen=True)
class Defaults:
    """The default of each option a search shares with the study file and the command line."""

    n_trials: int = 30  # trials the study holds, baselines included
    probe_steps: int = 100  # training steps per probe
    eval_every: int = 25  # probe steps between held-out evaluations
    val_batches: int = 4  # held-out batches a probe is scored on
    lr: float = 1e-3
    optimizer: str = "adam"
    # the fraction of a probe's steps ending in a linear lr decay to 0: off, since on 5 tasks it
    # ranked inits worse than a constant rate at equal length (docs/probe_ranking.md)
    cooldown: float = 0.0
    rungs: int = 1  # successive-halving rungs of probe_steps * 3^i steps (1: no halving)
    objective: str = "final"  # score: the held-out loss at the end ("mean": along the curve)
    groups: str = "role"  # layers sharing one choice
    n_jobs: int = 1
    seed: int = 0
    storage: str = "sqlite:///autoinit.db"  # a study file's Optuna storage (fit keeps it in memory)
    experiment: str = "autoinit"  # the MLflow experiment when nothing names one
    compare_steps: int = 1000  # one full training: `autoinit compare` and the cost ratio R
    compare_seeds: int = 3  # full trainings per method in `autoinit compare`
    # with train_steps, the search's budget in steps as a fraction of that training; chosen so
    # that the measured cost, overhead included, stays at R <= 0.5 (docs/search_cost.md)
    budget_fraction: float = 0.3


DEFAULTS = Defaults()


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _non_negative_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _positive_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _fraction(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= 0.5)


_POSITIVE_INT = ("a positive integer", _positive_int)
# option name -> (the rule in words, the test); the study file's keys use the same names
_RULES: dict[str, tuple[str, Callable[[object], bool]]] = {
    **dict.fromkeys(("n_trials", "probe_steps", "steps", "eval_every", "budget_steps", "n_jobs",
                     "val_batches", "seeds", "threads", "rungs", "train_steps"), _POSITIVE_INT),
    # a cooldown longer than half the probe is a schedule, not a cooldown
    "cooldown": ("a fraction in [0, 0.5] of the probe's steps", _fraction),
    "seed": ("a non-negative integer", _non_negative_int),
    "timeout": ("a positive number", _positive_number),
    "lr": ("a positive finite number", _positive_number),
    "population": _POSITIVE_INT,  # candidates trained at once (1: one at a time)
}


def broken_rule(name: str, value: object) -> str | None:
    """The rule ``value`` breaks as option ``name`` (``"a positive integer"``), or ``None``."""
    rule, holds = _RULES[name]
    return None if holds(value) else rule


def check_option(name: str, value: T, key: str | None = None,
                 error: type[Exception] = ConfigError) -> T:
    """``value`` if it is valid for option ``name``, else ``error`` naming ``key`` (default: the
    name), the rule and the value received."""
    rule = broken_rule(name, value)
    if rule is not None:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise error(f"{key or name} must be {rule}, got {shown}")
    return value
