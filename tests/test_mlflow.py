"""MLflow tracking against a real SQLite store, read back through the real ``MlflowClient``.

One small search (module scope) feeds most tests; each other search logs into its own experiment,
created with its artifacts under the test's temporary folder.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import mlflow
import optuna
import pytest
import torch
from conftest import tiny_mlp
from mlflow import MlflowClient
from optuna.trial import TrialState
from torch.utils.data import DataLoader, TensorDataset

import autoinit
from autoinit.integrations import TrackingError, TrackingWarning
from autoinit.integrations.mlflow import PARAM_VALUE_LIMIT, TrialLogger, flatten_rules, redact
from autoinit.integrations.mlflow._alarm import _Alarm
from autoinit.integrations.mlflow._search_run import _summary_params
from autoinit.integrations.testing import free_port, mlflow_globals_kept, sqlite_store

STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}
STATE = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def make_loader(seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(384, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32)


make_model = tiny_mlp  # the shared tiny model (tests/conftest.py)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """``(tracking_uri, client, new_experiment)``: a SQLite store in a temporary folder."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = sqlite_store(folder / "mlflow.db")
    client = MlflowClient(uri)

    def new_experiment(name: str) -> str:
        client.create_experiment(name, artifact_location=(folder / name).as_uri())
        return name

    return uri, client, new_experiment


@pytest.fixture(scope="module")
def searched(store):
    uri, client, new_experiment = store
    model = make_model()
    result = autoinit.fit(model, make_loader(), n_trials=8, probe_steps=8, tracking_uri=uri,
                          experiment=new_experiment("main"))
    return model, result, client, client.get_run(result.extra["mlflow_run_id"])


def children(client: MlflowClient, parent) -> list:
    return client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def test_parent_run_is_named_after_the_study_and_tagged(searched, store):
    model, result, client, run = searched
    assert run.info.run_name == result.study.study_name
    assert run.info.status == "FINISHED"
    assert result.extra["mlflow_tracking_uri"] == store[0]
    tags = run.data.tags
    assert tags["autoinit.version"] == autoinit.__version__
    assert tags["torch.version"] == torch.__version__
    assert tags["autoinit.device"] == "cpu"
    assert tags["model.class"] == "Sequential"
    assert tags["model.fingerprint"] == result.scheme.fingerprint
    assert int(tags["model.parameters"]) == sum(p.numel() for p in model.parameters())
    assert tags["autoinit.chosen"] == result.chosen
    assert "| candidate |" in tags["mlflow.note.content"]
    params = run.data.params
    assert (params["n_trials"], params["probe_steps"], params["groups"]) == ("8", "8", "role")
    assert (params["optimizer"], float(params["lr"])) == ("adam", 1e-3)
    assert params["study_name"] == result.study.study_name


def test_parent_metrics_compare_baselines_with_the_chosen_scheme(searched):
    _, result, client, run = searched
    m = run.data.metrics
    for name, score in result.baselines.items():
        assert m[f"baseline/{name}"] == pytest.approx(score)
    assert m["best_score"] == pytest.approx(result.score)
    base = next(c for c in result.candidates if c.name in result.baselines)
    assert m["improvement"] == pytest.approx(base.mean - result.score)
    cost = result.cost
    assert m["cost/probe_steps"] == cost.probe_steps
    assert m["cost/tse"] == pytest.approx(cost.tse)
    assert m["cost/wall_seconds"] == pytest.approx(cost.wall_seconds)
    assert (m["cost/trials_complete"], m["cost/trials_pruned"], m["cost/trials_failed"]) == (
        cost.trials_complete, cost.trials_pruned, cost.trials_failed)
    history = client.get_metric_history(run.info.run_id, "search/best_so_far")
    assert [h.step for h in history] == sorted(h.step for h in history)
    assert min(h.value for h in history) == pytest.approx(result.study.best_value)


