"""The command line through its real entry points: ``autoinit.cli.main`` in process, and
``python -m autoinit`` / the ``autoinit`` console script as subprocesses (exit codes, one-line
errors without tracebacks, resume after Ctrl-C). MLflow and Optuna always point into tmp_path."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import torch
from optuna.trial import TrialState

import autoinit
from autoinit.cli import _parameters, main
from autoinit.plan import uniform_scheme
from autoinit.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
STUDY = """
[model]
factory = "autoinit.tasks.mlp:deep_relu_mlp"
kwargs = {{ depth = {depth}, width = {width} }}

[data]
factory = "autoinit.tasks.digits:digits_data"
kwargs = {{ batch_size = 32 }}

[train]
lr = 1e-3
loss = "cross_entropy"

[search]
n_trials = {n_trials}
probe_steps = {probe_steps}
storage = "{storage}"

[mlflow]
enabled = {mlflow}
tracking_uri = "sqlite:///{tmp}/mlflow.db"

[compare]
steps = 20
seeds = 2
"""


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine two spinning threads
    make every step far slower; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_study(tmp_path: Path, *, depth=3, width=16, n_trials=7, probe_steps=6, mlflow=False,
                name="tiny.toml", storage=None) -> Path:
    path = tmp_path / name
    path.write_text(STUDY.format(depth=depth, width=width, n_trials=n_trials,
                                 probe_steps=probe_steps, tmp=tmp_path,
                                 storage=storage or f"sqlite:///{tmp_path}/study.db",
                                 mlflow=str(mlflow).lower()))
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def finished(storage: str, name: str) -> int:
    study = optuna.load_study(study_name=name, storage=storage)
    return len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def study_name(out: str) -> str:
    return re.search(r"autoinit search '([^']+)'", out).group(1)


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120", "OMP_NUM_THREADS": "1"}


# ------------------------------------------------------------------------------------ search

def test_search_prints_progress_table_and_writes_scheme_then_extends(tmp_path, capsys):
    study = write_study(tmp_path)
    out_file = tmp_path / "out" / "scheme.json"
    code, out, err = run(capsys, "search", study, "--out", out_file)
    assert code == 0, err
    # plain progress lines (stdout is not a terminal), then the table and the files
    assert "trial   7/7" in out and "selection round" in out
    assert re.search(r"^pytorch_default\s+\d", out, re.M) and "<- chosen" in out
    assert "cost:" in out and "search cost ratio R =" in out and "training ([compare] steps)" in out
    assert f"scheme written to {out_file}" in out
    scheme = autoinit.load_scheme(out_file)
    model = get_task("deep_relu_mlp").build_model(depth=3, width=16)
    autoinit.apply_scheme(model, scheme)
    storage, name = f"sqlite:///{tmp_path}/study.db", study_name(out)
    assert finished(storage, name) == 7
    # the same command with a larger budget resumes the same study
    code, out, err = run(capsys, "search", study, "--out", out_file, "--n-trials", 9)
    assert code == 0, err
    assert "resuming: the study already holds 7 finished trials" in out
    assert study_name(out) == name and finished(storage, name) == 9


def test_train_steps_states_the_cost_against_that_training(tmp_path, capsys):
    study = (tmp_path / "planned.toml")
    study.write_text(write_study(tmp_path).read_text().replace("probe_steps = 6\n", ""))
    code, out, err = run(capsys, "search", study, "--train-steps", 400, "--out",
                         tmp_path / "s.json")
    assert code == 0, err
    assert "planned to fit 0.3 of your 400-step training" in out
    assert re.search(r"search cost: \d+ training steps, R = [\d.e-]+ of your 400-step training \("
                     r"budget 120 steps", out)
    assert "search cost ratio R =" not in out  # stated once, against the user's training


def test_flags_override_the_study_file(tmp_path, capsys):
    study = write_study(tmp_path)
    db = f"sqlite:///{tmp_path}/other.db"
    code, out, err = run(capsys, "search", study, "--n-trials", 6, "--probe-steps", 4,
                         "--storage", db, "--study-name", "mine", "--seed", 3,
                         "--out", tmp_path / "s.json")
    assert code == 0, err
    assert "autoinit search 'mine'" in out and "6 trials of 4 probe steps" in out
    loaded = optuna.load_study(study_name="mine", storage=db)
    assert len(loaded.trials) >= 6
    assert max(t.user_attrs.get("probe_steps", 0) for t in loaded.trials) == 4
    assert autoinit.load_scheme(tmp_path / "s.json").seed == 3


def test_search_logs_to_mlflow_and_show_reads_the_run(tmp_path, capsys):
    study = write_study(tmp_path, mlflow=True, n_trials=6, probe_steps=4)
    code, out, err = run(capsys, "search", study, "--out", tmp_path / "s.json")
    assert code == 0, err
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", out).group(1)
    assert f"mlflow ui --backend-store-uri {uri}" in out
    from mlflow import MlflowClient

    assert MlflowClient(uri).get_run(run_id).info.status == "FINISHED"
    code, shown, err = run(capsys, "show", run_id, "--tracking-uri", uri)
    assert code == 0, err
    assert "hidden.linear" in shown


def test_search_with_factories_by_flag_through_the_console_script(tmp_path):
    """No study file: --model/--data name the user's own module in the current folder."""
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def make_net(width=8):
            return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))

        def make_loaders(n=256):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(n, 4, generator=g)
            ds = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
            return torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, generator=g)
        """))
    exe = shutil.which("autoinit") or pytest.skip("the autoinit console script is not installed")
    proc = subprocess.run(
        [exe, "search", "--model", "mymodels:make_net", "--model-kwargs", '{"width": 12}',
         "--data", "mymodels:make_loaders", "--n-trials", "7", "--probe-steps", "5",
         "--storage", f"sqlite:///{tmp_path}/s.db", "--no-mlflow"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr
    assert "autoinit search 'make_net-" in proc.stdout
    assert "training (the default of [compare] steps; --train-steps N states it" in proc.stdout
    scheme = json.loads((tmp_path / "scheme.json").read_text())
    assert scheme["model"]["parameters"]["0.weight"] == [12, 4]


# ---------------------------------------------------------------------------- show, diagnose

def test_show_prints_the_scheme_as_a_table(tmp_path, capsys):
    model = get_task("deep_relu_mlp").build_model(depth=6, width=8)
    path = tmp_path / "s.json"
    uniform_scheme(model, "orthogonal", scale=1.5).to_json(path)
    code, out, err = run(capsys, "show", path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("scheme for Sequential: 12 parameters")
    assert re.split(r"\s{2,}", lines[2]) == ["group", "layers", "family", "scale", "bias"]
    rows = {r.split()[0]: r for r in lines[4:]}
    assert set(rows) == {"input.linear", "hidden.linear", "head.linear"}
    assert re.search(r"2, 4, 6, 8\s+orthogonal\s+1.5\s+zeros", rows["hidden.linear"])


def test_diagnose_default_init_vs_a_scheme(tmp_path, capsys):
    study = write_study(tmp_path, depth=32, width=128)
    code, out, err = run(capsys, "diagnose", study)
    assert code == 0, err
    assert "Sequential under its default init" in out
    assert len([ln for ln in out.splitlines() if re.match(r"^\d+\s", ln)]) == 32
    assert "vanishing_gradient in" in out.splitlines()[-1]
    model = get_task("deep_relu_mlp").build_model(depth=32, width=128)
    scheme = tmp_path / "kaiming.json"
    uniform_scheme(model, "kaiming_normal").to_json(scheme)
    code, out, err = run(capsys, "diagnose", study, "--scheme", scheme)
    assert code == 0, err
    assert f"under scheme {scheme}" in out and "vanishing_gradient" not in out


def test_diagnose_shapes_a_lazy_model_on_the_first_batch_with_or_without_a_scheme(
        tmp_path, capsys, monkeypatch):
    """A model of lazy modules: diagnose stopped at once ("run one batch through the model
    first"), and a scheme could not be applied to it; both now run, as a search does."""
    (tmp_path / "lazy.py").write_text("import torch.nn as nn\n\n\ndef net():\n    return "
                                      "nn.Sequential(nn.LazyLinear(16), nn.ReLU(), "
                                      "nn.LazyLinear(10))\n")
    monkeypatch.chdir(tmp_path)
    args = ["diagnose", "--model", "lazy.py:net", "--model-kwargs", "{}", "--data",
            "autoinit.tasks.digits:digits_data"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "Sequential under its default init" in out
    assert [ln.split()[0] for ln in out.splitlines() if re.match(r"^\d+\s", ln)] == ["0", "2"]
    shaped = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    uniform_scheme(shaped, "orthogonal").to_json(tmp_path / "s.json")
    code, out, err = run(capsys, *args, "--scheme", "s.json")
    assert code == 0, err
    assert "under scheme s.json" in out and "flags:" in out


# ----------------------------------------------------------------------------------- compare

def test_compare_trains_methods_per_seed_and_logs_to_mlflow(tmp_path, capsys):
    study = write_study(tmp_path, mlflow=True)
    model = get_task("deep_relu_mlp").build_model(depth=3, width=16)
    scheme = tmp_path / "chosen.json"
    uniform_scheme(model, "kaiming_normal", scale=1.2).to_json(scheme)
    code, out, err = run(capsys, "compare", study, "--scheme", scheme, "--steps", 20, "--seeds", 2,
                         "--baselines", "pytorch_default,orthogonal")
    assert code == 0, err
    assert "3 methods x 2 seeds x 20 steps" in out
    assert len(re.findall(r"^seed [12]/2 ", out, re.M)) == 6
    table = out[out.index("full trainings"):]
    for method in ("chosen (chosen.json)", "pytorch_default", "orthogonal"):
        assert re.search(rf"^{re.escape(method)}\s+\d+\.\d{{4}}\s+\[", table, re.M), method
    assert "chosen vs the best baseline" in table
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    parent = re.search(r"MLflow run ([0-9a-f]{32})", out).group(1)
    client = MlflowClient(uri)
    exp = client.get_run(parent).info.experiment_id
    children = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.info.run_name for r in children) == sorted(
        ["chosen (chosen.json)", "pytorch_default", "orthogonal"])
    history = client.get_metric_history(children[0].info.run_id, "val_loss.seed1")
    assert [m.step for m in history] == list(range(1, 21))
    # the UI address names what compare logged, not a search's runs
    assert re.search(r"then the compare run 'compare [^']+' \(a child run per method\): http",
                     out)
    assert "search's runs" not in out


def test_compare_shows_the_seeds_that_finished_when_the_loader_fails_later(tmp_path, capsys):
    (tmp_path / "flaky.py").write_text(textwrap.dedent("""
        from autoinit.tasks.digits import digits_data

        class FailsAfter:  # a training loader that breaks after 40 batches in all
            def __init__(self, loader):
                self.loader, self.read = loader, 0

            def __iter__(self):
                for batch in self.loader:
                    if self.read >= 40:
                        raise OSError("the shard went away")
                    self.read += 1
                    yield batch

        def data(**kwargs):
            train, val = digits_data(**kwargs)
            return FailsAfter(train), val
        """))
    study = write_study(tmp_path, mlflow=True)
    study.write_text(study.read_text().replace('"autoinit.tasks.digits:digits_data"',
                                               f'"{tmp_path}/flaky.py:data"'))
    model = get_task("deep_relu_mlp").build_model(depth=3, width=16)
    uniform_scheme(model, "kaiming_normal").to_json(tmp_path / "chosen.json")
    code, out, err = run(capsys, "compare", study, "--scheme", tmp_path / "chosen.json",
                         "--steps", 20, "--seeds", 3, "--baselines", "orthogonal")
    assert code == 2, (out, err)
    assert len(re.findall(r"^seed [12]/3 ", out, re.M)) == 4 and "seed 3/3" not in out
    assert "full trainings: 20 steps x 2 seeds" in out  # the finished seeds' table
    assert re.search(r"MLflow run [0-9a-f]{32}", out)  # and their record
    assert err.strip().splitlines()[-1].endswith(
        "the comparison stopped before seed 3: train_loader failed on a new pass: OSError: the "
        "shard went away; the 4 runs of seeds 1-2 are kept (this error's .runs; the command line "
        "prints their table)")


# -------------------------------------------------------------------------------- bad input

def _factories(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(textwrap.dedent("""
        def model():
            raise RuntimeError("no weights here")

        def data():
            raise ValueError("the data went missing")

        def ints(**kwargs):  # a "loader" whose batches are ints
            return (1, 2, 3)

        def empty(**kwargs):
            return []

        def empty_val(**kwargs):
            from autoinit.tasks.digits import digits_data
            return digits_data()[0], []
        """))


BAD = [
    (["search", "{tmp}/nope.toml"], "study file '{tmp}/nope.toml' not found"),
    (["search", "{tmp}/bad.toml"], "is not valid TOML"),
    (["search", "{tmp}/unknown.toml"],
     "search.n_trial is not a known key (did you mean 'search.n_trials'?"),
    (["search", "{tmp}/wrongtype.toml"], "search.probe_steps must be a positive integer, got '100'"),
    (["search", "{tmp}/tiny.toml", "--n-trials", "-3"],
     "search.n_trials must be a positive integer, got -3"),
    (["search", "{tmp}/tiny.toml", "--n-trials", "abc"], "'abc' is not a valid integer"),
    (["search", "{tmp}/tiny.toml", "--rungs", "0"], "search.rungs must be a positive integer, got 0"),
    (["search", "{tmp}/tiny.toml", "--train-steps", "0"],
     "train.steps must be a positive integer, got 0"),
    (["search", "{tmp}/tiny.toml", "--population", "0"],
     "search.population must be a positive integer, got 0"),
    (["search", "{tmp}/tiny.toml", "--model", "no_such_pkg_xyz.models:net"],
     "model.factory: cannot import 'no_such_pkg_xyz.models'"),
    (["search", "{tmp}/tiny.toml", "--model", "{tmp}/broken.py:model", "--model-kwargs", "{{}}"],
     "raised RuntimeError: no weights here"),
    (["search", "{tmp}/tiny.toml", "--data", "{tmp}/broken.py:data", "--data-kwargs", "{{}}"],
     "data.factory '{tmp}/broken.py:data' raised ValueError: the data went missing"),
    # the library names the data by its arguments (dataloader, batch); the CLI by its factory
    (["search", "{tmp}/tiny.toml", "--data", "{tmp}/broken.py:ints"],
     "data.factory '{tmp}/broken.py:ints': batch must be an (inputs, target) pair"),
    (["search", "{tmp}/tiny.toml", "--data", "{tmp}/broken.py:empty"],
     "data.factory '{tmp}/broken.py:empty': dataloader yielded no batch"),
    (["diagnose", "{tmp}/tiny.toml", "--data", "{tmp}/broken.py:ints"],
     "data.factory '{tmp}/broken.py:ints': batch must be an (inputs, target) pair"),
    (["search", "{tmp}/tiny.toml", "--model-kwargs", "{{depth: 3}}"],
     "model.kwargs (--model-kwargs) must be a JSON object, got '{{depth: 3}}'"),
    (["search", "{tmp}/tiny.toml", "--storage", "sqlite:///{tmp}/no/such/dir/s.db"],
     "search.storage: storage 'sqlite:///{tmp}/no/such/dir/s.db' cannot be opened"),
    (["search", "--model", "autoinit.tasks.mlp:deep_relu_mlp"],
     "give a study file (STUDY.toml) or both --model"),
    (["show", "{tmp}/missing.json"], "cannot read scheme file"),
    (["diagnose", "{tmp}/tiny.toml", "--scheme", "{tmp}/other.json"],
     "scheme was made for a different model"),
    (["compare", "{tmp}/tiny.toml", "--scheme", "{tmp}/other.json", "--baselines", "magic"],
     "--baselines must name some of"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a[:3]) for a, _ in BAD])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    write_study(tmp_path)
    (tmp_path / "bad.toml").write_text("[search\nn_trials = 3\n")
    (tmp_path / "unknown.toml").write_text((tmp_path / "tiny.toml").read_text().replace(
        "n_trials", "n_trial"))
    (tmp_path / "wrongtype.toml").write_text((tmp_path / "tiny.toml").read_text().replace(
        "probe_steps = 6", 'probe_steps = "100"'))
    _factories(tmp_path)
    uniform_scheme(torch.nn.Sequential(torch.nn.Linear(2, 2)), "orthogonal").to_json(
        tmp_path / "other.json")
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("autoinit: error: ")
    assert message.format(tmp=tmp_path) in err
    assert "Traceback" not in err + out and "secret" not in err


@pytest.mark.parametrize("model, message", [
    ("no_such_pkg_xyz:net", "model.factory: cannot import 'no_such_pkg_xyz'"),
    ("shapes.py:net", "the loss could not be computed on the first batch"),  # fails in the search
])
def test_a_search_that_fails_before_it_begins_leaves_no_storage_file(tmp_path, capsys,
                                                                     monkeypatch, model, message):
    """The default storage, ``autoinit.db`` in the working directory, was created before the
    model was built, and stayed behind, empty, when it could not be."""
    (tmp_path / "shapes.py").write_text("import torch.nn as nn\n\n\ndef net():\n"
                                        "    return nn.Linear(3, 2)  # the digits have 64\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "search", "--model", model, "--model-kwargs", "{}", "--data",
                         "autoinit.tasks.digits:digits_data", "--no-mlflow", "--n-trials", 2,
                         "--probe-steps", 2)
    assert code == 2 and err.startswith("autoinit: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "autoinit.db").exists()


@pytest.mark.parametrize("edit, scheme, message", [
    ({}, "other.json", "scheme was made for a different model"),
    ({'"autoinit.tasks.mlp:deep_relu_mlp"': '"{tmp}/broken.py:model"',
      "{{ depth = 3, width = 16 }}": "{{}}"}, "chosen.json", "raised RuntimeError: no weights here"),
    ({'"autoinit.tasks.digits:digits_data"': '"{tmp}/broken.py:train_only"'}, "chosen.json",
     "data.factory must return (train_loader, val_loader) for autoinit compare"),
    ({'"autoinit.tasks.digits:digits_data"': '"{tmp}/broken.py:empty_val"'}, "chosen.json",
     "data.factory '{tmp}/broken.py:empty_val': val loader yielded no batch"),
])
def test_compare_checks_its_input_before_it_prints_anything(tmp_path, capsys, edit, scheme,
                                                            message):
    """The header line came first, then the error: the model, data and scheme were only built
    and checked once the trainings began."""
    _factories(tmp_path)
    with (tmp_path / "broken.py").open("a") as f:
        f.write("\n\ndef train_only(batch_size):\n    from autoinit.tasks.digits import "
                "digits_data\n    return digits_data(batch_size=batch_size)[0]\n")
    text = write_study(tmp_path).read_text()
    for old, new in edit.items():
        text = text.replace(old.format(), new.format(tmp=tmp_path))
    (tmp_path / "edited.toml").write_text(text)
    uniform_scheme(torch.nn.Sequential(torch.nn.Linear(2, 2)), "orthogonal").to_json(
        tmp_path / "other.json")
    model = get_task("deep_relu_mlp").build_model(depth=3, width=16)
    uniform_scheme(model, "orthogonal").to_json(tmp_path / "chosen.json")
    code, out, err = run(capsys, "compare", tmp_path / "edited.toml", "--scheme",
                         tmp_path / scheme, "--steps", 2, "--seeds", 1, "--baselines", "orthogonal")
    assert (code, out) == (2, "")
    assert err.startswith("autoinit: error: ") and len(err.splitlines()) == 1
    assert message.format(tmp=tmp_path) in err


def test_show_of_a_run_not_found_names_the_tracking_uri_it_looked_in(tmp_path, capsys,
                                                                     monkeypatch):
    """Without --tracking-uri the error did not say where the run was looked for."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    from autoinit.integrations.testing import mlflow_globals_kept

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/m.db"
    with mlflow_globals_kept():
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.setattr(utils, "_tracking_uri", None)  # MLflow's default: in the folder
        code, _, err = run(capsys, "show", "0123456789abcdef0123456789abcdef")
        mlflow.MlflowClient(uri).search_experiments()  # a store that exists, without the run
        given = run(capsys, "show", "0123456789abcdef0123456789abcdef", "--tracking-uri", uri)
    assert code == 2 and err.startswith("autoinit: error: cannot read a scheme")
    assert f"in tracking URI 'sqlite:///{tmp_path}/mlflow.db' (MLflow's default; give the run's " \
           "with --tracking-uri URI" in err and "there is no file" in err
    assert not (tmp_path / "mlflow.db").exists()  # looking did not create MLflow's default store
    assert given[0] == 2 and f"in tracking URI '{uri}': " in given[2] and "not found" in given[2]


def test_a_storage_still_unreachable_after_retries_exits_1_with_the_cause(tmp_path, capsys,
                                                                          monkeypatch):
    """Not the user's input (exit 2) but a fault of the storage: exit 1, one line, the cause."""
    monkeypatch.setenv("AUTOINIT_STORAGE_PATIENCE", "1")
    write_study(tmp_path)
    code, _, err = run(capsys, "search", tmp_path / "tiny.toml", "--storage",
                       "postgresql://u:secret@127.0.0.1:1/db")
    assert code == 1, err
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert err.startswith("autoinit: error: storage 'postgresql://u:***@127.0.0.1:1/db' still "
                          "fails after") and "Connection refused" in err and "secret" not in err


def test_debug_adds_the_traceback(tmp_path, capsys):
    code, _, err = run(capsys, "search", tmp_path / "nope.toml", "--debug")
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("autoinit: error: study file")


def test_internal_error_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("autoinit.cli.fit", broken)  # what the search command calls
    code, _, err = run(capsys, "search", write_study(tmp_path))
    assert code == 1
    assert err.strip() == ("autoinit: error: internal error: RuntimeError: kaboom (rerun with "
                           "--debug for the traceback)")


def test_a_search_ctrl_c_before_its_trials_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """A Ctrl-C while the search sets up (the data built, the threads timed) ends in one line
    that says what the user can do, as a Ctrl-C mid-search does."""
    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("autoinit.cli.build_data", cut)
    code, _, err = run(capsys, "search", write_study(tmp_path))
    assert code == 130
    assert err.strip() == ("autoinit: interrupted; the study keeps its finished trials: rerun "
                           "the same command to resume")


@pytest.mark.parametrize("command", ["search", "status", "show", "diagnose", "compare"])
def test_every_command_has_help_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert f"Usage: autoinit {command}" in out and "Example" in out
    assert f"autoinit {command} " in out[out.index("Example"):]


def test_module_entry_point_bad_input_without_traceback(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "autoinit", "search", str(tmp_path / "x.toml")],
                         capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"autoinit: error: study file '{tmp_path / 'x.toml'}' not found"


# ------------------------------------------------------------------------------------ resume

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_interrupted_search_resumes_to_the_full_trial_count(tmp_path, backend, request):
    """Ctrl-C (SIGINT) mid-search keeps the finished trials; ``status`` shows them from another
    process; the same command finishes the budget."""
    storage = f"sqlite:///{tmp_path}/study.db"
    if backend == "postgresql":
        storage = request.getfixturevalue("postgres_url")
    study = write_study(tmp_path, depth=6, width=32, n_trials=12, probe_steps=20, storage=storage)
    cmd = [sys.executable, "-m", "autoinit", "search", str(study), "--out",
           str(tmp_path / "s.json"), "--study-name", f"resume-{backend}"]
    env = subprocess_env()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("trial   3/12") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=240)  # generous: CI machines are shared
    out = "".join(lines) + rest
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    name = study_name(out)
    first = finished(storage, name)
    assert 3 <= first < 12
    status = subprocess.run([sys.executable, "-m", "autoinit", "status", str(study),
                             "--study-name", name, "--json"],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["finished"] == first
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"resuming: the study already holds {first} finished trials" in again.stdout
    assert finished(storage, name) == 12
    assert "s3cret-pw" not in out + err + again.stdout + again.stderr + status.stdout


def test_a_ctrl_c_sent_to_the_parent_alone_stops_its_workers(tmp_path):
    """A SIGINT to the parent's PID only (a scheduler, ``kill -INT``) reaches the workers too:
    they stop at their next safe point, as after a Ctrl-C of the whole process group."""
    storage = f"sqlite:///{tmp_path}/study.db"
    study = write_study(tmp_path, depth=6, width=32, n_trials=40, probe_steps=40, storage=storage)
    cmd = [sys.executable, "-m", "autoinit", "search", str(study), "--n-jobs", "2",
           "--study-name", "parent-only"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(), cwd=tmp_path)
    def count() -> int:
        with contextlib.suppress(KeyError, sqlalchemy.exc.OperationalError):  # not created yet
            return finished(storage, "parent-only")
        return 0

    deadline = time.monotonic() + 180
    while count() < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert 2 <= finished(storage, "parent-only") < 40


# ------------------------------------------------------------- messages that tell the truth
# Issue 17: each message below misled a new user; one test per message.

def test_unreachable_tracking_uri_stops_before_any_trial_and_says_why(tmp_path, capsys):
    study = write_study(tmp_path, mlflow=True)
    code, out, err = run(capsys, "search", study, "--tracking-uri", "http://127.0.0.1:1")
    assert code == 2
    line = err.strip()
    assert line.startswith("autoinit: error: --tracking-uri: MLflow at 'http://127.0.0.1:1' "
                           "cannot be reached (")
    assert "connection refused" in line and "no trial was run" in line
    assert line.endswith("or pass --no-mlflow to search without tracking")
    assert "goes on" not in line and "\n" not in line
    assert not (tmp_path / "study.db").exists() or finished(f"sqlite:///{tmp_path}/study.db",
                                                            study_name(out)) == 0


def test_tracking_failure_when_required_does_not_promise_to_go_on(tiny_loader):
    from autoinit.integrations import TrackingError
    from autoinit.integrations.mlflow._alarm import _Alarm

    with pytest.raises(TrackingError) as caught:
        _Alarm("s", require=True).report(ConnectionError("x" * 400 + " Connection refused"), "a")
    message = str(caught.value)
    assert "stopping, because tracking is required" in message and "goes on" not in message
    assert "ConnectionError: connection refused" in message  # the cause, not 300 cut characters


def test_a_flag_does_not_hide_an_invalid_value_in_the_study_file(tmp_path, capsys):
    study = write_study(tmp_path, n_trials=-3)
    code, _, err = run(capsys, "search", study, "--n-trials", 5)
    assert code == 2
    assert err.strip() == (f"autoinit: error: search.n_trials must be a positive integer, got -3 "
                           f"(in study file '{study}'; a command-line flag replaces the value, "
                           "but the file must be valid too)")


def test_a_flag_on_another_key_leaves_the_study_files_error_as_it_is(tmp_path, capsys):
    study = write_study(tmp_path, n_trials=-3)
    code, _, err = run(capsys, "search", study, "--probe-steps", 5)
    assert code == 2
    assert err.strip() == "autoinit: error: search.n_trials must be a positive integer, got -3"


def test_an_unwritable_out_fails_before_any_trial(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("")
    out = tmp_path / "notes.txt" / "scheme.json"  # a folder that cannot be made
    study = write_study(tmp_path)
    code, stdout, err = run(capsys, "search", study, "--out", out)
    assert (code, stdout) == (2, "")
    assert err.startswith(f"autoinit: error: --out: cannot write '{out}': ") and err.count("\n") == 1
    assert not (tmp_path / "study.db").exists()  # no study, no trial


def test_status_finds_a_study_searched_with_other_flags_or_says_how(tmp_path, capsys):
    study = write_study(tmp_path, n_trials=7, probe_steps=6)
    code, out, err = run(capsys, "search", study, "--probe-steps", 4, "--no-mlflow",
                         "--out", tmp_path / "s.json")
    assert code == 0, err
    name = study_name(out)
    code, _, err = run(capsys, "status", study)
    assert code == 2
    assert f"but '{name}' from the same study file is" in err
    assert f"(--probe-steps, --rungs, --seed, --train-steps) or --study-name {name}" in err
    code, out, err = run(capsys, "status", study, "--probe-steps", 4)
    assert code == 0, err
    assert f"study '{name}': 7 finished trials" in out


@pytest.mark.parametrize("flags", [("--train-steps", 5000), ("--rungs", 2)])
def test_status_takes_every_search_flag_that_names_the_study(tmp_path, capsys, flags):
    from autoinit.config import load_study

    study = write_study(tmp_path)
    key = {"--train-steps": "train.steps", "--rungs": "search.rungs"}[flags[0]]
    name = load_study(study, {key: flags[1]}).study_name  # what `search study FLAGS` names it
    assert name != load_study(study).study_name
    optuna.create_study(storage=f"sqlite:///{tmp_path}/study.db", study_name=name).add_trial(
        optuna.trial.create_trial(value=1.0))
    code, _, err = run(capsys, "status", study)
    assert code == 2 and f"or --study-name {name}" in err and flags[0] in err
    code, out, err = run(capsys, "status", study, *flags)
    assert code == 0, err
    assert out.startswith(f"study '{name}': 1 finished trials")


def test_show_says_a_scheme_is_the_lsuv_baseline(tmp_path, capsys):
    from autoinit.batches import make_loss
    from autoinit.calibrate import lsuv_scheme
    from autoinit.search import _origin

    model = get_task("deep_relu_mlp").build_model(depth=3, width=16)
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    batch = (x, torch.zeros(32, dtype=torch.long))
    scheme = lsuv_scheme(model, batch, make_loss(None))
    path = tmp_path / "scheme.json"
    dataclasses.replace(scheme, origin=_origin("lsuv")).to_json(path)
    code, out, _ = run(capsys, "show", path)
    assert code == 0
    assert out.splitlines()[1] == ("this scheme is the lsuv baseline: orthogonal, each layer "
                                   "rescaled to unit output variance on the search's first "
                                   "training batch")
    study = write_study(tmp_path)
    code, out, err = run(capsys, "compare", study, "--scheme", path, "--steps", 4, "--seeds", 1,
                         "--baselines", "lsuv", "--no-mlflow")
    assert code == 0, err
    assert "the chosen scheme is the search's LSUV baseline, calibrated once" in out
    assert re.search(r"^chosen lsuv \(scheme.json\)\s+\d", out, re.M)


def test_the_train_steps_help_promises_a_plan_not_a_ceiling(capsys):
    # the plan is budget_fraction of the steps; the measured R reads up to 0.5 (search_cost.md)
    code, out, _ = run(capsys, "search", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "planned to fit a budget of 0.3 of its steps" in text and "at most" not in text


def test_docs_count_the_commands_there_are(capsys):
    from autoinit.cli import cli

    text = (REPO / "docs" / "cli.md").read_text()
    words = {4: "Four", 5: "Five", 6: "Six"}
    assert text.splitlines()[2].startswith(f"{words[len(cli.commands)]} commands")
    for command in cli.commands:
        assert f"`{command}`" in text.splitlines()[2]


def test_the_study_file_in_the_docs_is_valid(tmp_path):
    from autoinit.config import load_study

    block = re.search(r"```toml\n(.*?)```", (REPO / "docs" / "cli.md").read_text(), re.S).group(1)
    (tmp_path / "study.toml").write_text(block)
    config = load_study(tmp_path / "study.toml")
    assert (config.search.study_name, config.train.steps, config.proxy) == (
        "my-study", 5000, {"width": 32, "depth": 8})


def test_status_of_a_study_file_whose_storage_file_is_missing_creates_nothing(tmp_path, capsys):
    study = write_study(tmp_path, storage=f"sqlite:///{tmp_path}/typo.db")
    code, out, err = run(capsys, "status", study)
    assert (code, out) == (2, "")
    assert err.strip() == (f"autoinit: error: storage 'sqlite:///{tmp_path}/typo.db' holds no "
                           f"study: there is no file '{tmp_path}/typo.db'")
    assert not (tmp_path / "typo.db").exists()


def test_the_search_line_counts_a_lazy_models_parameters_without_touching_the_unshaped():
    lazy = torch.nn.Sequential(torch.nn.LazyLinear(8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    assert _parameters(lazy) == "18 parameters and 2 lazy ones, shaped on the first batch"
    assert _parameters(torch.nn.Linear(1000, 2)) == "2,002 parameters"


def test_diagnose_refuses_a_data_factory_of_single_examples_in_one_line(tmp_path, capsys,
                                                                        monkeypatch):
    """A DataLoader(batch_size=None) of (8,) inputs and (2,) targets: measured one example as a
    batch, without a word."""
    (tmp_path / "rows.py").write_text(
        "import torch\nimport torch.nn as nn\nfrom torch.utils.data import DataLoader, "
        "TensorDataset\n\n\ndef net():\n    return nn.Linear(8, 2)\n\n\ndef data():\n    rows = "
        "TensorDataset(torch.randn(16, 8), torch.randn(16, 2))\n    return DataLoader(rows, "
        "batch_size=None), None\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "diagnose", "--model", "rows.py:net", "--model-kwargs", "{}",
                         "--data", "rows.py:data")
    assert code != 0 and out == ""
    assert "the training loader is a DataLoader with batch_size=None over a TensorDataset" in err
