"""MLflow tracking of a search: one parent run per search, one nested child run per trial.

Contract: logging goes through an explicit :class:`mlflow.MlflowClient` and run ids, never through
MLflow's global active run, and it never breaks a search: the first tracking error becomes one
:class:`~autoinit.errors.TrackingWarning` per search and the search goes on (its trials stay
in the Optuna storage); ``require=True`` raises :class:`~autoinit.errors.TrackingError`
instead. The per-trial callback (:class:`TrialLogger`) holds only strings and plain data, so it
pickles into the worker processes of ``n_jobs > 1`` and opens its client there.

Layout of a search in MLflow:

* parent run, named after the study: params (budget, probe steps, grouping, optimizer, lr, ...);
  tags (versions, device, model class, fingerprint, parameter count); metrics ``baseline/<name>``,
  ``best_score``, ``improvement``, ``cost/*``; artifacts ``autoinit/scheme.json``,
  ``autoinit/comparison.{md,json}``, ``autoinit/summary.txt`` and ``plots/*.png``.
* child runs (tag ``mlflow.parentRunId``), one per trial: params ``<group>.family``,
  ``<group>.scale``, ``<group>.bias``, ...; metrics ``probe_loss`` (the held-out loss or the
  user's score) and ``train_loss`` by step (``train/<name>`` for a custom ``train_step``'s other
  values), ``score``; tags ``autoinit.state`` / ``autoinit.reason``; status FINISHED, KILLED (pruned) or
  FAILED.

Example:
    >>> import tempfile, torch, torch.nn as nn, autoinit
    >>> uri = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
    >>> loader = torch.utils.data.DataLoader(
    ...     torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32)
    >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> result = autoinit.fit(net, loader, n_trials=8, probe_steps=8, tracking_uri=uri)
    >>> run_id = result.run.run_id
    >>> autoinit.load_scheme(run_id, tracking_uri=uri) == result.scheme
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import math
import os
import posixpath
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autoinit.device import default_device
from autoinit.errors import SchemeError, TrackingError, TrackingWarning
from autoinit.integrations import RUN_ID
from autoinit.integrations.orphans import WORKER_TAG, close_orphans, worker_tag
from autoinit.objective import thin_stride
from autoinit.redact import redact
from autoinit.result import FitResult, SearchContext
from autoinit.scheme import GroupRule, InitScheme, fingerprint, rules_from_json
from autoinit.settings import DEFAULTS
from autoinit.sharing import SURPLUS
from autoinit.version import __version__

__all__ = ["SCHEME_ARTIFACT", "SearchTracker", "TrialLogger", "default_study_name", "flatten_rules",
           "load_scheme_ref", "redact"]

SCHEME_ARTIFACT = "autoinit/scheme.json"
PARAM_VALUE_LIMIT = 500  # MLflow 3 allows 6000 characters; older servers 500
PARAMS_PER_REQUEST = 100  # the server's cap on params (and tags) in one log_batch
METRICS_PER_REQUEST = 1000
MAX_CHILD_PARAMS = 1000  # beyond this the child run's params stop; the scheme goes in as an artifact
TAG_LIMIT = 5000
TRAIN_POINTS = 50  # training-loss points per child run (each metric row costs the store time)
BREAK_AFTER = 3  # consecutive failed attempts after which a logger tries only every RETRY_AFTER s
RETRY_AFTER = 15.0
PARENT_TAG = "mlflow.parentRunId"
_STATES = {TrialState.COMPLETE: ("complete", RunStatus.FINISHED),
           TrialState.PRUNED: ("pruned", RunStatus.KILLED),
           TrialState.FAIL: ("failed", RunStatus.FAILED)}
# Fast failure when a server is down: MLflow's defaults retry 7 times with backoff 2 (minutes).
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


def _send(client: MlflowClient, run_id: str, *, metrics=(), params=(), tags=()) -> None:
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


# ---------------------------------------------------------------- one warning per search


@dataclass
class _Alarm:
    """Turns tracking errors into one warning per search, also across worker processes.

    In the process that made it, the first error is a warning at once. A worker process (a copy
    made by pickling) writes its first error to a file in ``folder``; :meth:`collect` warns with
    it afterwards in the main process if nothing was warned yet.
    """

    study_name: str
    require: bool = False
    folder: str = field(default_factory=lambda: os.path.join(
        tempfile.gettempdir(), f"autoinit-mlflow-errors-{uuid.uuid4().hex}"))  # made on first use
    owner: int = field(default_factory=os.getpid)
    warned: bool = False

    def report(self, exc: BaseException, doing: str) -> None:
        from autoinit.integrations.ui import error_text

        then = ("; stopping, because tracking is required (require_tracking=True, or a "
                "--tracking-uri given on the command line)" if self.require else
                "; the search goes on without it")
        message = (f"MLflow tracking failed while {doing} ({redact(error_text(exc))}){then}; the "
                   f"trials stay in the Optuna study {self.study_name!r}")
        if self.require:
            raise TrackingError(message) from exc
        if os.getpid() != self.owner:
            path = Path(self.folder) / f"{os.getpid()}.txt"
            with contextlib.suppress(OSError):
                if not path.exists():
                    path.parent.mkdir(exist_ok=True)
                    path.write_text(message)
            return
        if not self.warned:
            self.warned = True
            warnings.warn(message, TrackingWarning, stacklevel=2)

    def collect(self) -> None:
        """Warn with a worker's first error (if none was warned yet) and remove the folder."""
        with contextlib.suppress(OSError):
            for path in sorted(Path(self.folder).glob("*.txt")):
                if not self.warned:
                    self.warned = True
                    warnings.warn(path.read_text(), TrackingWarning, stacklevel=2)
            shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------- the per-trial callback


