"""A search's cost, kept in its study: a rerun that re-runs nothing reports what the search cost.

A rerun of a finished study on the same storage (its trials all there, its selection round
stored) trains nothing; its own few seconds of wall time, set against the stored probe steps,
would be neither this run's cost nor the search's. So the run that completes a search stores
its :class:`~autoinit.result.SearchCost` in the study, and such a rerun reports that cost, with
its own wall time beside it (``rerun_seconds``).

A study may be searched by several runs: workers sharing its storage, or a search stopped and
resumed. Each run that trained anything keeps its own record in the study (:func:`record_run`:
its wall time, start and end, and the selection round it ran), under a key of its own, so that
workers ending together never overwrite each other. The cost counts every record
(:func:`with_runs`): the run that completes the search, a rerun and ``autoinit status`` read the
same records, so they state the same seconds.

Example:
    >>> import optuna
    >>> from autoinit.result import SearchCost
    >>> study = optuna.create_study()
    >>> _ = record_run(study, SearchCost(60, 0, 40, 2.5, 0.0104, 6, 0, 0))  # a worker that ended
    >>> cost = record_run(study, SearchCost(60, 0, 40, 3.5, 0.0104, 6, 0, 0))  # the last one
    >>> store_cost(study, cost)
    >>> cost.runs, cost.compute_seconds, cost.selection_steps
    (2, 6.0, 80)
    >>> again = stored_cost(study, 1.4, SearchCost(60, 0, 40, 1.4, 0.009, 6, 0, 0))
    >>> again.compute_seconds, round(again.tse), again.rerun_seconds
    (6.0, 577, 1.4)
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields, replace
from typing import Any

import optuna

from autoinit.result import SearchCost

__all__ = ["COST_ATTR", "RUN_ATTR", "cost_of", "json_values", "record_run", "store_cost",
           "stored_cost", "with_runs"]

COST_ATTR = "autoinit.cost"  # the study user attribute: the completed search's cost
RUN_ATTR = "autoinit.run."  # the prefix of one study user attribute per run that trained


def store_cost(study: optuna.Study, cost: SearchCost) -> None:
    """Keep ``cost`` in ``study``."""
    study.set_user_attr(COST_ATTR, json_values(asdict(cost)))


def json_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """A cost's ``values`` as JSON holds them: a non-finite number as ``None`` (JSON has no
    ``nan``), and without ``rerun_seconds`` (a rerun's own time, not the search's)."""
    return {k: v if not isinstance(v, float) or math.isfinite(v) else None
            for k, v in values.items() if k != "rerun_seconds"}


def record_run(study: optuna.Study, cost: SearchCost) -> SearchCost:
    """Keep this run's wall time (``cost.wall_seconds``, ending now) and the selection steps it
    ran in ``study``; ``cost`` with every run the study holds a record of counted
    (:func:`with_runs`)."""
    end = time.time()
    study.set_user_attr(f"{RUN_ATTR}{uuid.uuid4().hex[:16]}", {
        "seconds": cost.wall_seconds, "start": end - cost.wall_seconds, "end": end,
        "selection_steps": cost.selection_steps, "worker": f"{socket.gethostname()}:{os.getpid()}"})
    return with_runs(study.user_attrs, cost)


def with_runs(attrs: Mapping[str, Any], cost: SearchCost) -> SearchCost:
    """``cost`` with the runs recorded in a study's user attributes ``attrs`` counted: their
    wall times beyond ``cost.wall_seconds`` (the run it describes, one of them) as
    ``other_seconds``, their span and their selection rounds' steps; ``cost`` as it is where no
    run was recorded (a study searched by an earlier version)."""
    runs = _runs(attrs)
    if not runs:
        return cost
    total = math.fsum(r["seconds"] for r in runs)
    return replace(cost, runs=len(runs),
                   other_seconds=max(0.0, total - cost.wall_seconds) if len(runs) > 1 else 0.0,
                   span_seconds=max(r["end"] for r in runs) - min(r["start"] for r in runs),
                   selection_steps=sum(r["selection_steps"] for r in runs))


def cost_of(attrs: Mapping[str, Any]) -> SearchCost | None:
    """The cost stored in a study's user attributes ``attrs``, every recorded run counted;
    ``None`` where none was stored (a search not completed yet, or one of an earlier version
    that stored no cost)."""
    stored = attrs.get(COST_ATTR)
    required = {f.name for f in fields(SearchCost) if f.default is MISSING}
    if not isinstance(stored, dict) or not required <= set(stored):
        return None
    names = {f.name for f in fields(SearchCost)}
    values = {k: math.nan if v is None else v for k, v in stored.items() if k in names}
    return with_runs(attrs, SearchCost(**values))


def stored_cost(study: optuna.Study, rerun_seconds: float, counted: SearchCost) -> SearchCost:
    """The cost stored in ``study`` (:func:`cost_of`), with this run's ``rerun_seconds``;
    without one (a study searched by an earlier version), ``counted`` (the steps and trials
    counted from the study) with its wall time unknown (``nan``)."""
    cost = cost_of(study.user_attrs)
    if cost is None:
        return replace(counted, wall_seconds=math.nan, rerun_seconds=rerun_seconds)
    return replace(cost, rerun_seconds=rerun_seconds)


def _runs(attrs: Mapping[str, Any]) -> list[dict[str, float]]:
    """The runs' records, those of another form left out."""
    keys = ("seconds", "start", "end", "selection_steps")
    return [v for k, v in attrs.items() if k.startswith(RUN_ATTR) and isinstance(v, dict)
            and all(isinstance(v.get(n), int | float) for n in keys)
            and all(math.isfinite(v[n]) for n in keys)]
