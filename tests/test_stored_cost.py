"""A search's cost kept in its study: read back as stored, with a rerun's own seconds beside it,
and without it (a study from an earlier version) the wall time is unknown, not made up."""

from __future__ import annotations

import math

import optuna

from autoinit.result import SearchCost
from autoinit.stored_cost import COST_ATTR, store_cost, stored_cost

COUNTED = SearchCost(60, 2, 40, 1.4, 0.009, 6, 1, 0)


def _plain(cost: SearchCost) -> dict[str, object]:
    """Every figure but the rerun's seconds, ``nan`` as ``None`` (``nan != nan``)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in cost.to_dict().items() if k != "rerun_seconds"}


def test_the_stored_cost_comes_back_as_stored_with_the_reruns_seconds_apart(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    cost = SearchCost(60, 2, 40, 13.85, 0.0104, 6, 1, 0, step_timings=12, population=4,
                      trials_interrupted=1)  # quartiles and the population ratio: nan
    store_cost(optuna.create_study(study_name="s", storage=url), cost)
    again = stored_cost(optuna.load_study(study_name="s", storage=url), 1.4, COUNTED)
    assert again.reused and again.rerun_seconds == 1.4
    assert again.wall_seconds == 13.85 and again.tse == cost.tse
    assert math.isnan(again.step_seconds_q1) and math.isnan(again.population_ratio)
    assert _plain(again) == _plain(cost)


def test_a_study_that_stored_no_cost_gives_its_counts_and_no_wall_time():
    study = optuna.create_study()
    cost = stored_cost(study, 1.4, COUNTED)
    assert (cost.probe_steps, cost.selection_steps, cost.rerun_seconds) == (60, 40, 1.4)
    assert math.isnan(cost.wall_seconds) and math.isnan(cost.tse)
    assert "its wall time was not stored" in cost.describe()
    study.set_user_attr(COST_ATTR, {"probe_steps": 1})  # a partial record: not trusted either
    assert math.isnan(stored_cost(study, 1.4, COUNTED).wall_seconds)
