"""Many workers on one study: shared trials, a SIGKILLed worker, workers started at the same
instant on an empty storage, a database restarted mid-search; nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autoinit.presets import list_presets
from autoinit.space import BASELINES
from autoinit.status import study_status

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def _start(url: str, study: str, n: int, steps: int, extra_env: dict | None = None
           ) -> subprocess.Popen:
    env = {**os.environ, "AUTOINIT_HEARTBEAT_INTERVAL": "1", "AUTOINIT_GRACE_PERIOD": "3",
           "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.Popen([sys.executable, WORKER, url, study, str(n), str(steps)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_two_workers_one_killed_mid_trial(postgres_url, tmp_path):
    from autoinit.integrations.testing import sqlite_store

    n = 20
    tracking = {"WORKER_TRACKING_URI": sqlite_store(tmp_path / "mlflow.db")}
    a = _start(postgres_url, "killed", n, 150, tracking)
    b = _start(postgres_url, "killed", n, 150, tracking)

    def study():
        return optuna.load_study(study_name="killed", storage=postgres_url)

    def two_running() -> bool:
        try:
            trials = study().get_trials(deepcopy=False)
        except KeyError:
            return False
        return sum(t.state == TrialState.RUNNING for t in trials) >= 2 and len(trials) >= 9

    def a_stopped_mid_trial() -> bool:
        """Freeze ``a`` once two trials run; with ``b`` running one trial at a time, two RUNNING
        trials seen while ``a`` is frozen mean one is ``a``'s, which it cannot finish before the
        kill. Else let ``a`` go on."""
        if not two_running():
            return False
        a.send_signal(signal.SIGSTOP)
        if two_running():
            return True
        a.send_signal(signal.SIGCONT)
        return False

    _wait_for(a_stopped_mid_trial, timeout=300.0)
    a.send_signal(signal.SIGKILL)
    a.wait()
    out, err = b.communicate(timeout=300)
    assert b.returncode == 0, err[-2000:]
    trials = study().get_trials(deepcopy=False)
    done = [t for t in trials if t.state in DONE]
    assert len(done) == n
    # the survivor waited for the killed worker's trial to lapse, then ran its retry itself
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) >= 1  # the killed worker's trial, failed by its missing heartbeat
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    assert all(t.number in retried for t in failed)
    baselines = [t.user_attrs["baseline"] for t in done if "baseline" in t.user_attrs]
    assert sorted(baselines) == sorted(set(baselines))  # no baseline ran twice
    report = json.loads(out.strip().splitlines()[-1])
    # the survivor chose among the best of all completed trials, its peer's included: the best
    # baseline, the best preset and the two best search trials of the whole study went to its
    # selection round
    presets = set(list_presets())
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    named = [t for t in complete if "baseline" in t.user_attrs]
    best_baseline = next(t.number for t in named if t.user_attrs["baseline"] not in presets)
    best_preset = [t.number for t in named if t.user_attrs["baseline"] in presets][:1]
    best_search = [t.number for t in complete if "baseline" not in t.user_attrs][:2]
    assert report["candidates"] == [best_baseline, *best_preset, *best_search]
    assert report["chosen"] in {t.user_attrs.get("baseline", f"search #{t.number}")
                                for t in complete if t.number in report["candidates"]}
    assert "s3cret-pw" not in out + err
    # MLflow: the survivor closed the dead worker's parent run; no run is left RUNNING
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking["WORKER_TRACKING_URI"])
    experiment = client.get_experiment_by_name("distributed").experiment_id
    runs = client.search_runs([experiment], run_view_type=ViewType.ALL)
    parents = {r.data.tags["autoinit.worker"].rpartition(":")[2]: r for r in runs
               if "autoinit.worker" in r.data.tags}
    assert parents[str(a.pid)].info.status == "KILLED"
    assert parents[str(b.pid)].info.status == "FINISHED"
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_unreachable_postgres_is_retried_then_reported_with_the_password_hidden(postgres_url,
                                                                              monkeypatch):
    from autoinit.errors import StorageError
    from autoinit.storage import open_storage

    monkeypatch.setenv("AUTOINIT_STORAGE_PATIENCE", "1")
    with pytest.raises(StorageError) as info:
        open_storage(postgres_url.rsplit(":", 1)[0] + ":1/autoinit")
    assert "s3cret-pw" not in str(info.value)


def test_wrong_password_or_database_is_bad_input_at_once(postgres_url):
    from autoinit.errors import ConfigError
    from autoinit.storage import open_storage

    for url, cause in ((postgres_url.replace("s3cret-pw", "wrong-pw"), "password authentication"),
                       (postgres_url.rsplit("/", 1)[0] + "/no_such_db", "does not exist")):
        with pytest.raises(ConfigError, match=cause) as info:  # no retries: the user's mistake
            open_storage(url)
        assert "s3cret-pw" not in str(info.value) and "wrong-pw" not in str(info.value)


def test_mlflow_server_on_postgres_receives_a_search(postgres_url, tmp_path, tiny_loader):
    import psycopg
    from conftest import tiny_mlp
    from mlflow import MlflowClient

    import autoinit
    from autoinit.integrations.testing import LocalMlflowServer

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE mlflow_store")  # MLflow and Optuna keep their own schemas
    backend = postgres_url.rsplit("/", 1)[0] + "/mlflow_store"
    with LocalMlflowServer(tmp_path, backend_store_uri=backend) as server:
        result = autoinit.fit(tiny_mlp(), tiny_loader, n_trials=7, probe_steps=4,
                              storage=postgres_url, study_name="tracked",
                              tracking_uri=server.url, require_tracking=True)
        client = MlflowClient(server.url)
        parent = client.get_run(result.extra["mlflow_run_id"])
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert len(children) == 7
        logged = str(parent.data.params) + str(parent.data.tags)
        assert "s3cret-pw" not in logged


# ----------------------------------------------------------------- many workers started at once

STUDY = """
[model]
factory = "factories.py:model"
[data]
factory = "factories.py:data"
[train]
loss = "cross_entropy"
[search]
n_trials = 10
probe_steps = 4
[mlflow]
enabled = false
"""
FACTORIES = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def model():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))


def data():
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32)
"""
# The CLI's own entry point, entered by every worker at one shared instant (imports done first).
AT_ONCE = ("import sys, time; from autoinit.cli import main; "
           "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); sys.exit(main(sys.argv[2:]))")


