"""Ctrl-C during a search: deferred to a safe point, the study left clean and resumable."""

from __future__ import annotations

import os
import re
import signal
import time

import optuna
import pytest
import torch.nn.functional as F
from conftest import tiny_mlp
from optuna.trial import TrialState

from autoinit.interrupt import check_interrupt, deferred_interrupt
from autoinit.search import run_search
from autoinit.status import study_status


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
    # it did not fail: it is queued again for the resume, and the cost says so
    assert (first.cost.trials_failed, first.cost.trials_interrupted) == (0, 1)
    assert "0 failed, 1 interrupted (Ctrl-C; queued again)" in first.summary()
    counts = study_status(url, "cut").counts  # what `autoinit status` prints: the same count
    assert (counts["failed"], counts["interrupted"]) == (0, 1)
    done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert 1 <= done < 9
    again = run_search(tiny_mlp(), tiny_loader, **kwargs)
    assert not again.extra["interrupted"]
    trials = optuna.load_study(study_name="cut", storage=url).get_trials()
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 9


def test_ctrl_c_during_each_baseline_in_turn_loses_nothing(tmp_path, capsys, monkeypatch):
    """One study, interrupted during every baseline in turn, then resumed to the end: every
    baseline completes exactly once, no traceback is printed, and the scheme.json of the run
    that finished the study is never overwritten by an interrupted one."""
    from test_cli import write_study

    from autoinit.cli import main
    from autoinit.objective import Objective
    from autoinit.space import BASELINES

    target = {"name": None}
    run = Objective._run

    def cut(self, trial):  # Ctrl-C as the targeted baseline starts (deferred to its first step)
        if target["name"] and trial.user_attrs.get("baseline") == target["name"]:
            target["name"] = None
            os.kill(os.getpid(), signal.SIGINT)
        return run(self, trial)

    monkeypatch.setattr(Objective, "_run", cut)
    storage = f"sqlite:///{tmp_path}/study.db"
    study = write_study(tmp_path, n_trials=7, probe_steps=6, storage=storage)
    scheme = tmp_path / "scheme.json"
    scheme.write_text("an earlier run's scheme\n")
    printed = []
    for name in (*BASELINES, "lsuv"):
        target["name"] = name
        code = main(["search", str(study), "--out", str(scheme)])
        out, err = capsys.readouterr()
        printed.append(out + err)
        assert code == 130, err
        assert target["name"] is None  # the baseline was reached and cut
        assert scheme.read_text() == "an earlier run's scheme\n"
        # the best so far goes beside it; before any trial completed there is none
        assert "scheme.interrupted.json" in out or "before any trial completed" in err
    code = main(["search", str(study), "--out", str(scheme)])
    printed.append("".join(capsys.readouterr()))
    assert code == 0, printed[-1]
    for text in printed:
        assert "Traceback" not in text and "KeyboardInterrupt" not in text
    name = re.search(r"autoinit search '([^']+)'", printed[0]).group(1)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    done = [t.user_attrs.get("baseline") for t in trials
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(b for b in done if b) == sorted((*BASELINES, "lsuv", "zero_readout"))
    assert [t.state for t in trials].count(TrialState.FAIL) == 6
    assert len(done) == 7
    assert '"format_version"' in scheme.read_text()  # the finished run wrote its scheme


def test_a_trial_ctrl_c_cut_is_reported_interrupted_not_failed_everywhere(tmp_path, tiny_loader):
    """The trial Ctrl-C cut is recorded FAIL by Optuna; the summary, the status and what the
    MLflow parent run logs (its cost metrics, its comparison note) call it interrupted, and no
    trial callback hears of it, so MLflow's per-trial logger makes no child run marked failed."""
    from autoinit.integrations import _report
    from autoinit.interrupt import INTERRUPTED

    calls = 0

    def loss(model, batch):  # Ctrl-C to this process during the fourth trial or so
        nonlocal calls
        calls += 1
        if calls == 120:
            os.kill(os.getpid(), signal.SIGINT)
        return F.cross_entropy(model(batch[0]), batch[1])

    heard: list[optuna.trial.FrozenTrial] = []
    url = f"sqlite:///{tmp_path}/s.db"
    result = run_search(tiny_mlp(), tiny_loader, loss_fn=loss, n_trials=6, probe_steps=20,
                        storage=url, study_name="cut", progress=False,
                        callbacks=[lambda study, trial: heard.append(trial)])
    assert result.interrupted
    (cut,) = [t for t in result.study.get_trials() if t.state == TrialState.FAIL]
    assert cut.user_attrs["failure"] == INTERRUPTED
    assert cut.number not in {t.number for t in heard} and heard
    assert all(t.state != TrialState.FAIL for t in heard)
    assert "0 failed, 1 interrupted (Ctrl-C; queued again)" in result.summary()
    counts = study_status(url, "cut").counts
    assert (counts["failed"], counts["interrupted"]) == (0, 1)
    table = _report.comparison(result)
    metrics = {m.key: m.value for m in _report.metrics(result, table)}
    assert (metrics["cost/trials_failed"], metrics["cost/trials_interrupted"]) == (0, 1)
    assert "0 failed, 1 interrupted (Ctrl-C; queued again)" in _report.markdown(result, table)


def _search_cut_at(monkeypatch, tmp_path, capsys, place: str):
    """A CLI search, one SIGINT sent as ``autoinit.selection.<place>`` is first called; then the
    same command again, untouched. Returns both runs' exit codes and output, and the trials."""
    from test_cli import write_study

    from autoinit import selection
    from autoinit.cli import main

    original, sent = getattr(selection, place), []

    def cut(*args, **kwargs):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # deferred: lands at the next step, or later
        return original(*args, **kwargs)

    monkeypatch.setattr(selection, place, cut)
    storage = f"sqlite:///{tmp_path}/study.db"
    cmd = ["search", str(write_study(tmp_path, n_trials=7, probe_steps=6, storage=storage)),
           "--out", str(tmp_path / "scheme.json"), "--population", "1", "--study-name", "s"]
    first = (main(cmd), *capsys.readouterr())
    assert sent
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    monkeypatch.setattr(selection, place, original)
    second = (main(cmd), *capsys.readouterr())
    again = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [(t.number, t.state, t.value) for t in again] == \
        [(t.number, t.state, t.value) for t in trials]  # no trial lost, none run again
    return first, second


def test_ctrl_c_in_the_selection_round_prints_the_best_so_far_and_resume_reruns_it(
        monkeypatch, tmp_path, capsys):
    """Cut mid-round, the search ends as one cut before the round (the table by probe score,
    scheme.interrupted.json, exit 130, how to resume), not with a bare 'interrupted'."""
    (code, out, err), (code2, out2, err2) = _search_cut_at(monkeypatch, tmp_path, capsys,
                                                           "_probe_or_diverged")
    assert code == 130, err
    assert "interrupted during the selection round" in out and "selection mean" not in out
    assert (tmp_path / "scheme.interrupted.json").exists()
    assert "scheme.json left as it was" in out
    assert "rerun the same command to resume" in err and "Traceback" not in out + err
    assert code2 == 0, err2
    assert "selection round: re-running" in out2 and "selection mean" in out2
    assert (tmp_path / "scheme.json").exists()


def test_ctrl_c_after_the_selection_rounds_last_step_keeps_the_round(monkeypatch, tmp_path,
                                                                   capsys):
    """A Ctrl-C that lands after the round's last step is not lost: exit 130, and the stored
    round is handed back by the rerun without any probe."""
    (code, out, err), (code2, out2, err2) = _search_cut_at(monkeypatch, tmp_path, capsys,
                                                           "_store")
    assert code == 130, err
    assert err.strip() == ("autoinit: interrupted after the selection round, which the study "
                           "keeps: rerun the same command for its result")
    assert code2 == 0, err2
    assert "this run re-ran nothing" in out2 and "selection  1/" not in out2
