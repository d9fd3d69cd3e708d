"""The Optuna study of a search: storage, sampler, pruner, queued named candidates (baselines,
then presets), stopping rules."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from autoinit.errors import FAILURE, ConfigError
from autoinit.interrupt import deferred_interrupt, interrupted
from autoinit.objective import Objective
from autoinit.optuna_setup import make_sampler
from autoinit.plan import ModelPlan
from autoinit.presets import preset_names, preset_params
from autoinit.sharing import SURPLUS, optimize_patiently
from autoinit.space import SearchSpace, baseline_names, baseline_params
from autoinit.storage import open_storage

__all__ = ["DONE", "check_space", "enqueue_pending", "in_memory", "lengthened_name",
           "named_candidates", "open_study", "optimize", "stored_rounds", "worker_storage"]

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
QUEUED_ATTR = "named_queued"  # study user attribute: the creator has queued the named candidates
QUEUE_WAIT = 60.0  # seconds a joining worker waits for that at most
# what study.optimize calls after every trial
TrialCallback = Callable[[optuna.Study, FrozenTrial], object]


def named_candidates(plan: ModelPlan, space: SearchSpace, lr: float) -> dict[str, dict[str, object]]:
    """Every named candidate a search of ``plan`` queues, in order, with its trial parameters:
    the baselines, ``lsuv`` (orthogonal parameters, calibrated by the objective), then the
    presets that apply (:mod:`autoinit.presets`)."""
    out = {name: baseline_params(plan, space, name, lr) for name in baseline_names(plan)}
    out["lsuv"] = baseline_params(plan, space, "orthogonal", lr)
    for name in preset_names(plan, space):
        out[name] = preset_params(plan, space, name, lr)
    return out


def lengthened_name(study_name: str, steps: int) -> str:
    """The stored study of a round lengthened to ``steps`` (:mod:`autoinit.evidence`).

    >>> lengthened_name("mlp", 200)
    'mlp@200-steps'
    """
    return f"{study_name}@{steps}-steps"


def stored_rounds(names: Iterable[str], study_name: str) -> list[tuple[str, int | None]]:
    """``study_name`` and its lengthened rounds among a storage's study ``names``, in order, each
    with its probe length (``None``: the first round's, as the search was given it).

    >>> stored_rounds(["a@400-steps", "b", "a", "a@200-steps"], "a")
    [('a', None), ('a@200-steps', 200), ('a@400-steps', 400)]
    """
    prefix = f"{study_name}@"
    steps = sorted(int(n[len(prefix):-6]) for n in names if n.startswith(prefix)
                   and n.endswith("-steps") and n[len(prefix):-6].isdigit())
    return [(study_name, None)] + [(lengthened_name(study_name, k), k) for k in steps]


def open_study(storage: str | BaseStorage | None, study_name: str | None, seed: int, n_jobs: int,
               eval_every: int, named: int) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it (only its creator queues the named
    candidates; ``named`` of them: the pruner waits for them and one more trial)."""
    opened = open_storage(storage)
    parallel = n_jobs > 1 or opened is not None
    kwargs = {
        "storage": opened,
        "study_name": study_name,
        # Nothing is pruned before half the probe (two evaluations): early losses are noisy.
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=named + 1,
                                              n_warmup_steps=2 * eval_every),
    }
    # The study's creator samples from ``seed``, so a fresh search is reproducible with or
    # without a storage. Workers joining a study (and a resumed run) must not all propose the
    # same points: their samplers get distinct seeds.
    try:
        return optuna.create_study(direction="minimize", sampler=make_sampler(seed, parallel),
                                   **kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(sampler=make_sampler(seed + os.getpid(), parallel),
                                 **kwargs), False


@contextlib.contextmanager
def worker_storage(storage: str | BaseStorage | None, n_jobs: int
                   ) -> Iterator[str | BaseStorage | None]:
    """``storage``, or for worker processes without one a journal file in a temporary folder,
    removed on exit (copy the study into memory with :func:`in_memory` before leaving)."""
    if storage is not None or n_jobs == 1:
        yield storage
        return
    folder = Path(tempfile.mkdtemp(prefix="autoinit-"))
    try:
        yield f"journal://{folder / 'journal.log'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def in_memory(study: optuna.Study) -> optuna.Study:
    """The same study (trials, numbers, attributes) in memory, independent of its storage."""
    memory = optuna.storages.InMemoryStorage()
    optuna.copy_study(from_study_name=study.study_name, from_storage=study._storage,  # noqa: SLF001
                      to_storage=memory)
    return optuna.load_study(study_name=study.study_name, storage=memory, sampler=study.sampler,
                             pruner=study.pruner)


def check_space(study: optuna.Study, expected: dict) -> None:
    """Refuse to continue a study whose trials were drawn from another search space."""
    always = {n for n in expected if n.endswith(".family") or n == "lr"}
    for t in study.get_trials(deepcopy=False):
        missing = sorted(always - set(t.distributions)) if t.state == TrialState.COMPLETE else []
        if missing:
            raise ConfigError(
                f"study {study.study_name!r} was searched over another space: its trial "
                f"{t.number} has no {missing[0]!r}; use a new study_name, or the same model, "
                "groups, families and search_lr as before"
            )
        for name, dist in t.distributions.items():
            if expected.get(name) != dist:
                raise ConfigError(
                    f"study {study.study_name!r} was searched over another space: its parameter "
                    f"{name!r} is {dist} but this run's is {expected.get(name, 'absent')}; use a "
                    "new study_name, or the same model, groups, families and search_lr as before"
                )


def enqueue_pending(study: optuna.Study, plan: ModelPlan, space: SearchSpace, lr: float,
                    created: bool, keep: Collection[str] | None = None) -> None:
    """Queue the named candidates (:func:`named_candidates`) the study does not hold yet, and one
    retry of each trial that was interrupted (Ctrl-C, a crash), so a resumed study loses and
    repeats nothing.

    A baseline or trial that failed is queued again whatever else waits in the study. A worker
    joining a study that another worker created and runs (no trial yet, or trials waiting or
    running) queues no baseline the study never had: the creator queues those, and marks the
    study when done. A joining worker waits for that mark (at most :data:`QUEUE_WAIT` seconds)
    before it runs anything, so the named candidates are the study's first trials: otherwise
    workers started with the creator sample trials of their own meanwhile, and a candidate
    queued last can be left waiting when the study is full. Two workers resuming one quiet study
    at the same instant may still both queue a retry. ``keep``: the named candidates to queue
    (default: all; a small budget keeps fewer, :mod:`autoinit.budget`).
    """
    if not created:
        _wait_for_queue(study)
    trials = study.get_trials(deepcopy=False)
    busy = any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    if not created and not trials:  # another worker created it and is queueing
        return
    held = {t.user_attrs.get("baseline") for t in trials if t.state != TrialState.FAIL}
    # a surplus trial was never run and is never retried (autoinit.sharing): not a try
    tried = {t.user_attrs.get("baseline") for t in trials if not t.user_attrs.get(SURPLUS)}
    retried = {t.user_attrs.get("retry_of") for t in trials}
    retried |= {t.system_attrs.get("failed_trial") for t in trials}  # heartbeat retries
    for name, params in named_candidates(plan, space, lr).items():
        if keep is not None and name not in keep:
            continue
        if name not in held and (name in tried or created or not busy):
            study.enqueue_trial(params, user_attrs={"baseline": name}, skip_if_exists=False)
    for t in trials:
        if t.state == TrialState.FAIL and not t.user_attrs.get("baseline") and t.params \
                and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
    if created:
        study.set_user_attr(QUEUED_ATTR, True)


def _wait_for_queue(study: optuna.Study) -> None:
    """Wait until the study's creator has queued its named candidates; a study with finished
    trials (one from an older version, or a creator that died while queueing) is not waited on."""
    end = time.monotonic() + QUEUE_WAIT
    while not study.user_attrs.get(QUEUED_ATTR) and time.monotonic() < end:
        if any(t.state in DONE for t in study.get_trials(deepcopy=False)):
            return
        time.sleep(0.1)


def optimize(study: optuna.Study, obj: Objective, n_trials: int | None, timeout: float | None,
             budget_steps: int | None, callbacks: list[TrialCallback], n_jobs: int) -> bool:
    """Run trials until the budget is met; ``True`` when interrupted by Ctrl-C."""
    done = sum(t.state in DONE for t in study.get_trials(deepcopy=False))
    if n_trials is not None and done >= n_trials:
        return False
    stops = []
    if n_trials is not None:
        stops.append(_EnoughTrials(n_trials))
    if budget_steps is not None:
        stops.append(_BudgetCallback(budget_steps))
    stops.append(_FailStreak())
    with deferred_interrupt() as pending:
        stops.append(lambda study, trial: pending.requested and study.stop())
        try:
            if n_jobs > 1:
                from autoinit.workers import optimize_in_processes

                optimize_in_processes(study, obj, n_jobs, n_trials, timeout, stops + callbacks)
            else:
                optimize_patiently(study, obj, timeout, stops + callbacks, n_trials)
        except KeyboardInterrupt:
            return True
        return pending.requested


@dataclass
class _EnoughTrials:
    """Stops the study once it holds ``n`` complete or pruned trials, and not one more.

    A trial running in another worker counts as on its way. On a storage with heartbeats, a
    worker whose next trial would overshoot ``n`` waits for those trials instead: a live
    worker's trial finishes, and a dead worker's is failed once its heartbeat lapses and queued
    again, and then this worker runs it. Without heartbeats a dead worker's trial could never
    end, so only finished trials count and each worker may overshoot by one trial.
    """

    n: int
    poll_seconds: float = 1.0

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        storage = study._storage  # noqa: SLF001 - Optuna has no public accessor
        heartbeat = getattr(storage, "get_heartbeat_interval", lambda: None)() is not None
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in DONE for t in trials)
            if done >= self.n:
                study.stop()
                return
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if not heartbeat or done + running < self.n:
                return
            time.sleep(self.poll_seconds)
            with warnings.catch_warnings():  # a dead worker's trial: failed, then re-queued
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)


@dataclass
class _BudgetCallback:
    """Stops the study once the trials' probe and screening steps reach ``budget`` steps."""

    budget: int

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        spent = sum(t.user_attrs.get("probe_steps", 0) + t.user_attrs.get("screening_passes", 0)
                    for t in study.get_trials(deepcopy=False))
        if spent >= self.budget:
            study.stop()


@dataclass
class _FailStreak:
    """Stops the study after ``limit`` failed trials in a row (a broken loss, a bad space);
    a trial Ctrl-C cut failed for no fault of its own and is not counted."""

    limit: int = 5

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last = [t for t in study.get_trials(deepcopy=False)
                if not t.user_attrs.get(SURPLUS) and not interrupted(t.user_attrs)][-self.limit:]
        if len(last) == self.limit and all(t.state == TrialState.FAIL for t in last):
            warnings.warn(f"stopping the search after {self.limit} failed trials in a row; last "
                          f"error: {trial.user_attrs.get(FAILURE, 'unknown')}", stacklevel=2)
            study.stop()
