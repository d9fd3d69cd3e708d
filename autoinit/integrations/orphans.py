"""Runs a search left RUNNING in MLflow, closed at a search's end.

Two kinds: a child run the tracking server lost mid-write (created, never closed), and the runs
of a worker that died (SIGKILL, a crash) on this machine: its parent run, and any child run of
it still open. Each parent run carries ``autoinit.worker = <host>:<pid>``; a worker on this host
whose process is gone is dead. A worker on another host cannot be checked from here; its runs
are closed by the next search of the study on its own host.

Example:
    >>> worker_tag()  # doctest: +ELLIPSIS
    '...:...'
"""

from __future__ import annotations

import os
import socket

from mlflow import MlflowClient
from mlflow.entities import RunStatus

__all__ = ["WORKER_TAG", "close_orphans", "worker_tag"]

WORKER_TAG = "autoinit.worker"
_KILLED = RunStatus.to_string(RunStatus.KILLED)


def worker_tag() -> str:
    """``<host>:<pid>`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(worker: str | None) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def close_orphans(client: MlflowClient, experiment_id: str, study_name: str,
                  parent_run_id: str) -> list[str]:
    """Mark KILLED the RUNNING children of ``parent_run_id``, and the RUNNING parent and child
    runs of dead workers of ``study_name`` on this host; the ids closed."""
    if "'" in study_name:  # not expressible in a search filter
        return []
    running = client.search_runs([experiment_id], f"tags.`autoinit.study` = '{study_name}' and "
                                 "attributes.status = 'RUNNING'", max_results=5000)
    dead = {r.info.run_id for r in running if _dead_here(r.data.tags.get(WORKER_TAG))}
    closed = []
    for run in running:
        parent = run.data.tags.get("mlflow.parentRunId")
        if run.info.run_id in dead or parent == parent_run_id or parent in dead:
            client.set_tag(run.info.run_id, "autoinit.reason",
                           "left running by a worker that died or a tracking fault; closed by "
                           f"worker {worker_tag()}")
            client.set_terminated(run.info.run_id, _KILLED)
            closed.append(run.info.run_id)
    return closed
