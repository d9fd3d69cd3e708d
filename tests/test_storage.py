"""Storages from URLs, passwords kept out of messages, and studies that cannot be continued."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import time

import optuna
import pytest
import torch
from conftest import tiny_mlp

from autoinit.errors import ConfigError, StorageError
from autoinit.search import run_search
from autoinit.storage import fault_kind, open_storage, redact

SMALL = {"n_trials": 8, "probe_steps": 8}


def test_redact_hides_passwords_only():
    assert redact("postgresql://bob:pa:ss@h:5432/db") == "postgresql://bob:***@h:5432/db"
    assert redact("error at mysql://u:x@h/db and sqlite:///a.db") == \
        "error at mysql://u:***@h/db and sqlite:///a.db"
    assert redact("postgresql://h/db") == "postgresql://h/db"


def test_one_redact_for_storages_and_tracking():
    from autoinit.integrations import mlflow as tracking

    url = "postgresql://bob:s3cret@db?sslmode=require&api_key=k1"
    assert tracking.redact is redact
    assert redact(url) == "postgresql://bob:***@db?sslmode=require&api_key=***"


def test_storage_kinds(tmp_path):
    assert open_storage(None) is None
    rdb = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(rdb, optuna.storages.RDBStorage) and rdb.heartbeat_interval == 10
    journal = open_storage(f"journal://{tmp_path / 'j.log'}")
    assert isinstance(journal, optuna.storages.JournalStorage)
    with pytest.raises(ConfigError, match="storage must be sqlite:///FILE"):
        open_storage("redis://u:secret@localhost/0")


def test_unreachable_storage_is_retried_then_one_clear_line_without_the_password(monkeypatch):
    monkeypatch.setenv("AUTOINIT_STORAGE_PATIENCE", "1")
    with pytest.raises(StorageError) as info:  # not the user's input: exit 1, not 2
        open_storage("postgresql://alice:hunter2@127.0.0.1:1/studies")
    message = str(info.value)
    assert "still fails after" in message and "Connection refused" in message
    assert "hunter2" not in message and "***" in message and "\n" not in message


@pytest.mark.parametrize("message, opening, kind", [
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused', False, "transient"),
    ("terminating connection due to administrator command", False, "transient"),
    ("the database system is starting up", False, "transient"),
    ("database is locked", False, "transient"),
    ('FATAL:  password authentication failed for user "u"', False, "permanent"),
    ('FATAL:  database "nope" does not exist', False, "permanent"),
    ("database or disk is full", False, "permanent"),
    ("attempt to write a readonly database", False, "permanent"),
    ('duplicate key value violates unique constraint "pg_type_typname_nsp_index"', True,
     "transient"),  # workers creating the same tables at once
    ('duplicate key value violates unique constraint "pg_type_typname_nsp_index"', False,
     "permanent"),
])
def test_fault_kinds(message, opening, kind):
    import sqlalchemy

    exc = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(message))
    assert fault_kind(exc, opening) == kind
    assert fault_kind(KeyError("no study"), opening) is None


def test_a_missing_database_driver_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "MySQLdb", None)  # no driver, whatever this machine has
    with pytest.raises(ConfigError) as info:
        open_storage("mysql://bob:hunter2@127.0.0.1:1/studies")
    assert str(info.value) == ("storage 'mysql://bob:***@127.0.0.1:1/studies' cannot be opened: "
                               "its database driver is not installed (pip install pymysql and "
                               "write the URL as mysql+pymysql://...)")


def test_a_study_from_another_search_space_is_refused(tiny_loader, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s", **SMALL)
    with pytest.raises(ConfigError, match="was searched over another space"):
        run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s", search_lr=True,
                   **SMALL)


def test_nan_in_the_data_is_bad_input(tiny_loader):
    batches = list(tiny_loader)
    x, y = batches[3]
    batches[3] = (x.clone().index_fill_(0, torch.tensor([0]), float("nan")), y)
    with pytest.raises(ConfigError, match="batch .* holds NaN or infinite values"):
        run_search(tiny_mlp(), batches, **SMALL)


def _in_probe() -> bool:
    """Whether the caller runs inside a probe (``run_probe``); the loss is also called by the
    screening pass and by the bare steps the cost unit re-times after every trial."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "run_probe":
            return True
        frame = frame.f_back
    return False


