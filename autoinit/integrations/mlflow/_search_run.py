"""The parent run of one search: made before it, filled from its result after."""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import math
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, RunStatus
from torch import nn

from autoinit.device import default_device
from autoinit.errors import TrackingError
from autoinit.integrations.mlflow._alarm import _Alarm
from autoinit.integrations.mlflow._client import (
    PARENT_TAG,
    SCHEME_ARTIFACT,
    _quick_http,
    _send,
    _tags,
    experiment_id,
    param_entities,
)
from autoinit.integrations.mlflow._trials import TrialLogger
from autoinit.integrations.orphans import WORKER_TAG, close_orphans, worker_tag
from autoinit.redact import redact
from autoinit.result import FitResult
from autoinit.scheme import fingerprint
from autoinit.settings import DEFAULTS
from autoinit.version import __version__

# ---------------------------------------------------------------- the parent run


@dataclass
class SearchTracker:
    """The parent run of one search: made before it, filled from its :class:`FitResult` after.

    Use :meth:`start`, pass :attr:`callback` to the search, then :meth:`finish` (or :meth:`fail`).
    """

    client: MlflowClient
    tracking_uri: str
    experiment_id: str
    run_id: str
    study_name: str
    callback: TrialLogger
    alarm: _Alarm

    @classmethod
    def start(cls, model: nn.Module, options: Mapping[str, Any], *, tracking_uri: str | None = None,
              experiment: str | None = None, require: bool = False,
              parent_run_id: str | None = None) -> SearchTracker | None:
        """Create the parent run for a search of ``model`` with ``options`` (``run_search``'s,
        defaults filled in); ``None`` (after one warning) when tracking is not possible.
        ``parent_run_id``: a run (a trainer's) the search's run is nested in, in its experiment;
        default: the active run, if any."""
        study_name = options.get("study_name") or default_study_name(model)
        alarm = _Alarm(study_name, require)
        try:
            with _quick_http():
                return cls._start(model, options, study_name, alarm, tracking_uri, experiment,
                                  parent_run_id)
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - tracking must not break the search
            alarm.report(exc, "creating the parent run")
            return None

    @classmethod
    def _start(cls, model: nn.Module, options: Mapping[str, Any], study_name: str, alarm: _Alarm,
               tracking_uri: str | None, experiment: str | None, parent_run_id: str | None
               ) -> SearchTracker:
        import mlflow

        uri = tracking_uri or mlflow.get_tracking_uri()
        client = MlflowClient(uri)
        if parent_run_id is not None:
            active = client.get_run(parent_run_id)
        else:
            active = mlflow.active_run() if uri == mlflow.get_tracking_uri() else None
        exp_id = experiment_id(client, uri, experiment, active)
        tags = {**_model_tags(model), **_version_tags(), "autoinit.study": study_name,
                "autoinit.device": str(options.get("device") or default_device()),
                "autoinit.storage": _storage_text(options.get("storage")),
                "mlflow.source.name": "autoinit.fit", "mlflow.source.type": "LOCAL",
                "mlflow.user": _user(), WORKER_TAG: worker_tag()}
        if active is not None:
            tags[PARENT_TAG] = active.info.run_id
        run = client.create_run(exp_id, tags={t.key: t.value for t in _tags(tags)},
                                run_name=study_name)
        run_id = run.info.run_id
        params, _ = param_entities(_summary_params(options, study_name))
        try:
            _send(client, run_id, params=params)
        except Exception:
            with contextlib.suppress(Exception):  # no run left RUNNING for a search not tracked
                client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        logger = TrialLogger(uri, exp_id, run_id, alarm, lr=float(options.get("lr", DEFAULTS.lr)),
                             seed=int(options.get("seed", DEFAULTS.seed)))
        return cls(client, uri, exp_id, run_id, study_name, logger, alarm)

    def finish(self, result: FitResult, model: nn.Module) -> None:
        """Log the search's outcome on the parent run and close it.

        ``model`` is the searched model, initialized with the chosen scheme (used for plots).
        """
        self.callback.drain()
        self.alarm.collect()
        try:
            with _quick_http(quiet=True):
                close_orphans(self.client, self.experiment_id, self.study_name, self.run_id)
        except Exception as exc:  # noqa: BLE001 - tracking must not break the search
            self.alarm.report(exc, "closing the runs left RUNNING")
        try:
            with _quick_http(quiet=True), tempfile.TemporaryDirectory(prefix="autoinit-mlflow-") as tmp:
                self._log_result(result, model, Path(tmp))
        except TrackingError:
            raise
        except Exception as exc:  # noqa: BLE001 - tracking must not break the search
            self.alarm.report(exc, "logging the search result")

    def fail(self, exc: BaseException) -> None:
        """Mark the parent run FAILED (KILLED on Ctrl-C) with the error as a tag."""
        self.callback.drain(timeout=30)
        self.alarm.collect()
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        try:
            with _quick_http(quiet=True):
                _send(self.client, self.run_id,
                      tags=_tags({"autoinit.error": f"{type(exc).__name__}: {exc}"}))
                self.client.set_terminated(self.run_id, RunStatus.to_string(status))
        except Exception as err:  # noqa: BLE001 - the search's own error is what matters
            with contextlib.suppress(TrackingError):
                self.alarm.report(err, "closing the failed parent run")

    def _log_result(self, result: FitResult, model: nn.Module, tmp: Path) -> None:
        from autoinit.integrations import _report

        table = _report.comparison(result)
        metrics = _report.metrics(result, table) + _agreement_metrics(result)
        note = _report.markdown(result, table)
        tags = {"autoinit.chosen": result.chosen, "autoinit.reason": result.reason,
                "autoinit.interrupted": str(result.interrupted).lower(),
                "autoinit.device": result.context.config.device if result.context else None,
                "model.fingerprint": result.scheme.fingerprint, "mlflow.note.content": note,
                "autoinit.rank_agreement": "; ".join(a.describe() for a in result.rank_agreement)
                or None, "autoinit.probe_note": result.probe_note,
                "autoinit.population": result.population and result.population.describe()}
        _send(self.client, self.run_id, metrics=metrics, tags=_tags(tags))
        files = tmp / "files"
        result.scheme.to_json(_mkparent(files / SCHEME_ARTIFACT))
        (files / "autoinit/comparison.md").write_text(note)
        (files / "autoinit/comparison.json").write_text(json.dumps(table, indent=2) + "\n")
        (files / "autoinit/summary.txt").write_text(result.summary() + "\n")
        self.client.log_artifacts(self.run_id, str(files))
        skipped = _report.plots(result, model, tmp / "plots")
        if any((tmp / "plots").glob("*.png")):
            self.client.log_artifacts(self.run_id, str(tmp / "plots"), "plots")
        if skipped:
            _send(self.client, self.run_id, tags=_tags({"autoinit.plots_skipped": "; ".join(skipped)}))
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FINISHED))