def test_parent_artifacts_hold_scheme_table_and_plots(searched, tmp_path):
    _, result, client, run = searched
    rid = run.info.run_id
    listed = {a.path for a in client.list_artifacts(rid, "autoinit")}
    assert {"autoinit/scheme.json", "autoinit/comparison.md", "autoinit/comparison.json",
            "autoinit/summary.txt"} <= listed
    plots = {a.path: a.file_size for a in client.list_artifacts(rid, "plots")}
    assert set(plots) == {f"plots/{n}.png" for n in ("probe_curves", "signal_profile",
                                                      "optimization_history", "param_importances")}
    assert "autoinit.plots_skipped" not in run.data.tags
    local = client.download_artifacts(rid, "", str(tmp_path))
    table = json.loads((tmp_path / "autoinit" / "comparison.json").read_text())
    assert table["chosen"] == result.chosen
    assert {r["name"] for r in table["rows"] if r["kind"] == "baseline"} == set(result.baselines)
    assert [r["name"] for r in table["rows"] if r["chosen"]] == [result.chosen]
    note = (tmp_path / "autoinit" / "comparison.md").read_text()
    assert f"| {result.chosen} |" in note
    assert f"Cost{result.cost.describe()[len('cost'):]}." in note  # the summary's cost line
    import matplotlib.image

    for path in plots:
        image = matplotlib.image.imread(f"{local}/{path}")
        assert image.shape[0] > 200 and image.shape[1] > 400 and image.std() > 0.01


def test_one_child_run_per_trial_with_scheme_curve_score_and_state(searched):
    _, result, client, run = searched
    kids = {int(k.data.tags["autoinit.trial"]): k for k in children(client, run)}
    trials = result.study.trials
    assert sorted(kids) == [t.number for t in trials]
    for t in trials:
        kid = kids[t.number]
        assert kid.info.status == STATUS[t.state]
        assert kid.data.tags["autoinit.state"] == STATE[t.state]
        assert kid.info.end_time >= kid.info.start_time
        if t.state == TrialState.PRUNED:
            assert kid.data.tags["autoinit.reason"] == t.user_attrs["failure"]
        rules = json.loads(t.user_attrs["rules"])
        for group, rule in rules.items():
            assert kid.data.params[f"{group}.family"] == rule["family"]
            assert float(kid.data.params[f"{group}.scale"]) == pytest.approx(rule["scale"])
            assert kid.data.params[f"{group}.bias"] == rule["bias"]
        curve = client.get_metric_history(kid.info.run_id, "probe_loss")
        assert [(h.step, pytest.approx(h.value)) for h in sorted(curve, key=lambda h: h.step)] == [
            (s, pytest.approx(v)) for s, v in t.user_attrs.get("curve", [])]  # screened out: none
        if t.state == TrialState.COMPLETE:
            assert kid.data.metrics["score"] == pytest.approx(t.value)
        else:
            assert "score" not in kid.data.metrics
        assert kid.data.tags.get("autoinit.baseline") == t.user_attrs.get("baseline")


@pytest.mark.parametrize("state, attrs, reason", [
    (TrialState.PRUNED, {"failure": "screened out: 0: exploding_activation"},
     "screened out: 0: exploding_activation"),
    (TrialState.FAIL, {}, "the objective raised an exception (see the Optuna log)"),
])
def test_pruned_and_failed_trials_get_a_matching_status_and_reason(store, state, attrs, reason):
    uri, client, new_experiment = store
    exp = client.get_experiment_by_name(new_experiment(f"state-{state.name}")).experiment_id
    parent = client.create_run(exp).info.run_id
    rules = {"hidden.linear": {"family": "orthogonal", "scale": 9.0, "bias": "zeros",
                               "bias_value": 0.0, "nonlinearity": "relu", "options": {}}}
    trial = optuna.trial.create_trial(state=state, user_attrs={"rules": json.dumps(rules), **attrs})
    logger = TrialLogger(uri, exp, parent, _Alarm("states", require=True), lr=1e-3)
    kid = client.get_run(logger.log(trial))
    assert kid.info.status == STATUS[state]
    assert kid.data.tags["autoinit.state"] == STATE[state]
    assert kid.data.tags["autoinit.reason"] == reason
    assert kid.data.tags["mlflow.parentRunId"] == parent
    assert kid.data.params["hidden.linear.scale"] == "9.0"
    assert "score" not in kid.data.metrics


