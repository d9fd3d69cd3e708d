"""Trials in several worker processes (one torch thread each) sharing one study's storage."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import cloudpickle
import optuna
import torch

from autoinit.errors import ConfigError
from autoinit.interrupt import Pending, deferred_interrupt, request_interrupt
from autoinit.optuna_setup import make_sampler, quiet_optuna
from autoinit.sharing import optimize_patiently
from autoinit.storage import open_storage

if TYPE_CHECKING:
    from autoinit.objective import Objective

__all__ = ["optimize_in_processes"]


def _storage_spec(storage: optuna.storages.BaseStorage) -> tuple[str, str]:
    if isinstance(storage, optuna.storages._CachedStorage):
        storage = storage._backend
    if isinstance(storage, optuna.storages.RDBStorage):
        return "rdb", storage.url
    if isinstance(storage, optuna.storages.JournalStorage):
        backend = storage._backend
        path = getattr(backend, "_file_path", None)
        if path:
            return "journal", str(path)
    raise ConfigError(
        f"n_jobs > 1 needs a storage that worker processes can open (a database URL or a journal "
        f"file), got {type(storage).__name__}"
    )


def _open(spec: tuple[str, str]) -> optuna.storages.BaseStorage:
    kind, where = spec
    return open_storage(where if kind == "rdb" else f"journal://{where}")


def _worker(payload: bytes, index: int) -> int:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    objective, name, spec, sampler_factory, pruner, callbacks, timeout, n_trials = \
        cloudpickle.loads(payload)
    study = optuna.load_study(study_name=name, storage=_open(spec), sampler=sampler_factory(index),
                              pruner=pruner)
    # Ctrl-C reaches every process of the group: stop between steps, without Optuna's traceback
    with deferred_interrupt(), quiet_optuna():
        _relay(_parent_stop)
        optimize_patiently(study, objective, timeout, callbacks, n_trials)
    for callback in callbacks:  # e.g. tracking: what it could not send yet, tried once more
        getattr(callback, "drain", lambda: None)()
    return index


def optimize_in_processes(study: optuna.Study, objective: Objective, n_jobs: int,
                          n_trials: int | None, timeout: float | None, callbacks: list) -> None:
    """Run ``objective`` in ``n_jobs`` spawned processes until ``callbacks`` stop the study."""
    def sampler_factory(index: int, _seed: int = objective.seed) -> optuna.samplers.BaseSampler:
        return make_sampler(_seed + index, parallel=True)

    payload = cloudpickle.dumps((objective, study.study_name, _storage_spec(study._storage),
                                 sampler_factory, study.pruner, callbacks, timeout, n_trials))
    context = multiprocessing.get_context("spawn")
    stop = context.Event()  # set when this process alone got the Ctrl-C (a signal to its PID)
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=context, initializer=_keep,
                             initargs=(stop,)) as pool:
        futures = [pool.submit(_worker, payload, i) for i in range(n_jobs)]
        pending = Pending()
        while True:
            done, running = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
            if not running or any(f.exception() for f in done):
                break
            if pending.requested:
                stop.set()
        for f in futures:
            f.result()


_parent_stop: Any = None  # in a worker: the event its parent sets on a Ctrl-C of its own


def _keep(stop: Any) -> None:
    """The worker process's initializer: keep the parent's stop event."""
    global _parent_stop  # noqa: PLW0603 - one per worker process, set once at its start
    _parent_stop = stop


def _relay(stop: Any) -> None:
    """Once the parent's Ctrl-C arrives, it becomes this worker's own pending one (called inside
    :func:`deferred_interrupt`), so the worker stops at its next safe point, as when Ctrl-C
    reaches the whole process group."""
    if stop is not None:
        threading.Thread(target=lambda: stop.wait() and request_interrupt(),
                         name="autoinit-interrupt", daemon=True).start()
