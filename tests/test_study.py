"""The study's queue of named candidates when several workers open one study at once."""

from __future__ import annotations

import threading
import time
import warnings

import optuna
import pytest
from conftest import tiny_mlp
from optuna.trial import TrialState

from autoinit import study as study_module
from autoinit.interrupt import INTERRUPTED
from autoinit.plan import ModelPlan
from autoinit.space import SearchSpace
from autoinit.study import QUEUED_ATTR, enqueue_pending, named_candidates


@pytest.fixture
def plan() -> ModelPlan:
    return ModelPlan.of(tiny_mlp())


def test_a_joining_worker_waits_for_the_creator_to_queue_the_named_candidates(plan):
    """The creator queues slowly (as on a busy database); the joining worker returns only once
    it has, and queues nothing of its own, so the named candidates are the first trials."""
    study = optuna.create_study()
    returned: list[float] = []
    joiner = threading.Thread(target=lambda: (
        enqueue_pending(study, plan, SearchSpace(), 1e-3, created=False),
        returned.append(time.monotonic())))
    joiner.start()
    time.sleep(0.5)
    enqueue_pending(study, plan, SearchSpace(), 1e-3, created=True)
    marked = time.monotonic()
    joiner.join(timeout=30)
    assert returned and returned[0] >= marked - 0.01
    names = list(named_candidates(plan, SearchSpace(), 1e-3))
    assert [t.user_attrs["baseline"] for t in study.trials] == names
    assert all(t.state == TrialState.WAITING for t in study.trials)
    assert study.user_attrs[QUEUED_ATTR] is True


def test_a_joining_worker_gives_up_waiting_and_queues_nothing_on_an_empty_study(plan,
                                                                                 monkeypatch):
    """A creator that died before queueing: the joiner waits at most QUEUE_WAIT, then runs
    with what the study holds (its own sampled trials) rather than hang."""
    monkeypatch.setattr(study_module, "QUEUE_WAIT", 0.3)
    study = optuna.create_study()
    start = time.monotonic()
    enqueue_pending(study, plan, SearchSpace(), 1e-3, created=False)
    assert 0.3 <= time.monotonic() - start < 5
    assert study.trials == []


def test_a_study_with_finished_trials_and_no_mark_is_not_waited_on(plan, monkeypatch):
    """A study searched before the mark existed resumes at once, and its missing named
    candidates are queued (it is quiet)."""
    monkeypatch.setattr(study_module, "QUEUE_WAIT", 30.0)
    study = optuna.create_study()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    start = time.monotonic()
    enqueue_pending(study, plan, SearchSpace(), 1e-3, created=False)
    assert time.monotonic() - start < 5
    waiting = [t.user_attrs["baseline"] for t in study.trials if t.state == TrialState.WAITING]
    assert waiting == list(named_candidates(plan, SearchSpace(), 1e-3))
    assert QUEUED_ATTR not in study.user_attrs  # only the creator marks



def _stops_after(failures: list[str]) -> bool:
    """Whether the fail-streak rule stops a study whose trials so far failed with ``failures``
    (each a trial's ``failure`` attribute) when one more trial fails on a broken loss."""
    study = optuna.create_study()
    for failure in failures:
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL,
                                                  user_attrs={"failure": failure}))

    def broken(trial: optuna.trial.Trial) -> float:
        trial.set_user_attr("failure", "loss is not finite")
        raise ValueError("broken loss")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.optimize(broken, n_trials=1, callbacks=[study_module._FailStreak(limit=5)],
                       catch=(ValueError,))
    return any("failed trials in a row" in str(w.message) for w in caught)


def test_five_failures_in_a_row_stop_the_search_but_ctrl_c_cuts_are_not_failures():
    assert _stops_after(["loss is not finite"] * 4)
    assert not _stops_after(["loss is not finite"] * 3)
    # a search cut four times by Ctrl-C, then one broken trial: one failure, not five
    assert not _stops_after([INTERRUPTED] * 4)
    assert _stops_after([INTERRUPTED, "loss is not finite", INTERRUPTED, "loss is not finite",
                         "loss is not finite", "loss is not finite"])