def test_round_trip_fit_load_apply_gives_the_same_weights(searched, store, tmp_path, monkeypatch):
    model, result, client, run = searched
    uri, rid = store[0], run.info.run_id
    path = client.download_artifacts(rid, "autoinit/scheme.json", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for ref in (rid, f"runs:/{rid}", f"runs:/{rid}/autoinit/scheme.json", path, tmp_path):
        loaded = autoinit.load_scheme(ref, tracking_uri=uri if ref == rid else None)
        assert loaded == result.scheme
        fresh = autoinit.apply_scheme(make_model(seed=123), loaded)
        for (name, a), b in zip(fresh.state_dict().items(), model.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


def test_load_scheme_names_the_run_it_cannot_read(store):
    with pytest.raises(autoinit.SchemeError, match="0123456789abcdef0123456789abcdef"):
        autoinit.load_scheme("0123456789abcdef0123456789abcdef", tracking_uri=store[0])


def test_load_scheme_from_a_store_that_does_not_exist_creates_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with mlflow_globals_kept():
        mlflow.set_tracking_uri(None)  # MLflow's default: a mlflow.db in the current folder
        with pytest.raises(autoinit.SchemeError, match=r"there is no file '.*mlflow\.db'$"):
            autoinit.load_scheme("0123456789abcdef0123456789abcdef")
    with pytest.raises(autoinit.SchemeError, match=r"there is no file '.*other\.db'$"):
        autoinit.load_scheme("runs:/0123456789abcdef0123456789abcdef",
                             tracking_uri=f"sqlite:///{tmp_path}/other.db")
    assert list(tmp_path.iterdir()) == []


def test_mlflow_false_logs_nothing_and_env_uri_is_used(store, monkeypatch):
    uri, client, new_experiment = store
    name = new_experiment("switches")
    exp = client.get_experiment_by_name(name).experiment_id
    off = autoinit.fit(make_model(), make_loader(), n_trials=6, probe_steps=4, mlflow=False,
                       experiment=name, tracking_uri=uri)
    assert "mlflow_run_id" not in off.extra
    assert client.search_runs([exp]) == []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # no tracking_uri=: MLflow's own setting
    on = autoinit.fit(make_model(), make_loader(), n_trials=6, probe_steps=4, experiment=name)
    parents = [r.info.run_id for r in client.search_runs([exp])
               if "mlflow.parentRunId" not in r.data.tags]
    assert parents == [on.extra["mlflow_run_id"]]


def test_user_active_run_becomes_the_parent_and_stays_untouched(store):
    uri, client, new_experiment = store
    exp = client.get_experiment_by_name(new_experiment("user")).experiment_id
    with mlflow_globals_kept():  # the URI is process-wide: left set, later tests would write to it
        mlflow.set_tracking_uri(uri)
        with mlflow.start_run(experiment_id=exp) as user_run:
            result = autoinit.fit(make_model(), make_loader(), n_trials=7, probe_steps=4)
            assert mlflow.active_run().info.run_id == user_run.info.run_id
        ours = client.get_run(result.extra["mlflow_run_id"])
    assert ours.info.experiment_id == exp
    assert ours.data.tags["mlflow.parentRunId"] == user_run.info.run_id
    theirs = client.get_run(user_run.info.run_id)
    assert theirs.data.params == {} and theirs.data.metrics == {}
    assert theirs.info.status == "FINISHED"
    assert len(children(client, ours)) == len(result.study.trials)


def test_unreachable_server_is_one_warning_and_the_search_completes(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the user's setting wins
    url = f"http://127.0.0.1:{free_port()}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = autoinit.fit(make_model(), make_loader(), n_trials=7, probe_steps=4,
                              tracking_uri=url)
    ours = [w for w in caught if issubclass(w.category, TrackingWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    assert result.study.study_name in str(ours[0].message)
    assert "mlflow_run_id" not in result.extra
    assert len(result.study.trials) == 7  # the named candidates: 6 baselines, zero_readout


def test_require_tracking_fails_fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(TrackingError, match="creating the parent run"):
        autoinit.fit(make_model(), make_loader(), n_trials=6, probe_steps=4,
                     tracking_uri=f"http://127.0.0.1:{free_port()}", require_tracking=True)


def test_tracking_options_are_validated():
    with pytest.raises(autoinit.ConfigError, match="mlflow must be True or False, got 'yes'"):
        autoinit.fit(make_model(), make_loader(), mlflow="yes")
    with pytest.raises(TypeError, match="n_trails"):  # before any run is created
        autoinit.fit(make_model(), make_loader(), n_trails=3, tracking_uri="http://127.0.0.1:9")


def test_wide_scheme_params_go_in_batches_and_long_values_are_cut(store, monkeypatch):
    uri, client, new_experiment = store
    exp = client.get_experiment_by_name(new_experiment("wide")).experiment_id
    parent = client.create_run(exp).info.run_id
    rules = {f"block{i}.linear": {"family": "orthogonal", "scale": 1.0 + i / 100, "bias": "zeros",
                                  "bias_value": 0.0, "nonlinearity": "relu", "options": {},
                                  "multiplier": 1.0, "part": "all", "depth_exponent": 0.0}
             for i in range(40)}
    rules["block0.linear"].update(family="kaiming_normal", options={"mode": "x" * 900})
    trial = optuna.trial.create_trial(
        params={}, distributions={}, value=0.5,
        user_attrs={"rules": json.dumps(rules), "curve": [(i, 1.0 / i) for i in range(1, 301)],
                    "train_loss": [1.0] * 300, "probe_steps": 300})
    calls = []
    real = MlflowClient.log_batch

    def spy(self, run_id, metrics=(), params=(), tags=(), synchronous=None):
        calls.append((len(metrics), len(params), len(tags)))
        return real(self, run_id, metrics=metrics, params=params, tags=tags, synchronous=synchronous)

    monkeypatch.setattr(MlflowClient, "log_batch", spy)
    monkeypatch.setattr(MlflowClient, "log_metric", None)  # one step per call would fail here
    logger = TrialLogger(uri, exp, parent, _Alarm("wide", require=True), lr=1e-3)
    kid = client.get_run(logger.log(trial))
    assert len(kid.data.params) == len(flatten_rules(rules)) + 1 > 200
    assert len(calls) >= 3 and all(p <= 100 and t <= 100 and m + p + t <= 1000 for m, p, t in calls)
    assert len(kid.data.params["block0.linear.options.mode"]) == PARAM_VALUE_LIMIT
    assert kid.data.tags["autoinit.params_cut"] == "true"
    assert {a.path for a in client.list_artifacts(kid.info.run_id, "autoinit")} == {
        "autoinit/scheme.json"}
    assert len(client.get_metric_history(kid.info.run_id, "probe_loss")) == 300


def test_parallel_trials_each_log_their_own_child_under_one_parent(store):
    uri, client, new_experiment = store
    name = new_experiment("parallel")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = autoinit.fit(make_model(), make_loader(), n_trials=8, probe_steps=4, n_jobs=2,
                              tracking_uri=uri, experiment=name)
    assert not [w for w in caught if issubclass(w.category, TrackingWarning)]
    parent = client.get_run(result.extra["mlflow_run_id"])
    kids = children(client, parent)
    numbers = sorted(int(k.data.tags["autoinit.trial"]) for k in kids)
    # a surplus trial (two workers counted at one instant) is never run, and not logged
    assert numbers == sorted(t.number for t in result.study.trials if not t.user_attrs.get("surplus"))
    assert len({k.info.run_id for k in kids}) == len(kids)


def test_experiments_autoinit_creates_keep_artifacts_beside_a_local_database(store):
    from autoinit.integrations.mlflow import experiment_id

    uri, client, _ = store
    exp = client.get_experiment(experiment_id(client, uri, "made by autoinit"))
    folder = Path(uri.removeprefix("sqlite:///")).parent
    assert exp.artifact_location == (folder / "mlruns" / "made_by_autoinit").as_uri()
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment_id(client, uri, "made by autoinit") == exp.experiment_id


def test_errors_in_worker_processes_become_one_warning_in_the_main_one():
    alarm = _Alarm("study-x")
    worker = copy.deepcopy(alarm)
    worker.owner = -1  # as in a spawned worker: not the process that made it
    worker.report(RuntimeError("http://u:secret@host down"), "logging trial 4")
    worker.report(RuntimeError("again"), "logging trial 5")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        alarm.collect()
        alarm.collect()
    assert len(caught) == 1 and caught[0].category is TrackingWarning
    text = str(caught[0].message)
    assert "logging trial 4" in text and "study-x" in text and "secret" not in text
    assert not Path(alarm.folder).exists()


def test_passwords_never_reach_params_or_tags():
    assert redact("postgresql://bob:s3cret@db:5432/optuna") == "postgresql://bob:***@db:5432/optuna"
    assert redact("http://u:p@host/x?token=abc&x=1") == "http://u:***@host/x?token=***&x=1"
    params = _summary_params({"storage": "mysql://root:hunter2@10.0.0.1/optuna"}, "s")
    assert params["storage"] == "mysql://root:***@10.0.0.1/optuna"
    storage = type("RDB", (), {"url": "postgresql://a:hunter2@h/db"})()
    assert "hunter2" not in _summary_params({"storage": storage}, "s")["storage"]


def test_the_core_does_not_import_mlflow():
    code = ("import sys, autoinit, autoinit.search, autoinit.integrations; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plots_are_skipped_by_name_not_broken(searched, tmp_path):
    from autoinit.integrations import _report

    model, result, _, _ = searched
    broken = dataclasses.replace(result, context=None)  # no batch, loss or plan to diagnose
    skipped = _report.plots(broken, model, tmp_path)
    assert [s.split(":")[0] for s in skipped] == ["signal_profile"]
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "probe_curves.png", "optimization_history.png", "param_importances.png"}


def test_fit_says_where_it_logs_and_a_finished_study_is_not_logged_twice(store, tmp_path, capsys):
    """Issue 17: ``fit`` wrote mlflow.db and mlruns/ without saying so, its summary did not name
    the run, and rerunning a finished study redid its selection round under a new parent run."""
    uri, client, new_experiment = store
    options = {"n_trials": 7, "probe_steps": 6, "tracking_uri": uri, "progress": True,
               "experiment": new_experiment("rerun"), "storage": f"sqlite:///{tmp_path}/s.db",
               "study_name": "rerun"}
    first = autoinit.fit(make_model(), make_loader(), **options)
    out = capsys.readouterr().out
    run_id = first.extra["mlflow_run_id"]
    said = [line for line in out.splitlines() if line.startswith("MLflow:")]
    assert said == [f"MLflow: logging run {run_id} to experiment 'rerun' at {uri} (artifacts in "
                    f"{client.get_experiment_by_name('rerun').artifact_location})"]
    assert f"MLflow run {run_id} in experiment 'rerun' at {uri}" in first.summary()
    exp = client.get_experiment_by_name("rerun").experiment_id
    runs_before = len(client.search_runs([exp]))

    again = autoinit.fit(make_model(), make_loader(), **options)
    out = capsys.readouterr().out
    assert again.scheme == first.scheme and again.chosen == first.chosen
    assert "reused: nothing was re-run" in again.reason
    assert again.cost.reused and again.cost.selection_steps == first.cost.selection_steps  # stored
    assert "selection round" not in out and not re.search(r"^trial ", out, re.M)
    assert again.extra["mlflow_run_id"] == run_id
    assert len(client.search_runs([exp])) == runs_before  # no new parent, no new children
    assert f"MLflow run {run_id} in experiment 'rerun'" in again.summary()


@pytest.mark.parametrize("planned", [{"train_steps": 400}, {"train_steps": 900},
                                     {"n_trials": 7, "probe_steps": 4, "rungs": 2}],
                         ids=["fewest", "halving", "rungs"])
def test_a_finished_budgeted_or_rung_study_is_not_logged_twice(store, tmp_path, planned):
    """A budget's plan (or rungs) changes the probe length, trials and selection round: a
    rerun must find the stored round under the planned settings, not the options as given."""
    uri, client, new_experiment = store
    name = f"rerun-{next(iter(planned))}-{next(iter(planned.values()))}"
    options = {**planned, "tracking_uri": uri, "experiment": new_experiment(name),
               "storage": f"sqlite:///{tmp_path}/s.db", "study_name": name, "progress": False}
    first = autoinit.fit(make_model(), make_loader(), **options)
    exp = client.get_experiment_by_name(name).experiment_id
    runs_before = len(client.search_runs([exp]))
    again = autoinit.fit(make_model(), make_loader(), **options)
    assert again.scheme == first.scheme and again.extra["mlflow_run_id"] == first.run.run_id
    assert len(client.search_runs([exp])) == runs_before


def test_a_finished_study_whose_probes_were_lengthened_is_not_logged_twice(store, tmp_path):
    """No probe learns on labels of noise: the rounds at 200 and 400 steps are stored studies of
    their own, and a rerun finds the last one's round and run."""
    uri, client, new_experiment = store
    x = torch.randn(384, 8, generator=torch.Generator().manual_seed(0))
    noise = torch.randint(0, 2, (384,), generator=torch.Generator().manual_seed(1))
    options = {"n_trials": 7, "selection": autoinit.Selection(top=1, seeds=1), "tracking_uri": uri,
               "experiment": new_experiment("lengthened"), "storage": f"sqlite:///{tmp_path}/s.db",
               "study_name": "lengthened", "progress": False}
    first = autoinit.fit(make_model(), DataLoader(TensorDataset(x, noise), batch_size=32), **options)
    assert first.study.study_name == "lengthened@400-steps"
    exp = client.get_experiment_by_name("lengthened").experiment_id
    runs_before = len(client.search_runs([exp]))
    again = autoinit.fit(make_model(), DataLoader(TensorDataset(x, noise), batch_size=32), **options)
    assert again.scheme == first.scheme and again.extra["mlflow_run_id"] == first.run.run_id
    assert len(client.search_runs([exp])) == runs_before


def test_a_custom_loop_logs_its_step_values_and_names_its_functions(store):
    uri, client, new_experiment = store

    def clipped_step(model, batch, opt):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return {"loss": loss.item(), "grad_norm": float(norm)}

    result = autoinit.fit(make_model(), make_loader(), n_trials=7, probe_steps=8,
                          train_step=clipped_step, tracking_uri=uri,
                          experiment=new_experiment("custom-loop"))
    run = client.get_run(result.extra["mlflow_run_id"])
    assert run.data.params["train_step"].endswith("clipped_step")
    trials = {t.number: t for t in result.study.trials}
    for kid in children(client, run):
        t = trials[int(kid.data.tags["autoinit.trial"])]
        if t.state != TrialState.COMPLETE:
            continue
        history = client.get_metric_history(kid.info.run_id, "train/grad_norm")
        assert [h.value for h in sorted(history, key=lambda h: h.step)] == pytest.approx(
            t.user_attrs["train_values"]["grad_norm"])
        assert len(client.get_metric_history(kid.info.run_id, "train_loss")) == 8


def test_a_preset_shows_by_name_in_its_child_run_and_the_comparison(searched, tmp_path):
    _, result, client, run = searched
    assert run.data.metrics["baseline/zero_readout"] == pytest.approx(result.baselines["zero_readout"])
    names = {k.data.tags["mlflow.runName"] for k in children(client, run)}
    trial = next(t for t in result.study.trials if t.user_attrs.get("baseline") == "zero_readout")
    assert f"trial-{trial.number}-zero_readout" in names
    client.download_artifacts(run.info.run_id, "autoinit", str(tmp_path))
    table = json.loads((tmp_path / "autoinit" / "comparison.json").read_text())
    assert "zero_readout" in {r["name"] for r in table["rows"]}


def test_without_a_selection_round_no_selection_scores_are_shown_or_logged(searched, store,
                                                                            tmp_path):
    """Selection(seeds=0) chooses by probe scores: the summary, the comparison and the metrics
    showed those probe scores as 'selection mean' and ``selection/<name>``."""
    uri, client, new_experiment = store
    assert any(k.startswith("selection/") for k in searched[3].data.metrics)  # a round ran there
    result = autoinit.fit(make_model(), make_loader(), n_trials=8, probe_steps=8, tracking_uri=uri,
                          experiment=new_experiment("no-round"), progress=False,
                          selection=autoinit.Selection(seeds=0))
    assert "probe score alone" in result.reason
    run = client.get_run(result.run.run_id)
    assert not [k for k in run.data.metrics if k.startswith("selection/")]
    base = next(c for c in result.candidates if c.name in result.baselines)
    assert run.data.metrics["improvement"] == pytest.approx(base.search_score - result.score)
    client.download_artifacts(run.info.run_id, "autoinit", str(tmp_path))
    for text in (result.summary(), (tmp_path / "autoinit" / "comparison.md").read_text(),
                 (tmp_path / "autoinit" / "summary.txt").read_text()):
        assert "selection mean" not in text and "probe score" in text
    table = json.loads((tmp_path / "autoinit" / "comparison.json").read_text())
    assert table["selection_round"] is False
    assert all(r["selection_mean"] is None for r in table["rows"]) and not result.selection_ran


def test_rungs_log_the_rank_agreement_on_the_parent_and_rung_scores_on_children(store):
    uri, client, new_experiment = store
    result = autoinit.fit(make_model(), make_loader(), n_trials=8, probe_steps=4, rungs=2,
                          tracking_uri=uri, experiment=new_experiment("rungs"),
                          selection=autoinit.Selection(top=1, seeds=1), progress=False)
    run = client.get_run(result.run.run_id)
    (agreement,) = result.rank_agreement
    assert run.data.metrics["rank_agreement/4_12"] == pytest.approx(agreement.spearman)
    assert run.data.metrics["rank_agreement/4_12/trials"] == agreement.trials
    assert run.data.tags["autoinit.rank_agreement"] == agreement.describe()
    assert run.data.params["rungs"] == "2"
    baseline = next(c for c in children(client, run) if c.data.tags.get("autoinit.baseline"))
    history = client.get_metric_history(baseline.info.run_id, "rung_score")
    assert [h.step for h in history] == [4, 12]


class _NoSignal(torch.nn.Module):
    """Only ``unused`` is searched and it never touches the output: the probes cannot separate,
    so a budgeted search lengthens them."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.head = torch.nn.Linear(8, 2)
            self.unused = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)


def test_a_lengthened_round_logs_children_under_their_own_names(store):
    uri, client, new_experiment = store
    result = autoinit.fit(_NoSignal(), make_loader(), train_steps=2000, probe_steps=10,
                          only="unused", tracking_uri=uri, experiment=new_experiment("longer"),
                          progress=False)
    assert result.budget.probe_steps == 20  # the named candidates were probed again, longer
    runs = children(client, client.get_run(result.run.run_id))
    names = [r.info.run_name for r in runs]
    assert len(names) == len(set(names))
    lengths = {r.info.run_name: r.data.tags["autoinit.probe_length"] for r in runs}
    assert lengths["trial-0-pytorch_default"] == "10"
    assert lengths["trial-0-pytorch_default-20-steps"] == "20"


def test_a_lazy_model_is_tracked_once_the_first_batch_has_shaped_it(store):
    uri, client, new_experiment = store
    lazy = torch.nn.Sequential(torch.nn.LazyLinear(8), torch.nn.ReLU(), torch.nn.LazyLinear(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)  # the run is started, not given up
        result = autoinit.fit(lazy, make_loader(), n_trials=6, probe_steps=4, tracking_uri=uri,
                              experiment=new_experiment("lazy"), progress=False)
    assert client.get_run(result.run.run_id).info.status == "FINISHED"
