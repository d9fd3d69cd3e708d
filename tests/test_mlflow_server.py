"""MLflow tracking over HTTP against a real ``mlflow server`` (SQLite backend, proxied artifacts).

The server is started once per session (shared with the browser test) and stopped at its end; the
last test here stops it in the middle of a search.
"""

from __future__ import annotations

import re
import time
import warnings

import pytest
import torch
from mlflow import MlflowClient
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoinit
from autoinit.integrations import TrackingWarning
from autoinit.integrations.testing import shared_server


def make_loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(384, 8, generator=g)
    return DataLoader(TensorDataset(x, (x[:, 0] - x[:, 2] > 0).long()), batch_size=32)


def make_model() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    return shared_server(request.config, tmp_path_factory.mktemp("mlflow-server"))


def test_a_search_logs_to_a_tracking_server_over_http(server):
    result = autoinit.fit(make_model(), make_loader(), n_trials=8, probe_steps=8,
                          tracking_uri=server.url, experiment="over-http", require_tracking=True)
    assert result.extra["mlflow_tracking_uri"] == server.url
    client = MlflowClient(server.url)
    run = client.get_run(result.extra["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == result.study.study_name
    assert run.data.metrics["best_score"] == pytest.approx(result.score)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied through the server
    kids = client.search_runs([run.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert sorted(int(k.data.tags["autoinit.trial"]) for k in kids) == [
        t.number for t in result.study.trials]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {
        "plots/probe_curves.png", "plots/signal_profile.png"}
    assert autoinit.load_scheme(f"runs:/{run.info.run_id}", tracking_uri=server.url) == result.scheme


def test_stopping_the_server_mid_search_warns_once_and_the_search_completes(server):
    folder, stop_after = server.folder, 3

    def stop_server(study, trial):
        if trial.number == stop_after:
            server.stop()

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = autoinit.fit(make_model(), make_loader(), n_trials=10, probe_steps=8,
                              tracking_uri=server.url, experiment="server-dies",
                              callbacks=[stop_server])
    elapsed = time.perf_counter() - start
    ours = [str(w.message) for w in caught if issubclass(w.category, TrackingWarning)]
    assert len(ours) == 1, ours
    # children are logged from a background thread, which may lag the search by a trial or two
    failed_at = int(re.search(r"logging trial (\d+)", ours[0]).group(1))
    assert failed_at <= stop_after and result.study.study_name in ours[0]
    assert len(result.study.trials) == 10 and result.scheme is not None
    assert "mlflow_run_id" in result.extra
    assert elapsed < 120, f"the dead server held the search up for {elapsed:.0f} s"
    # what reached the server before it stopped is in its database
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    parent = client.get_run(result.extra["mlflow_run_id"])
    assert parent.info.status == "RUNNING"  # it could not be closed
    kids = client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    logged = sorted(int(k.data.tags["autoinit.trial"]) for k in kids)
    assert logged == list(range(len(logged))) and failed_at - 1 <= len(logged) - 1 <= failed_at
    assert all(k.info.status == "FINISHED" for k in kids if int(k.data.tags["autoinit.trial"]) < failed_at)


def test_a_server_restarted_mid_search_misses_no_trial_and_leaves_no_run_running(tmp_path):
    """The tracking server stops at trial 3 and is back (same port, same store) at trial 6: the
    search completes, every trial has its child run (those of the outage logged late), the
    parent is closed, and no run is left RUNNING."""
    from mlflow.entities import ViewType

    from autoinit.integrations.testing import LocalMlflowServer

    server = LocalMlflowServer(tmp_path / "mlflow").start()
    try:
        def restart(study, trial):
            if trial.number == 3:
                server.stop()
            elif trial.number == 6:
                server.start()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = autoinit.fit(make_model(), make_loader(), n_trials=12, probe_steps=8,
                                  tracking_uri=server.url, experiment="restarted",
                                  callbacks=[restart])
        assert any(issubclass(w.category, TrackingWarning) for w in caught)  # the outage was met
        client = MlflowClient(server.url)
        parent = client.get_run(result.extra["mlflow_run_id"])
        assert parent.info.status == "FINISHED"
        runs = client.search_runs([parent.info.experiment_id], run_view_type=ViewType.ALL)
        assert not [r for r in runs if r.info.status == "RUNNING"]
        kids = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert sorted(int(k.data.tags["autoinit.trial"]) for k in kids) == list(range(12))
    finally:
        server.stop()
