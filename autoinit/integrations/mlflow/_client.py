"""Talking to an MLflow server within its limits: params, tags and metrics cut and sent in
batches the server accepts, quick failure when it is away, secrets kept out, and the one
experiment lookup (shared with ``autoinit compare``'s logging)."""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from autoinit.redact import redact
from autoinit.settings import DEFAULTS

SCHEME_ARTIFACT = "autoinit/scheme.json"
PARAM_VALUE_LIMIT = 500  # MLflow 3 allows 6000 characters; older servers 500
PARAMS_PER_REQUEST = 100  # the server's cap on params (and tags) in one log_batch
METRICS_PER_REQUEST = 1000
MAX_CHILD_PARAMS = 1000  # beyond this the child run's params stop; the scheme goes in as an artifact
TAG_LIMIT = 5000
PARENT_TAG = "mlflow.parentRunId"
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
_QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


# ---------------------------------------------------------------- small helpers


def _short(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clean_key(key: str) -> str:
    """A param or metric key MLflow accepts: alphanumerics, ``_ - . /`` and spaces."""
    key = re.sub(r"[^\w.\- /]", "_", key)
    key = re.sub(r"/{2,}", "/", key).strip("/")
    return key if key and posixpath.normpath(key) == key and not key.startswith("..") else f"_{key}"


def _ms(when: Any) -> int:
    return int(when.timestamp() * 1000) if when is not None else int(time.time() * 1000)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@contextlib.contextmanager
def _quick_http(quiet: bool = False) -> Iterator[None]:
    """MLflow's HTTP retries cut to seconds while autoinit logs, unless the user set them.

    ``quiet``: no "View run at" line (and no extra request for it) when a run is closed, and no
    progress bar on downloads.
    """
    defaults = {**_HTTP_DEFAULTS, **(_QUIET if quiet else {})}
    added = [k for k in defaults if k not in os.environ]
    for k in added:
        os.environ[k] = defaults[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _send(client: MlflowClient, run_id: str, *, metrics: Iterable[Metric] = (),
          params: Iterable[Param] = (), tags: Iterable[RunTag] = ()) -> None:
    """``log_batch`` calls within the server's limits per request."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        p, params = params[:PARAMS_PER_REQUEST], params[PARAMS_PER_REQUEST:]
        t, tags = tags[:PARAMS_PER_REQUEST], tags[PARAMS_PER_REQUEST:]
        room = METRICS_PER_REQUEST - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        client.log_batch(run_id, metrics=m, params=p, tags=t)


def param_entities(values: Mapping[str, Any], limit: int = PARAM_VALUE_LIMIT,
                   most: int = MAX_CHILD_PARAMS) -> tuple[list[Param], bool]:
    """MLflow params from ``values`` and whether anything was cut (a key, a value, the count)."""
    out: dict[str, Param] = {}
    cut = len(values) > most
    for key, value in list(values.items())[:most]:
        clean = _clean_key(str(key))[:250]
        text = "None" if value is None else str(value)
        if clean != key or clean in out or len(text) > limit:
            cut = True
        if clean not in out:
            out[clean] = Param(clean, _short(text, limit))
    return list(out.values()), cut


def _tags(values: Mapping[str, Any]) -> list[RunTag]:
    return [RunTag(k, _short(redact(v), TAG_LIMIT)) for k, v in values.items() if v is not None]


def flatten_rules(rules: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A scheme's group rules as flat params: ``<group>.family``, ``<group>.scale``, ...

    Example:
        >>> flatten_rules({"hidden.linear": {"family": "orthogonal", "scale": 1.5, "bias": "zeros",
        ...                                  "options": {"mode": "fan_in"}}})
        {'hidden.linear.family': 'orthogonal', 'hidden.linear.scale': 1.5, 'hidden.linear.bias': 'zeros', \
'hidden.linear.options.mode': 'fan_in'}
    """
    out: dict[str, Any] = {}
    for group, rule in rules.items():
        for key, value in rule.items():
            if key == "options":
                out.update({f"{group}.options.{k}": v for k, v in dict(value).items()})
            elif key != "members":
                out[f"{group}.{key}"] = value
    return out




def _artifacts_beside(uri: str, experiment: str) -> str | None:
    """For a local SQLite store, artifacts in ``mlruns/<experiment>`` beside the database
    file (MLflow's default, ``./mlruns``, depends on the working folder); else the default."""
    match = re.fullmatch(r"sqlite:///(.+)", uri)
    if not match or match.group(1).startswith(":memory:"):
        return None
    folder = Path(match.group(1).split("?")[0]).resolve().parent / "mlruns"
    return (folder / re.sub(r"[^\w.-]+", "_", experiment)).as_uri()


def experiment_id(client: MlflowClient, uri: str, experiment: str | None, active: Any = None) -> str:
    """The id of ``experiment`` (created when missing, artifacts beside a local SQLite store);
    for ``None``: MLflow's environment variables, then ``active``'s experiment, then ``autoinit``."""
    if experiment is None:
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME")
        if experiment is None and active is not None:
            return active.info.experiment_id
        experiment = experiment or DEFAULTS.experiment
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    try:  # the kind makes MLflow's UI open it in its model-training views
        return client.create_experiment(
            experiment, artifact_location=_artifacts_beside(uri, experiment),
            tags={"mlflow.experimentKind": "custom_model_development"})
    except Exception:  # another process created it meanwhile
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id
