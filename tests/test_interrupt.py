"""Ctrl-C during a search: deferred to a safe point, the study left clean and resumable."""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest
import torch.nn.functional as F
from conftest import tiny_mlp
from optuna.trial import TrialState

from autoinit.interrupt import check_interrupt, deferred_interrupt
from autoinit.search import run_search


def test_first_sigint_is_deferred_and_the_second_raises_at_once():
    before = signal.getsignal(signal.SIGINT)
    with deferred_interrupt() as pending:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, and does not raise
        assert pending.requested
        with pytest.raises(KeyboardInterrupt):
            check_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is before
    check_interrupt()  # nothing pending once the block is left


def test_sigint_mid_probe_keeps_the_study_clean_and_resumable(tmp_path, tiny_loader):
    calls = 0

    def loss(model, batch):  # sends Ctrl-C to this process during the fourth trial or so
        nonlocal calls
        calls += 1
        if calls == 120:
            os.kill(os.getpid(), signal.SIGINT)
        return F.cross_entropy(model(batch[0]), batch[1])

    url = f"sqlite:///{tmp_path}/s.db"
    kwargs = {"n_trials": 9, "probe_steps": 20, "storage": url, "study_name": "cut", "seed": 0}
    first = run_search(tiny_mlp(), tiny_loader, loss_fn=loss, **kwargs)
    assert first.extra["interrupted"]
    trials = optuna.load_study(study_name="cut", storage=url).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]  # nothing half-recorded
    assert [t.state for t in trials].count(TrialState.FAIL) == 1  # the trial that was cut
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert 1 <= done < 9
    again = run_search(tiny_mlp(), tiny_loader, **kwargs)
    assert not again.extra["interrupted"]
    trials = optuna.load_study(study_name="cut", storage=url).get_trials()
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 9
