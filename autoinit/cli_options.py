"""The options several ``autoinit`` commands share, and the study they describe: a study file
with the command-line flags applied (:func:`study_config`), or the flags alone.

Example:
    >>> study_config(None, {"search.n_trials": 5}, "autoinit.tasks.mlp:deep_relu_mlp",
    ...              "autoinit.tasks.digits:digits_data").search.n_trials
    5
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from autoinit.config import StudyConfig, load_study, study_from_dict
from autoinit.errors import StudyFileError
from autoinit.settings import DEFAULTS

__all__ = ["CONTEXT", "debug_option", "factory_options", "study_config", "tracking_options",
           "tracking_settings"]

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def debug_option(f: F) -> F:
    """``--debug``: the traceback of an error too (read by :func:`autoinit.cli.main`)."""
    return click.option("--debug", is_flag=True, expose_value=False,
                        help="Print the full traceback of an error.")(f)


def factory_options(f: F) -> F:
    """``--model``, ``--model-kwargs``, ``--data``, ``--data-kwargs``: the study's factories."""
    for option in reversed([
        click.option("--model", "model_ref", metavar="MODULE:FACTORY",
                     help="Model factory, e.g. mypkg.models:make_net or models.py:make_net "
                          "(overrides [model] factory)."),
        click.option("--model-kwargs", metavar="JSON", help="Model factory keyword arguments "
                     "as a JSON object (replaces [model] kwargs)."),
        click.option("--data", "data_ref", metavar="MODULE:FACTORY",
                     help="Data factory returning a training loader or (train_loader, "
                          "val_loader) (overrides [data] factory)."),
        click.option("--data-kwargs", metavar="JSON", help="Data factory keyword arguments as "
                     "a JSON object (replaces [data] kwargs)."),
    ]):
        f = option(f)
    return f


def tracking_options(f: F) -> F:
    """``--tracking-uri``, ``--experiment``, ``--no-mlflow``: where MLflow logs."""
    for option in reversed([
        click.option("--tracking-uri", metavar="URI",
                     help="MLflow tracking URI (default: [mlflow] tracking_uri, else MLflow's "
                          "local default, sqlite:///mlflow.db)."),
        click.option("--experiment", metavar="NAME", help="MLflow experiment (default: "
                     f"[mlflow] experiment, else {DEFAULTS.experiment!r})."),
        click.option("--no-mlflow", is_flag=True, help="Do not log to MLflow."),
    ]):
        f = option(f)
    return f


def _json_object(text: str | None, flag: str, key: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StudyFileError(f"{key} ({flag}) must be a JSON object, got {text!r}: {exc}") from None
    if not isinstance(value, dict):
        raise StudyFileError(f"{key} ({flag}) must be a JSON object, got {text!r}")
    return value


def study_config(study: str | None, overrides: Mapping[str, Any], model_ref: str | None = None,
            data_ref: str | None = None, model_kwargs: str | None = None,
            data_kwargs: str | None = None) -> StudyConfig:
    """The study file (or only the flags) with the flags given on the command line applied."""
    flags = {
        "model.factory": _from_cwd(model_ref), "data.factory": _from_cwd(data_ref),
        "model.kwargs": _json_object(model_kwargs, "--model-kwargs", "model.kwargs"),
        "data.kwargs": _json_object(data_kwargs, "--data-kwargs", "data.kwargs"),
        **overrides,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    if study is not None:
        return load_study(study, flags)
    if model_ref is None or data_ref is None:
        raise StudyFileError("give a study file (STUDY.toml) or both --model MODULE:FACTORY and "
                             "--data MODULE:FACTORY")
    return study_from_dict({}, flags)


def _from_cwd(ref: str | None) -> str | None:
    """A ``file.py:function`` flag is relative to the current folder (in a study file, to the
    file's folder)."""
    if ref is None or ":" not in ref:
        return ref
    module, _, attr = ref.rpartition(":")
    if not module.endswith(".py") or Path(module).is_absolute():
        return ref
    return f"{Path.cwd() / module}:{attr}"


def tracking_settings(config: StudyConfig, tracking_uri: str | None, experiment: str | None,
                      no_mlflow: bool) -> dict[str, Any]:
    """Where a command logs: the flags, else the study file's ``[mlflow]``."""
    return {"enabled": config.mlflow.enabled and not no_mlflow,
            "tracking_uri": tracking_uri or config.mlflow.tracking_uri,
            "experiment": experiment or config.mlflow.experiment}