def _empty_storage(kind: str, tmp_path: Path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if kind == "journal":
        return f"journal://{tmp_path / 'study.log'}"
    import psycopg

    url = request.getfixturevalue("postgres_url")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE start_at_once")
    return url.rsplit("/", 1)[0] + "/start_at_once"


def _study(url: str, name: str) -> optuna.Study:
    if url.startswith("journal://"):
        from autoinit.storage import open_storage

        return optuna.load_study(study_name=name, storage=open_storage(url))
    return optuna.load_study(study_name=name, storage=url)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["postgresql", "sqlite", "journal"])
def test_eight_workers_started_at_once_on_an_empty_storage_share_one_study(kind, tmp_path,
                                                                            request):
    """A job array: the same command 8 times at one instant on a storage with no tables yet
    (no file yet). Every worker joins the one study, none fails, the study holds exactly N
    trials, and each baseline ran once."""
    url = _empty_storage(kind, tmp_path, request)
    (tmp_path / "tiny.toml").write_text(STUDY)
    (tmp_path / "factories.py").write_text(FACTORIES)
    at = time.time() + 6.0  # every worker has imported autoinit by then, or nearly
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", AT_ONCE, str(at), "search", "tiny.toml",
                               "--storage", url, "--study-name", "array", "--out", f"s{i}.json"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    results = [p.communicate(timeout=800) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert "scheme written to" in out and "s3cret-pw" not in out + err
    trials = _study(url, "array").get_trials(deepcopy=False)
    assert sum(t.state in DONE for t in trials) == 10
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    baselines = [t.user_attrs["baseline"] for t in trials if "baseline" in t.user_attrs]
    # queued once, each ran once: the baselines and the one preset a plain MLP has
    assert sorted(baselines) == sorted({*BASELINES, "lsuv", "zero_readout"})
    # the joiners waited for the creator's queue: the named candidates are the first trials
    assert sorted(t.number for t in trials if "baseline" in t.user_attrs) == \
        list(range(len(baselines)))
    status = study_status(url, "array")  # a trial a worker began beyond N is no failure
    assert status.finished == 10 and status.counts["failed"] == 0


# ----------------------------------------------------------------- the database restarts

@pytest.mark.timeout(600)
def test_a_database_restart_mid_search_loses_nothing():
    """PostgreSQL stopped for a few seconds and started again while 2 workers run trials: both
    wait for it and go on; the study ends with exactly N finished trials and none RUNNING."""
    from autoinit.testing import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        n = 16
        extra = {"AUTOINIT_GRACE_PERIOD": "10"}  # a few seconds' outage is not a dead worker
        workers = [_start(server.url, "restart", n, 60, extra) for _ in range(2)]

        def both_running() -> bool:
            try:
                trials = optuna.load_study(study_name="restart", storage=server.url).trials
            except KeyError:
                return False
            return sum(t.state == TrialState.RUNNING for t in trials) >= 2 and len(trials) >= 8

        _wait_for(both_running)
        server.stop()
        time.sleep(3.0)
        server.start()
        results = [w.communicate(timeout=500) for w in workers]
        for w, (_, err) in zip(workers, results, strict=True):
            assert w.returncode == 0, err[-2000:]
        assert any("does not answer" in err for _, err in results)  # the outage was met
        trials = optuna.load_study(study_name="restart", storage=server.url).trials
        assert sum(t.state in DONE for t in trials) == n
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@pytest.mark.timeout(600)
def test_a_database_away_longer_than_the_patience_is_exit_1_then_the_study_resumes(tmp_path):
    """The database stops for good mid-search: after AUTOINIT_STORAGE_PATIENCE seconds of
    retries the command ends with exit 1 and one error line naming the storage (not bad input,
    exit 2); started again, the same command resumes the study to its full count."""
    from autoinit.testing import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with server:
        (tmp_path / "tiny.toml").write_text(STUDY)
        (tmp_path / "factories.py").write_text(FACTORIES)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "AUTOINIT_STORAGE_PATIENCE": "3",
               "AUTOINIT_HEARTBEAT_INTERVAL": "1", "AUTOINIT_GRACE_PERIOD": "2"}
        cmd = [sys.executable, "-m", "autoinit", "search", "tiny.toml", "--storage", server.url,
               "--study-name", "away", "--out", "s.json"]
        proc = subprocess.Popen([*cmd, "--n-trials", "1000"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def finished() -> int:
            try:
                return sum(t.state in DONE for t in _study(server.url, "away").trials)
            except KeyError:
                return 0

        _wait_for(lambda: finished() >= 8)
        server.stop()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("autoinit: error: storage 'postgresql://postgres:***@127.0.0.1:")
        assert "still fails after" in last and "s3cret-pw" not in err and "Traceback" not in err
        server.start()
        kept = finished()
        again = subprocess.run([*cmd, "--n-trials", str(kept + 2)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-2000:]
        trials = _study(server.url, "away").trials
        assert sum(t.state in DONE for t in trials) == kept + 2
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
