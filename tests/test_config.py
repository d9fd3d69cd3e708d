"""Study files: loading, defaults, overrides, every error naming its key path, user factories."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from torch import nn

from autoinit.config import (
    StudyFileError,
    build_data,
    build_model,
    load_study,
    resolve_callable,
    study_from_dict,
)
from autoinit.search import run_search
from autoinit.settings import DEFAULTS

STUDIES = Path(__file__).resolve().parents[1] / "studies"
MIN = {"model": {"factory": "autoinit.tasks.mlp:deep_relu_mlp"},
       "data": {"factory": "autoinit.tasks.digits:digits_data"}}


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def with_(section: str, **values) -> dict:
    return {**MIN, section: {**MIN.get(section, {}), **values}}


def test_defaults_keep_everything_local():
    cfg = study_from_dict(MIN)
    assert cfg.search.storage == DEFAULTS.storage == "sqlite:///autoinit.db"
    assert (cfg.search.n_trials, cfg.search.probe_steps, cfg.search.n_jobs) == (30, 100, 1)
    assert cfg.mlflow.enabled and cfg.mlflow.tracking_uri is None
    assert (cfg.train.optimizer, cfg.train.lr, cfg.train.loss) == ("adam", 1e-3, None)
    assert cfg.model.kwargs == {} and cfg.search.timeout is None


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_study_file_loads_and_its_options_fit_run_search(path):
    cfg = load_study(path)
    accepted = inspect.signature(run_search).parameters
    assert set(cfg.fit_options()) <= set(accepted)
    assert cfg.study_name.startswith(path.stem + "-")
    resolve_callable(cfg.model.factory, "model.factory")
    resolve_callable(cfg.data.factory, "data.factory")


def test_overrides_replace_the_file_and_are_validated(tmp_path):
    path = write(tmp_path, """
        [model]
        factory = "autoinit.tasks.mlp:deep_relu_mlp"
        [data]
        factory = "autoinit.tasks.digits:digits_data"
        [search]
        n_trials = 12
        """)
    assert load_study(path).search.n_trials == 12
    assert load_study(path, {"search.n_trials": 5, "search.seed": 3}).search.seed == 3
    with pytest.raises(StudyFileError) as err:
        load_study(path, {"search.n_trials": -3})
    assert str(err.value) == "search.n_trials must be a positive integer, got -3"


def test_rungs_and_cooldown_reach_fit():
    options = study_from_dict(with_("search", rungs=3, cooldown=0.15)).fit_options()
    assert (options["rungs"], options["cooldown"]) == (3, 0.15)
    assert study_from_dict(MIN).fit_options()["rungs"] == 1


def test_train_steps_plans_the_probes_unless_the_file_sets_them():
    planned = study_from_dict(with_("train", steps=5000))
    options = planned.fit_options()
    assert options["train_steps"] == 5000 and "probe_steps" not in options
    assert planned.study_name != study_from_dict(MIN).study_name
    kept = study_from_dict({**with_("train", steps=5000), "search": {"probe_steps": 40}})
    assert kept.fit_options()["probe_steps"] == 40
    assert "train_steps" not in study_from_dict(MIN).fit_options()


def test_study_name_resumes_the_same_settings_and_separates_others():
    base = study_from_dict(MIN)
    assert base.study_name == study_from_dict(MIN).study_name
    # budget and where the study lives do not change what a trial means
    same = study_from_dict(with_("search", n_trials=99, storage="sqlite:///x.db", n_jobs=2))
    assert same.study_name == base.study_name
    for section, values in (("search", {"probe_steps": 50}), ("search", {"rungs": 3}),
                            ("search", {"cooldown": 0.1}), ("train", {"lr": 0.01}),
                            ("model", {"kwargs": {"depth": 8}})):
        assert study_from_dict(with_(section, **values)).study_name != base.study_name
    assert study_from_dict(with_("search", study_name="mine")).study_name == "mine"


@pytest.mark.parametrize("data, message", [
    (with_("search", n_trials=-3), "search.n_trials must be a positive integer, got -3"),
    (with_("search", n_trials="many"), "search.n_trials must be a positive integer, got 'many'"),
    (with_("search", n_trials=True), "search.n_trials must be a positive integer, got True"),
    (with_("search", seed=-1), "search.seed must be a non-negative integer, got -1"),
    (with_("search", timeout=0), "search.timeout must be a positive number, got 0"),
    (with_("search", rungs=0), "search.rungs must be a positive integer, got 0"),
    (with_("search", cooldown=0.8),
     "search.cooldown must be a fraction in [0, 0.5] of the probe's steps, got 0.8"),
    (with_("search", search_lr="yes"), "search.search_lr must be true or false, got 'yes'"),
    (with_("search", families="orthogonal"),
     "search.families must be a non-empty list of strings, got 'orthogonal'"),
    (with_("search", families=["orthogonal", "magic"]), "search.families: 'magic' is not a"),
    (with_("search", groups="blocks"), "search.groups must be one of ['role', 'layer', 'global']"),
    (with_("search", groups={"a": "("}), "search.groups.a must be a regular expression, got '('"),
    (with_("search", objective="best"), "search.objective must be one of ['final', 'mean']"),
    (with_("search", storage=""), "search.storage must be a non-empty string, got ''"),
    (with_("search", device="tpu"), "search.device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    (with_("train", optimizer="lbfgs"), "train.optimizer must be one of ['adam', 'adamw',"),
    (with_("train", lr="fast"), "train.lr must be a positive finite number, got 'fast'"),
    (with_("train", steps=-3), "train.steps must be a positive integer, got -3"),
    (with_("train", steps=2.5), "train.steps must be a positive integer, got 2.5"),
    (with_("train", loss="hinge"), "train.loss must be 'cross_entropy', 'mse', 'binary_cross_entropy' or"),
    (with_("mlflow", enabled=1), "mlflow.enabled must be true or false, got 1"),
    (with_("compare", steps=0), "compare.steps must be a positive integer, got 0"),
    (with_("model", kwargs=[1, 2]), "model.kwargs must be a table of keyword arguments, got [1, 2]"),
    (with_("model", factory="nocolon"), "model.factory must be 'package.module:function'"),
    ({**MIN, "search": 3}, "search must be a table, got 3"),
    ({"data": MIN["data"]}, "model.factory is missing"),
    (with_("search", n_trial=5), "search.n_trial is not a known key (did you mean 'search.n_trials'?"),
    ({**MIN, "serach": {}}, "serach is not a known key (did you mean 'search'?"),
    (with_("mlflow", uri="x"), "mlflow.uri is not a known key"),
])
def test_bad_values_name_the_key_path_and_the_value(data, message):
    with pytest.raises(StudyFileError) as err:
        study_from_dict(data)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_file_errors_missing_and_bad_toml(tmp_path):
    with pytest.raises(StudyFileError, match=r"study file '.*nope.toml' not found"):
        load_study(tmp_path / "nope.toml")
    bad = write(tmp_path, "[search]\nn_trials = = 3\n")
    with pytest.raises(StudyFileError, match=r"is not valid TOML: .*line 2"):
        load_study(bad)


def test_factories_from_a_file_next_to_the_study(tmp_path):
    (tmp_path / "mymodels.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        def net(width=4):
            return nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))

        def loaders():
            x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
            data = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
            return torch.utils.data.DataLoader(data, batch_size=8)

        def boom():
            raise ValueError("boom")

        def not_a_model():
            return 42
        """))
    path = write(tmp_path, """
        [model]
        factory = "mymodels.py:net"
        kwargs = { width = 6 }
        [data]
        factory = "mymodels.py:loaders"
        """)
    cfg = load_study(path)
    model = build_model(cfg)
    assert isinstance(model, nn.Sequential) and model[0].out_features == 6
    train, val = build_data(cfg)
    assert val is None and len(list(train)) == 4

    def error(overrides) -> str:
        with pytest.raises(StudyFileError) as err:
            c = load_study(path, overrides)
            build_model(c)
            build_data(c)
        return str(err.value)

    assert error({"model.factory": "mymodels.py:boom", "model.kwargs": {}}) == \
        "model.factory 'mymodels.py:boom' raised ValueError: boom"
    assert error({"model.factory": "mymodels.py:not_a_model", "model.kwargs": {}}) == \
        "model.factory 'mymodels.py:not_a_model' must return a torch.nn.Module, got int"
    assert error({"model.kwargs": {"depth": 3}}).startswith(
        "model.kwargs do not fit 'mymodels.py:net': got an unexpected keyword argument 'depth'")
    assert error({"data.factory": "mymodels.py:missing"}) == \
        "data.factory: 'mymodels.py' has no attribute 'missing'"
    assert error({"data.factory": "other.py:loaders"}).startswith(
        "data.factory: cannot import 'other.py': no file")
    assert error({"model.factory": "no_such_package_xyz.models:net"}) == \
        "model.factory: cannot import 'no_such_package_xyz.models': ModuleNotFoundError: " \
        "No module named 'no_such_package_xyz'"