def test_trial_interrupted_mid_probe_is_retried_on_resume(tiny_loader, tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    armed = {"calls": None}

    def arm(study, trial):
        if trial.number == 6:  # the baselines are done; the next trial is the sampler's
            armed["calls"] = 0

    def loss(model, batch):
        if armed["calls"] is not None and _in_probe():  # not the cost unit's re-timed steps
            armed["calls"] += 1
            if armed["calls"] == 5:  # mid-probe
                raise KeyboardInterrupt
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    # 5 trials after the arming one: the 5th probe step falls in a trial, not in the selection
    # round (which could happen with one trial left, if the sampler's trial were screened out)
    budget = {**SMALL, "n_trials": 12}
    first = run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s", loss_fn=loss,
                       callbacks=[arm], **budget)
    failed = [t for t in first.study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert first.extra["interrupted"] and len(failed) == 1
    resumed = run_search(tiny_mlp(), tiny_loader, storage=storage, study_name="s", **budget)
    retry = [t for t in resumed.study.trials if t.user_attrs.get("retry_of") == failed[0].number]
    assert len(retry) == 1 and retry[0].params == failed[0].params
    done = [t for t in resumed.study.trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                                           optuna.trial.TrialState.PRUNED)]
    assert len(done) == 12


# ------------------------------------------------------------------ a disk that fills up

@pytest.fixture
def small_disk(tmp_path):
    """A tiny tmpfs mounted at ``tmp_path/disk`` (needs root): a disk that fills up, and that
    can be made larger or read-only with ``mount -o remount,...``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _remount(disk, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(disk)], check=True)


def _url(kind: str, disk) -> str:
    return f"sqlite:///{disk / 's.db'}" if kind == "sqlite" else f"journal://{disk / 's.log'}"


def _trials(url: str):
    return optuna.load_study(study_name="s", storage=open_storage(url)).get_trials(deepcopy=False)


DONE = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@pytest.mark.parametrize("kind, size", [("sqlite", "200k"), ("journal", "64k")])
def test_a_full_disk_is_one_line_naming_the_file_and_the_study_resumes(kind, size, small_disk,
                                                                       tiny_loader, monkeypatch):
    monkeypatch.setenv("AUTOINIT_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AUTOINIT_GRACE_PERIOD", "2")
    _remount(small_disk, f"size={size}")
    url = _url(kind, small_disk)
    with pytest.raises(StorageError) as info:
        run_search(tiny_mlp(), tiny_loader, storage=url, study_name="s", n_trials=500,
                   probe_steps=4)
    message = str(info.value)
    assert str(small_disk) in message and "\n" not in message
    assert "disk is full" in message or "No space left on device" in message
    kept = [t for t in _trials(url) if t.state in DONE]
    assert len(kept) >= 6  # the baselines at least finished before the disk filled
    _remount(small_disk, "size=8m")  # space freed: the same call resumes the study
    n = len(kept) + 3
    result = run_search(tiny_mlp(), tiny_loader, storage=url, study_name="s", n_trials=n,
                        probe_steps=4)
    trials = result.study.get_trials(deepcopy=False)
    assert sum(t.state in DONE for t in trials) == n
    assert [t.number for t in trials if t.state in DONE][:len(kept)] == [t.number for t in kept]
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_read_only_storage_is_bad_input_naming_the_file(kind, small_disk, tiny_loader):
    _remount(small_disk, "size=8m")
    url = _url(kind, small_disk)
    run_search(tiny_mlp(), tiny_loader, storage=url, study_name="s", **SMALL)
    gc.collect()  # the study's database connections closed: the disk can be remounted
    _remount(small_disk, "ro")
    with pytest.raises(ConfigError, match="read-only") as info:
        run_search(tiny_mlp(), tiny_loader, storage=url, study_name="s", n_trials=12,
                   probe_steps=8)
    assert str(small_disk) in str(info.value) and "\n" not in str(info.value)
    _remount(small_disk, "rw")
    assert sum(t.state in DONE for t in _trials(url)) == SMALL["n_trials"]  # untouched


def test_a_running_trial_that_never_beat_is_failed_after_the_grace_period(tmp_path, monkeypatch):
    """A worker that dies between creating a trial and its first heartbeat (the database went
    away then) left it RUNNING for good: Optuna's stale rule needs a heartbeat, and a peer
    waiting for the study's last trials waited forever (seen once in CI)."""
    monkeypatch.setenv("AUTOINIT_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("AUTOINIT_GRACE_PERIOD", "1")
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    orphan = storage.create_new_trial(study._study_id)  # RUNNING, no heartbeat recorded
    beating = storage.create_new_trial(study._study_id)
    storage.record_heartbeat(beating)
    optuna.storages.fail_stale_trials(study)  # first seen without a heartbeat: not yet stale
    assert storage.get_trial(orphan).state == optuna.trial.TrialState.RUNNING
    storage.record_heartbeat(beating)
    for _ in range(30):  # past the 1 s grace period, on this process's clock
        time.sleep(0.1)
    storage.record_heartbeat(beating)
    optuna.storages.fail_stale_trials(study)
    assert storage.get_trial(orphan).state == optuna.trial.TrialState.FAIL
    assert storage.get_trial(beating).state == optuna.trial.TrialState.RUNNING