@dataclass
class TrialLogger:
    """Optuna callback ``(study, frozen_trial)``: one child run per finished trial.

    Picklable (strings and plain data); the client is opened lazily in each process. In the
    process that made it (``n_jobs=1``), trials are logged from one background thread so that
    tracking latency stays off the search's path; :meth:`drain` waits for them. Worker processes
    (and ``require=True``, which must fail at once) log in the callback itself.

    A trial that cannot be logged (the tracking server is away) waits in a backlog and is logged
    with the next trial that can be, so a server restarted mid-search misses nothing; after
    ``BREAK_AFTER`` failed attempts in a row the logger tries again only every ``RETRY_AFTER``
    seconds. A child run left half-written by a failure is closed as KILLED and deleted once the
    server answers again (the trial is then logged whole).
    """

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    alarm: _Alarm
    lr: float
    seed: int = 0
    plans: Mapping[str, Any] | None = None  # "group" / "layer" ModelPlan, to rebuild full schemes
    background: bool = True
    failures: int = 0
    backlog: list[FrozenTrial] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)  # child runs a failure left half-written
    _last_failure: float = 0.0
    _client: MlflowClient | None = field(default=None, repr=False)
    _queue: queue.SimpleQueue | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_queue": None, "_thread": None}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state not in _STATES or trial.user_attrs.get(SURPLUS):  # a trial never run
            return
        if self.background and not self.alarm.require and os.getpid() == self.alarm.owner:
            if self._thread is None:
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._work, name="autoinit-mlflow",
                                                daemon=True)
                self._thread.start()
            self._queue.put(trial)
        else:
            self.log_safely(trial)

    def bind_search(self, context: SearchContext) -> None:
        """Keep the search's plans, to rebuild a trial's full scheme (called before its trials)."""
        self.plans = {"group": context.plan, "layer": context.layer_plan}

    def drain(self, timeout: float | None = None) -> None:
        """Wait until the trials handed to the background thread are logged; stop it; try the
        backlog once more."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                return
            self._thread = None
        if (self.backlog or self.abandoned) and not self.alarm.require:  # require: raised already
            self._flush()

    def _work(self) -> None:
        while (trial := self._queue.get()) is not None:
            self.log_safely(trial)

    def log_safely(self, trial: FrozenTrial) -> None:
        """:meth:`log` this trial and the backlog, with errors reported (once per search)
        instead of raised."""
        self.backlog.append(trial)
        if self.failures < BREAK_AFTER or time.monotonic() - self._last_failure >= RETRY_AFTER:
            self._flush()

    def _flush(self) -> None:
        try:
            with _quick_http(quiet=True):
                while self.abandoned:
                    self.client.set_terminated(self.abandoned[0],
                                               RunStatus.to_string(RunStatus.KILLED))
                    self.client.delete_run(self.abandoned.pop(0))
                while self.backlog:
                    self.log(self.backlog[0])
                    self.backlog.pop(0)
            self.failures = 0
        except Exception as exc:  # noqa: BLE001 - tracking must not break the search
            self.failures += 1
            self._last_failure = time.monotonic()
            what = f"logging trial {self.backlog[0].number}" if self.backlog else \
                "closing a half-written child run"
            self.alarm.report(exc, what)

    def log(self, trial: FrozenTrial) -> str:
        """Create the child run of ``trial``, fill it and close it; its run id."""
        state, status = _STATES[trial.state]
        attrs = trial.user_attrs
        baseline = attrs.get("baseline")
        reason = attrs.get("failure") or trial.system_attrs.get("fail_reason")
        if trial.state == TrialState.FAIL and not reason:
            reason = "the objective raised an exception (see the Optuna log)"
        tags = {PARENT_TAG: self.parent_run_id, "autoinit.trial": str(trial.number),
                "autoinit.state": state, "autoinit.reason": reason, "autoinit.baseline": baseline,
                "autoinit.study": self.alarm.study_name}
        name = f"trial-{trial.number}" + (f"-{baseline}" if baseline else "")
        run = self.client.create_run(self.experiment_id, start_time=_ms(trial.datetime_start),
                                     tags={t.key: t.value for t in _tags(tags)}, run_name=name)
        run_id = run.info.run_id
        try:
            self._fill(run_id, trial, status)
        except BaseException:
            self.abandoned.append(run_id)
            raise
        return run_id

    def _fill(self, run_id: str, trial: FrozenTrial, status: RunStatus) -> None:
        attrs = trial.user_attrs
        baseline = attrs.get("baseline")
        rules = rules_from_json(attrs["rules"]) if "rules" in attrs else {}
        flat = flatten_rules({g: r.to_dict(members=False) for g, r in rules.items()})
        values = {**flat, "lr": trial.params.get("lr", self.lr)}
        if baseline:
            values["baseline"] = baseline
        params, cut = param_entities(values)
        extra = [RunTag("autoinit.params_cut", "true")] if cut else []
        _send(self.client, run_id, metrics=self._metrics(trial), params=params, tags=extra)
        if cut:
            self.client.log_text(run_id, self._scheme_json(rules, baseline), SCHEME_ARTIFACT)
        self.client.set_terminated(run_id, RunStatus.to_string(status), _ms(trial.datetime_complete))

    def _metrics(self, trial: FrozenTrial) -> list[Metric]:
        ts = _ms(trial.datetime_complete)
        attrs = trial.user_attrs
        out = [Metric("probe_loss", float(v), ts, int(s)) for s, v in attrs.get("curve", ())
               if _finite(v)]
        train = attrs.get("train_loss", [])  # the core keeps every stride-th step's loss
        stride = thin_stride(attrs.get("probe_steps", len(train)))
        every = max(1, math.ceil(len(train) / TRAIN_POINTS))
        out += [Metric("train_loss", float(v), ts, i * stride + 1) for i, v in enumerate(train)
                if i % every == 0 and _finite(v)]
        for key, values in attrs.get("train_values", {}).items():  # a custom train_step's values
            out += [Metric(f"train/{key}", float(v), ts, i * stride + 1)
                    for i, v in enumerate(values) if i % every == 0 and _finite(v)]
        if trial.state == TrialState.COMPLETE and _finite(trial.value):
            out.append(Metric("score", float(trial.value), ts, 0))
        for key in ("probe_steps", "screening_passes", "seconds"):
            if _finite(attrs.get(key)):
                out.append(Metric(key, float(attrs[key]), ts, 0))
        return out

    def _scheme_json(self, rules: Mapping[str, GroupRule], baseline: str | None) -> str:
        """The trial's full scheme (or, failing that, its group rules) as JSON."""
        plan = (self.plans or {}).get("layer" if baseline == "lsuv" else "group")
        with contextlib.suppress(Exception):
            return plan.scheme(dict(rules), self.seed).to_json()
        return json.dumps({"groups": {g: r.to_dict() for g, r in rules.items()}}, indent=2) + "\n"


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
    def _start(cls, model, options, study_name, alarm, tracking_uri, experiment, parent_run_id
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
        metrics = _report.metrics(result, table)
        note = _report.markdown(result, table)
        tags = {"autoinit.chosen": result.chosen, "autoinit.reason": result.reason,
                "autoinit.interrupted": str(result.interrupted).lower(),
                "autoinit.device": result.context.config.device if result.context else None,
                "model.fingerprint": result.scheme.fingerprint, "mlflow.note.content": note}
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


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def default_study_name(model: nn.Module) -> str:
    """``autoinit-<model class>-<date>-<time>-<4 hex>``: a readable, unique study name."""
    return f"autoinit-{type(model).__name__}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


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
        experiment = experiment or "autoinit"
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
    keys = ("n_trials", "timeout", "budget_steps", "probe_steps", "eval_every", "objective",
            "groups", "families", "optimizer", "lr", "search_lr", "loss_fn", "seed", "n_jobs",
            "screening", "selection", "val_batches", "bf16", "only", "exclude", "train_step",
            "score", "make_state")
    out = {k: _name_of(options.get(k)) for k in keys if k in options}
    out["storage"] = _storage_text(options.get("storage")) or "in memory"
    out["study_name"] = study_name
    return out


# ---------------------------------------------------------------- loading a scheme back


def load_scheme_ref(ref: str, tracking_uri: str | None = None) -> InitScheme:
    """The scheme behind a run id, a ``runs:/<id>[/path]`` URI or another MLflow artifact URI.

    A bare run id or ``runs:/<id>`` reads ``autoinit/scheme.json`` of that run.
    """
    import mlflow

    text = str(ref).strip()
    if RUN_ID.fullmatch(text):
        text = f"runs:/{text}"
    if re.fullmatch(r"runs:/[^/]+/?", text):
        text = f"{text.rstrip('/')}/{SCHEME_ARTIFACT}"
    with tempfile.TemporaryDirectory(prefix="autoinit-scheme-") as tmp:
        try:
            with _quick_http(quiet=True):
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=tmp,
                                                                 tracking_uri=tracking_uri))
        except Exception as exc:  # noqa: BLE001 - reported as a scheme that cannot be read
            raise SchemeError(f"cannot read a scheme from MLflow artifact {redact(text)!r}: "
                              f"{type(exc).__name__}: {redact(str(exc)).splitlines()[0]}") from None
        if local.is_dir():
            local = next((p for p in (local / SCHEME_ARTIFACT, local / "scheme.json") if p.is_file()),
                         local)
        return InitScheme.from_json(local)

