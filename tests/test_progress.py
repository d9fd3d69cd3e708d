"""Progress everywhere: ``fit`` shows the trials and the selection round, plain lines in a pipe
never stay silent for long, and ``progress=False`` is silent."""

from __future__ import annotations

import re
import time

import optuna
from conftest import tiny_mlp
from optuna.trial import TrialState

import autoinit
from autoinit import progress as progress_module
from autoinit.progress import SearchProgress


def test_fit_shows_trials_and_the_selection_round_in_a_pipe(tiny_loader, capsys):
    autoinit.fit(tiny_mlp(), tiny_loader, n_trials=8, probe_steps=6, mlflow=False, progress=True)
    out = capsys.readouterr().out
    assert out.startswith("threads: 1 of ")
    assert len(re.findall(r"^trial +\d/8 ", out, re.M)) == 8
    assert "selection round: re-running the best candidates with fresh seeds" in out
    total = int(re.search(r"fresh seeds \((\d+) probes\)", out).group(1))
    assert len(re.findall(rf"^selection +\d+/{total} ", out, re.M)) == total


def test_progress_false_prints_nothing(tiny_loader, capsys):
    autoinit.fit(tiny_mlp(), tiny_loader, n_trials=7, probe_steps=4, mlflow=False, progress=False)
    assert capsys.readouterr().out == ""


def test_plain_lines_keep_coming_while_nothing_finishes(monkeypatch):
    monkeypatch.setattr(progress_module, "QUIET_SECONDS", 0.05)
    lines: list[str] = []
    with SearchProgress(30, live=False, out=lines.append) as shown:
        shown.selection(0, 6, "", None)
        deadline = time.monotonic() + 10
        while not any(line.startswith("still running") for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.02)
    assert "still running: selection round, 0/6 probes" in lines[-1]


def test_a_trials_reason_is_shortened_at_a_word_not_cut_mid_word():
    study = optuna.create_study()
    reasons = ["screened out: 0: exploding_activation, 1: exploding_activation, "
               "2: exploding_gradient",
               "screened out: gradients vanish in 30 of 32 layers",
               "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x64 and 3x2) in the "
               "second block of the model"]
    for reason in reasons:
        study.add_trial(optuna.trial.create_trial(state=TrialState.PRUNED,
                                                  user_attrs={"failure": reason}))
    lines: list[str] = []
    with SearchProgress(3, live=False, out=lines.append) as shown:
        shown.refresh(study.get_trials())
    assert "screened out: 0: exploding_activation, ... " in lines[0]
    assert "screened out: gradients vanish in 30 of 32 layers " in lines[1]
    assert "RuntimeError: mat1 and mat2 shapes cannot be ... " in lines[2]
    assert not any("~" in line for line in lines)


def test_the_population_line_is_printed_once(tiny_loader, capsys):
    """Where the summary states the population (one was asked for), the header does not."""
    result = autoinit.fit(tiny_mlp(), tiny_loader, n_trials=7, probe_steps=4, population=2,
                          mlflow=False, progress=True)
    printed = capsys.readouterr().out + result.summary()
    assert printed.count("population probes: up to 2 candidates at once") == 1