def _agreement_metrics(result: FitResult) -> list[Metric]:
    """``rank_agreement/<lower>_<upper>``: the Spearman rho between consecutive rungs, and the
    trials it was computed over (``.../trials``)."""
    now, out = int(time.time() * 1000), []
    for a in result.rank_agreement:
        key = f"rank_agreement/{a.lower}_{a.upper}"
        out.append(Metric(f"{key}/trials", float(a.trials), now, 0))
        if math.isfinite(a.spearman):
            out.append(Metric(key, a.spearman, now, 0))
    return out


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def default_study_name(model: nn.Module) -> str:
    """``autoinit-<model class>-<date>-<time>-<4 hex>``: a readable, unique study name."""
    return f"autoinit-{type(model).__name__}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"




def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return None


def _version_tags() -> dict[str, str]:
    from importlib.metadata import version

    return {"autoinit.version": __version__, "torch.version": torch.__version__,
            "optuna.version": optuna.__version__, "mlflow.version": version("mlflow")}


def _model_tags(model: nn.Module) -> dict[str, Any]:
    named = dict(model.named_parameters())
    shapes = {k: tuple(p.shape) for k, p in named.items()}
    return {"model.class": type(model).__name__, "model.fingerprint": fingerprint(shapes),
            "model.parameters": str(sum(p.numel() for p in named.values())),
            "model.trainable_parameters": str(sum(p.numel() for p in named.values()
                                                  if p.requires_grad))}


def _storage_text(storage: Any) -> str | None:
    if storage is None or isinstance(storage, str):
        return redact(storage) if storage else None
    url = getattr(getattr(storage, "_backend", storage), "url", None)
    return redact(url) if url else type(storage).__name__


def _name_of(value: Any) -> str:
    if value is None or isinstance(value, str | int | float | bool):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return repr(value)
    if isinstance(value, Mapping):
        return json.dumps({str(k): str(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return getattr(value, "__qualname__", None) or type(value).__name__


def _summary_params(options: Mapping[str, Any], study_name: str) -> dict[str, str]:
    keys = ("n_trials", "timeout", "budget_steps", "probe_steps", "rungs", "cooldown", "eval_every",
            "objective", "groups", "families", "optimizer", "lr", "search_lr", "loss_fn", "seed", "n_jobs",
            "screening", "selection", "val_batches", "bf16", "only", "exclude", "train_step",
            "score", "make_state")
    out = {k: _name_of(options.get(k)) for k in keys if k in options}
    out["storage"] = _storage_text(options.get("storage")) or "in memory"
    out["study_name"] = study_name
    return out
