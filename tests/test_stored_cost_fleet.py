"""A study searched by several runs (workers sharing its storage, a search resumed) costs every
run's seconds: the summary line, the stored cost, a rerun and ``autoinit status`` count them all,
while a search run once states its own wall time as before."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import tiny_data, tiny_mlp

from autoinit.result import SearchCost
from autoinit.search import run_search
from autoinit.selection import SELECTION_ATTR
from autoinit.status import study_status
from autoinit.stored_cost import COST_ATTR, RUN_ATTR, record_run, store_cost, stored_cost


def _runs(**seconds: float) -> dict[str, dict[str, float]]:
    """Run records as :func:`record_run` writes them, each ending at ``100 + its seconds``."""
    return {f"{RUN_ATTR}{k}": {"seconds": s, "start": 100.0, "end": 100.0 + s,
                               "selection_steps": 40} for k, s in seconds.items()}


def test_a_search_run_once_states_its_wall_time_as_before():
    study = optuna.create_study()
    cost = record_run(study, SearchCost(60, 2, 40, 3.5, 0.01, 6, 0, 0))
    assert (cost.runs, cost.other_seconds, cost.compute_seconds) == (1, 0.0, 3.5)
    assert "; 3.5 s wall = 350 training-step equivalents (" in cost.describe()
    assert "runs" not in cost.describe()


def test_every_runs_seconds_are_counted_even_one_that_ended_after_the_cost_was_stored():
    """Two workers ending together: the one that stored the cost had not seen the other's
    record yet; a rerun and the status count it all the same."""
    study = optuna.create_study()
    first = record_run(study, SearchCost(60, 2, 40, 3.5, 0.01, 6, 0, 0))
    store_cost(study, first)  # it saw itself alone
    for key, value in _runs(late=2.5).items():
        study.set_user_attr(key, value)
    again = stored_cost(study, 0.3, first)
    assert (again.runs, again.wall_seconds, again.compute_seconds) == (2, 3.5, 6.0)
    assert again.selection_steps == 80 and round(again.tse) == 600
    assert "6.0 s: the wall times of the study's 2 runs summed" in again.describe()


def test_a_cost_stored_before_runs_were_recorded_reads_as_it_was_stored():
    """A study of an earlier version: its stored cost has none of the new figures and no run
    records, and reads back as that run's own wall time."""
    study = optuna.create_study()
    study.set_user_attr(COST_ATTR, {"probe_steps": 60, "screening_passes": 2,
                                    "selection_steps": 40, "wall_seconds": 3.5,
                                    "step_seconds": 0.01, "trials_complete": 6,
                                    "trials_pruned": 0, "trials_failed": 0})
    cost = stored_cost(study, 0.3, SearchCost(1, 0, 0, 0.3, 0.01, 1, 0, 0))
    assert (cost.runs, cost.compute_seconds, cost.selection_steps) == (1, 3.5, 40)
    assert "3.5 s wall = 350 training-step equivalents" in cost.describe()


def test_two_runs_on_one_sqlite_study_cost_both_runs_seconds(tmp_path, tiny_loader):
    """A run searches 3 trials; another run of the same stored study (a second worker, or the
    search extended) searches 3 more. The rerun, the stored cost and the status then count both
    runs' wall times and both selection rounds, not the last run's alone. The runs go one after
    the other: what is counted is each run's record, however the runs overlap."""
    url, name = f"sqlite:///{tmp_path}/fleet.db", "fleet"
    options = {"storage": url, "study_name": name, "probe_steps": 10, "progress": False}
    first = run_search(tiny_mlp(), tiny_loader, n_trials=3, **options).cost
    mine = run_search(tiny_mlp(), tiny_loader, n_trials=6, **options).cost
    again = run_search(tiny_mlp(), tiny_loader, n_trials=6, **options).cost
    assert again.reused and again.runs == 2
    assert again.compute_seconds == pytest.approx(mine.wall_seconds + first.wall_seconds)
    assert again.span_seconds >= mine.wall_seconds + first.wall_seconds - 0.01
    study = optuna.load_study(study_name=name, storage=url)
    runs = [v for k, v in study.user_attrs.items() if k.startswith(RUN_ATTR)]
    assert again.selection_steps == sum(r["selection_steps"] for r in runs) > 0
    status = study_status(url, name)
    assert status.cost is not None and status.cost.runs == 2
    assert status.cost.compute_seconds == pytest.approx(again.compute_seconds)
    line = again.describe().split("reused): ", 1)[1]  # the stored search's line, as status says
    assert f"  cost: {line}" in status.summary()
    assert "the wall times of the study's 2 runs summed" in line
    assert json.loads(json.dumps(status.to_dict()))["cost"]["runs"] == 2


def test_a_run_that_reused_another_runs_selection_round_adds_no_round_to_the_cost(tmp_path):
    """A worker whose last trial ended before another stored its round reuses that round after
    training: the fleet ran one selection round, and the cost counts one."""
    options = {"storage": f"sqlite:///{tmp_path}/s.db", "study_name": "s", "probe_steps": 6,
               "progress": False, "seed": 0, "population": 1}
    first = run_search(tiny_mlp(), tiny_data(), n_trials=8, **options).cost
    study = optuna.load_study(study_name="s", storage=options["storage"])
    stored = dict(study.user_attrs[SELECTION_ATTR])
    key = json.loads(stored["key"])
    key["finished"] += 1  # stored as if after the next run's trial had finished
    study.set_user_attr(SELECTION_ATTR, {**stored, "key": json.dumps(key, sort_keys=True)})
    second = run_search(tiny_mlp(), tiny_data(), n_trials=9, **options)
    assert second.selection_reused and second.cost.runs == 2
    assert second.cost.selection_steps == first.selection_steps > 0
