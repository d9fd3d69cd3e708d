"""Many workers on one PostgreSQL study: shared trials, a SIGKILLed worker, nothing lost."""

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

WORKER = str(Path(__file__).with_name("distributed_worker.py"))
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def _start(url: str, study: str, n: int, steps: int) -> subprocess.Popen:
    env = {**os.environ, "AUTOINIT_HEARTBEAT_INTERVAL": "1", "AUTOINIT_GRACE_PERIOD": "3",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, WORKER, url, study, str(n), str(steps)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_two_workers_one_killed_mid_trial(postgres_url):
    n = 20
    a = _start(postgres_url, "killed", n, 150)
    b = _start(postgres_url, "killed", n, 150)

    def study():
        return optuna.load_study(study_name="killed", storage=postgres_url)

    def both_running() -> bool:
        try:
            trials = study().get_trials(deepcopy=False)
        except KeyError:
            return False
        return sum(t.state == TrialState.RUNNING for t in trials) >= 2 and len(trials) >= 9

    _wait_for(both_running)
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
    # baseline and the two best search trials of the whole study went to its selection round
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    best_baseline = next(t.number for t in complete if "baseline" in t.user_attrs)
    best_search = [t.number for t in complete if "baseline" not in t.user_attrs][:2]
    assert report["candidates"] == [best_baseline, *best_search]
    assert report["chosen"] in {t.user_attrs.get("baseline", f"search #{t.number}")
                                for t in complete if t.number in report["candidates"]}
    assert "s3cret-pw" not in out + err


def test_unreachable_postgres_fails_fast_with_the_password_hidden(postgres_url):
    bad = postgres_url.rsplit(":", 1)[0] + ":1/autoinit"
    from autoinit.errors import ConfigError
    from autoinit.storage import open_storage

    with pytest.raises(ConfigError) as info:
        open_storage(bad)
    assert "s3cret-pw" not in str(info.value)


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
