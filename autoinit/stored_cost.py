"""A search's cost, kept in its study: a rerun that re-runs nothing reports what the search cost.

A rerun of a finished study on the same storage (its trials all there, its selection round
stored) trains nothing; its own few seconds of wall time, set against the stored probe steps,
would be neither this run's cost nor the search's. So the run that completes a search stores
its :class:`~autoinit.result.SearchCost` in the study, and such a rerun reports that cost, as
that run reported it, with its own wall time beside it (``rerun_seconds``).

Example:
    >>> import optuna
    >>> from autoinit.result import SearchCost
    >>> study = optuna.create_study()
    >>> store_cost(study, SearchCost(60, 0, 40, 3.5, 0.0104, 6, 0, 0))
    >>> cost = stored_cost(study, 1.4, SearchCost(60, 0, 40, 1.4, 0.009, 6, 0, 0))
    >>> cost.wall_seconds, round(cost.tse), cost.rerun_seconds
    (3.5, 337, 1.4)
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, fields, replace

import optuna

from autoinit.result import SearchCost

__all__ = ["COST_ATTR", "store_cost", "stored_cost"]

COST_ATTR = "autoinit.cost"  # the study user attribute: the completed search's cost


def store_cost(study: optuna.Study, cost: SearchCost) -> None:
    """Keep ``cost`` in ``study`` (a non-finite number as ``None``: JSON has no ``nan``)."""
    values = {k: v if not isinstance(v, float) or math.isfinite(v) else None
              for k, v in asdict(cost).items() if k != "rerun_seconds"}
    study.set_user_attr(COST_ATTR, values)


def stored_cost(study: optuna.Study, rerun_seconds: float, counted: SearchCost) -> SearchCost:
    """The cost stored in ``study``, with this run's ``rerun_seconds``; without one (a study
    searched by an earlier version), ``counted`` (the steps and trials counted from the study)
    with its wall time unknown (``nan``)."""
    stored = study.user_attrs.get(COST_ATTR)
    names = {f.name for f in fields(SearchCost)}
    required = {f.name for f in fields(SearchCost) if f.default is MISSING}
    if not isinstance(stored, dict) or not required <= set(stored):
        return replace(counted, wall_seconds=math.nan, rerun_seconds=rerun_seconds)
    values = {k: math.nan if v is None else v for k, v in stored.items() if k in names}
    return replace(SearchCost(**values), rerun_seconds=rerun_seconds)
