"""Heartbeats: a worker that dies (even by SIGKILL) stops beating, and its running trial is
failed after the grace period and queued again, so a study asked for N trials still ends with N.

The interval and the grace period (``AUTOINIT_HEARTBEAT_INTERVAL``, ``AUTOINIT_GRACE_PERIOD``)
are shared by every storage; :class:`HeartbeatJournalStorage` gives a journal file the
heartbeats Optuna's relational storages have, and :func:`running_without_heartbeat` finds the
relational storages' trials that died before their first beat.

Example:
    >>> sorted(heartbeat_options())
    ['grace_period', 'heartbeat_interval', 'heartbeat_stale_trial_callback']
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from autoinit.errors import StorageError

__all__ = ["GRACE_PERIOD", "HEARTBEAT_INTERVAL", "HeartbeatJournalStorage", "heartbeat_options",
           "running_without_heartbeat"]

# Seconds between a worker's heartbeats, and without one before its running trial is failed and
# retried; AUTOINIT_HEARTBEAT_INTERVAL and AUTOINIT_GRACE_PERIOD override them.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30


def heartbeat_options() -> dict[str, Any]:
    """The heartbeat settings of every storage autoinit opens (``RDBStorage``'s keywords)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=2)
    return {"heartbeat_interval": int(os.environ.get("AUTOINIT_HEARTBEAT_INTERVAL",
                                                     HEARTBEAT_INTERVAL)),
            "grace_period": int(os.environ.get("AUTOINIT_GRACE_PERIOD", GRACE_PERIOD)),
            "heartbeat_stale_trial_callback": retry}


def running_without_heartbeat(storage: RDBStorage, study_id: int) -> list[int]:
    """The study's RUNNING trials that have recorded no heartbeat at all."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (session.query(models.TrialModel.trial_id)
                .outerjoin(models.TrialHeartbeatModel,
                           models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id,
                        models.TrialModel.state == TrialState.RUNNING,
                        models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .all())
    return [trial_id for (trial_id,) in rows]


class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """A journal storage with heartbeats, as the RDB storages have: a running trial whose
    worker stopped beating (killed) for ``grace_period`` seconds is failed and queued again, so
    workers sharing a journal file also end a study with exactly N trials.

    A beat is a trial system attribute ``[trial_id, unix time]`` (the id, because a retried
    trial inherits its predecessor's attributes); a trial without one is never stale.
    """

    def __init__(self, backend: JournalFileBackend, heartbeat_interval: int, grace_period: int,
                 heartbeat_stale_trial_callback: Callable) -> None:
        super().__init__(backend)
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, StorageError):
            self.set_trial_system_attr(trial_id, _BEAT, [trial_id, time.time()])

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False,  # noqa: SLF001
                                                          states=(TrialState.RUNNING,))
                if (beat := t.system_attrs.get(_BEAT)) and beat[0] == t._trial_id  # noqa: SLF001
                and now - beat[1] > self.grace_period]

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable:
        return self.heartbeat_stale_trial_callback


_BEAT = "autoinit:heartbeat"
