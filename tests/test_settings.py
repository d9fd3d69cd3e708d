"""``autoinit.settings``: each default stated once, each numeric option checked by one rule that
``fit``, the study file, the probe and ``compare`` share."""

from __future__ import annotations

import inspect

import pytest
from conftest import tiny_mlp

from autoinit.config import study_from_dict
from autoinit.config_sections import CompareConfig, SearchConfig, TrainConfig
from autoinit.errors import ConfigError, StudyFileError
from autoinit.probe import ProbeConfig
from autoinit.search import run_search
from autoinit.settings import DEFAULTS, broken_rule, check_option

MIN = {"model": {"factory": "autoinit.tasks.mlp:deep_relu_mlp"},
       "data": {"factory": "autoinit.tasks.digits:digits_data"}}


@pytest.mark.parametrize(("name", "good", "bad", "rule"), [
    ("n_trials", 1, 0, "a positive integer"),
    ("n_trials", 5, True, "a positive integer"),
    ("probe_steps", 100, 2.0, "a positive integer"),
    ("seed", 0, -1, "a non-negative integer"),
    ("timeout", 0.5, float("inf"), "a positive number"),
    ("lr", 1e-3, float("nan"), "a positive finite number"),
    ("budget_steps", 10, "10", "a positive integer"),
])
def test_each_option_has_one_rule(name, good, bad, rule):
    assert broken_rule(name, good) is None
    assert broken_rule(name, bad) == rule
    assert check_option(name, good) is good
    with pytest.raises(ConfigError) as err:
        check_option(name, bad)
    assert str(err.value) == f"{name} must be {rule}, got {bad!r}"


def test_a_long_value_is_cut_and_the_caller_names_the_key_and_the_error():
    with pytest.raises(StudyFileError, match=r"^search\.n_trials must be a positive integer, "
                                             r"got 'xxxx.*\.\.\.$"):
        check_option("n_trials", "x" * 200, "search.n_trials", StudyFileError)


@pytest.mark.parametrize(("name", "bad"), [("n_trials", -3), ("probe_steps", 0), ("seed", -1),
                                           ("timeout", 0), ("n_jobs", 0)])
def test_fit_and_the_study_file_say_the_same_rule(tiny_loader, name, bad):
    rule = broken_rule(name, bad)
    with pytest.raises(ConfigError) as fit_err:
        run_search(tiny_mlp(), tiny_loader, **{name: bad})
    with pytest.raises(StudyFileError) as file_err:
        study_from_dict({**MIN, "search": {name: bad}})
    assert str(fit_err.value) == f"{name} must be {rule}, got {bad!r}"
    assert str(file_err.value) == f"search.{name} must be {rule}, got {bad!r}"


def test_every_default_comes_from_settings():
    search = inspect.signature(run_search).parameters
    for name in ("n_trials", "probe_steps", "lr", "optimizer", "objective", "groups", "n_jobs",
                 "seed", "val_batches"):
        assert search[name].default == getattr(DEFAULTS, name), name
    assert (SearchConfig().n_trials, SearchConfig().probe_steps, SearchConfig().storage) == (
        DEFAULTS.n_trials, DEFAULTS.probe_steps, DEFAULTS.storage)
    assert (TrainConfig().lr, TrainConfig().optimizer) == (DEFAULTS.lr, DEFAULTS.optimizer)
    assert (CompareConfig().steps, CompareConfig().seeds) == (DEFAULTS.compare_steps,
                                                              DEFAULTS.compare_seeds)
    assert (ProbeConfig().steps, ProbeConfig().eval_every) == (DEFAULTS.probe_steps,
                                                               DEFAULTS.eval_every)
