"""A worker's trial loop on a shared study: surplus trials are not run, a trial failed by a peer
does not stop the worker, a storage fault inside a trial stops it with the StorageError."""

from __future__ import annotations

import logging
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from autoinit.errors import StorageError
from autoinit.sharing import SURPLUS, optimize_patiently
from autoinit.status import study_status


def _stop_at(n: int):
    def stop(study, trial):
        if sum(t.state == TrialState.COMPLETE for t in study.trials) >= n:
            study.stop()
    return stop


def test_a_trial_begun_beyond_n_is_not_run_and_not_counted(caplog):
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    ahead = [study.ask(), study.ask()]  # two trials another worker runs
    ran = []
    with caplog.at_level(logging.WARNING, logger="optuna"):
        optimize_patiently(study, lambda t: ran.append(t.number) or 1.0, None,
                           [lambda s, t: s.stop()], n_trials=2)
    surplus = study.trials[-1]
    assert ran == [] and surplus.state == TrialState.FAIL and surplus.user_attrs[SURPLUS]
    assert not [r for r in caplog.records if "failed" in r.getMessage()]  # no alarm for it
    for t in ahead:
        study.tell(t, 1.0)
    status = study_status(storage, "s")
    assert status.finished == 2 and status.counts["failed"] == 0


def test_a_trial_failed_by_a_peer_meanwhile_is_dropped_and_the_worker_goes_on():
    study = optuna.create_study()

    def objective(trial):
        if trial.number == 1:  # a peer failed it as stale while the database was away
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        return float(trial.number)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimize_patiently(study, objective, None, [_stop_at(3)], n_trials=4)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL,
                                               TrialState.COMPLETE, TrialState.COMPLETE]
    assert any("failed by another worker" in str(w.message) for w in caught)


def test_a_storage_fault_inside_a_trial_stops_the_worker_without_failing_the_trial():
    study = optuna.create_study()

    def objective(trial):
        if trial.number == 1:
            raise StorageError("storage 'sqlite:///s.db' cannot be written or read: disk is full")
        return 1.0

    with pytest.raises(StorageError, match="disk is full"):
        optimize_patiently(study, objective, None, [_stop_at(5)], n_trials=5)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING]