LOOP_FILE = """
import torch
import torch.nn.functional as F


def make_state(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return {"opt": opt, "sched": torch.optim.lr_scheduler.StepLR(opt, 5)}


def train_step(model, batch, state):
    state["opt"].zero_grad()
    loss = F.cross_entropy(model(batch[0]), batch[1])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    state["opt"].step()
    state["sched"].step()
    return {"loss": loss.item()}


def score(model, val_batches):
    return sum(F.cross_entropy(model(x), y).item() for x, y in val_batches)
"""


def test_train_section_names_a_custom_loop_that_fit_runs(tmp_path):
    (tmp_path / "my_loop.py").write_text(LOOP_FILE)
    path = write(tmp_path, """
        [model]
        factory = "autoinit.tasks.mlp:deep_relu_mlp"
        kwargs = { depth = 3, width = 8 }
        [data]
        factory = "autoinit.tasks.digits:digits_data"
        [train]
        train_step = "my_loop.py:train_step"
        score = "my_loop.py:score"
        make_state = "my_loop.py:make_state"
        """)
    cfg = load_study(path)
    options = cfg.fit_options()
    assert [options[k].__name__ for k in ("train_step", "score", "make_state")] == [
        "train_step", "score", "make_state"]
    train, val = build_data(cfg)
    result = run_search(build_model(cfg), train, val_dataloader=val,
                        **{**options, "storage": None, "n_trials": 7, "probe_steps": 4})
    assert result.baselines["lsuv"] == float("inf")  # no loss in the file: LSUV cannot run
    assert all(t.user_attrs["train_loss"] for t in result.study.trials if t.values)
    # the loop is part of what a trial means: the same file without it is another study
    (tmp_path / "plain").mkdir()
    plain = write(tmp_path / "plain", path.read_text().split("[train]")[0])
    assert load_study(plain).study_name != cfg.study_name


def test_custom_loop_references_are_validated():
    with pytest.raises(StudyFileError, match="train.score must be 'package.module:function' or "
                                             "'path/file.py:function', got 'my_score'"):
        study_from_dict(with_("train", score="my_score"))
    with pytest.raises(StudyFileError, match="train.train_step: 'autoinit.tasks.gan' has no "
                                             "attribute 'nope'"):
        study_from_dict(with_("train", train_step="autoinit.tasks.gan:nope")).fit_options()
