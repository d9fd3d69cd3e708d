"""``study_status`` and ``autoinit status``: a study's progress read from its storage alone."""

from __future__ import annotations

import json

import optuna
import pytest
from conftest import tiny_data, tiny_mlp
from optuna.trial import TrialState

import autoinit
from autoinit.cli import main
from autoinit.search import run_search


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished 8-trial search in a SQLite storage, searched once for the tests that only read
    it: ``(url, study name)``. One candidate at a time, as conftest's function-scoped fixture
    would have it (a module's fixture is set up before it)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('status')}/s.db"
    run_search(tiny_mlp(), tiny_data(), n_trials=8, probe_steps=6, storage=url,
               study_name="tiny", seed=0, population=1)
    return url, "tiny"


def test_status_counts_every_trial_and_ranks_the_complete_ones(searched):
    url, name = searched
    trials = optuna.load_study(study_name=name, storage=url).get_trials()
    status = autoinit.study_status(url, name, top=3)
    assert status.finished == 8
    assert sum(status.counts.values()) == len(trials)
    complete = sorted(t.value for t in trials if t.state == TrialState.COMPLETE)
    assert [t.value for t in status.top] == complete[:3]
    best = next(t for t in trials if t.number == status.best.number)
    assert status.best.name == best.user_attrs.get("baseline", f"search #{best.number}")
    assert {r["family"] for r in status.best.rules.values()} <= set(autoinit.list_families())
    assert json.loads(json.dumps(status.to_dict()))["finished"] == 8
    assert f"trial {status.best.number} {status.best.name}" in status.summary()


def test_a_finished_study_shows_its_unrun_candidates_as_queued_not_waiting(tmp_path, tiny_loader,
                                                                            capsys):
    """Named candidates queued beyond ``n_trials`` never run: an ended study showed them as
    '2 waiting'; an interrupted one still waits on its queued trials (a resume runs them)."""
    url = f"sqlite:///{tmp_path}/s.db"
    run_search(tiny_mlp(), tiny_loader, n_trials=5, probe_steps=6, storage=url, study_name="done",
               seed=0, progress=False)
    assert main(["status", "--storage", url, "--study-name", "done"]) == 0
    out = capsys.readouterr().out.splitlines()[0]
    assert "waiting" not in out and out.endswith("the search ended, 2 queued candidates not run")
    status = autoinit.study_status(url, "done")
    assert status.ended and status.counts["waiting"] == 2 and status.to_dict()["ended"]

    def interrupt(study, trial):
        if trial.number == 3:
            raise KeyboardInterrupt

    run_search(tiny_mlp(), tiny_loader, n_trials=8, probe_steps=6, storage=url,
               study_name="cut", seed=0, progress=False, callbacks=[interrupt])
    cut = autoinit.study_status(url, "cut")
    assert not cut.ended and "4 complete, 3 waiting)" in cut.summary()
    assert autoinit.study_status(url, "cut", n_trials=4).ended  # a study file's n_trials


def test_status_of_an_unknown_study_names_the_ones_there(searched):
    url, _ = searched
    with pytest.raises(autoinit.ConfigError, match=r"study_name 'nope' is not in .* holds \['tiny'\]"):
        autoinit.study_status(url, "nope")


@pytest.mark.parametrize("kwargs, message", [
    ({"storage": None}, "storage must be given"),
    ({"top": 0}, "top must be a positive integer, got 0"),
    ({"n_trials": "5"}, "n_trials must be a positive integer or None, got '5'"),
])
def test_status_bad_arguments(kwargs, message, tmp_path):
    args = {"storage": f"sqlite:///{tmp_path}/x.db", "study_name": "x", **kwargs}
    with pytest.raises(autoinit.ConfigError, match=message):
        autoinit.study_status(**args)


def test_status_command_prints_the_best_and_json(searched, capsys):
    url, name = searched
    assert main(["status", "--storage", url, "--study-name", name]) == 0
    out = capsys.readouterr().out
    best = autoinit.study_status(url, name).best
    assert out.startswith(f"study '{name}': 8 finished trials")
    assert f"1. trial {best.number} {best.name}: probe score {best.value:.4f}" in out
    assert main(["status", "--storage", url, "--study-name", name, "--json", "--top", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["finished"] == 8 and len(report["top"]) == 2


def test_status_command_without_a_study_is_bad_input(capsys):
    assert main(["status", "--storage", "sqlite:///x.db"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("autoinit: error: give a study file (STUDY.toml) or both --storage URL and "
                   "--study-name NAME")


@pytest.mark.parametrize("scheme, file", [("sqlite:///", "typo.db"), ("journal://", "typo.log")])
def test_status_of_a_missing_file_is_bad_input_and_creates_nothing(scheme, file, tmp_path, capsys):
    path = str(tmp_path / file)
    url = scheme + path
    assert main(["status", "--storage", url, "--study-name", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"autoinit: error: storage {url!r} holds no study: there is no file {path!r}")
    assert list(tmp_path.iterdir()) == []
