"""Every default of a search, stated once: :func:`autoinit.fit` / :func:`~autoinit.search.run_search`,
:class:`~autoinit.probe.ProbeConfig`, the study file (:mod:`autoinit.config`) and the command line
read them from :data:`DEFAULTS`.

Example:
    >>> DEFAULTS.n_trials, DEFAULTS.probe_steps, DEFAULTS.storage
    (30, 100, 'sqlite:///autoinit.db')
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULTS", "Defaults"]


@dataclass(frozen=True)
class Defaults:
    """The default of each option a search shares with the study file and the command line."""

    n_trials: int = 30  # trials the study holds, baselines included
    probe_steps: int = 100  # training steps per probe
    eval_every: int = 25  # probe steps between held-out evaluations
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


DEFAULTS = Defaults()
