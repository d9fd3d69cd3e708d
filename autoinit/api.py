"""The public entry points: ``fit`` (the search plus optional MLflow tracking) and ``load_scheme``.

The search core (:mod:`autoinit.search`) knows nothing of MLflow; this facade adds the tracking
callback at the edge, importing :mod:`autoinit.integrations.mlflow` only when tracking is on.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from autoinit.errors import ConfigError, TrackingError, TrackingWarning
from autoinit.integrations import RUN_ID
from autoinit.layers import eager
from autoinit.proxy import search_on_proxy
from autoinit.redact import redact
from autoinit.result import FitResult, ProxyReport, TrackedRun
from autoinit.scheme import InitScheme
from autoinit.search import probe_loss, run_search, search_budget
from autoinit.search_input import materialize
from autoinit.threads import compute_threads

__all__ = ["fit", "load_scheme"]

_RUN_ATTR = "autoinit.mlflow_run"  # the study's MLflow parent run, for a rerun to find
_URI = re.compile(r"[A-Za-z][\w+.-]+:/")


def fit(model: nn.Module, dataloader: Any, *, mlflow: bool = True, tracking_uri: str | None = None,
        experiment: str | None = None, require_tracking: bool = False,
        parent_run_id: str | None = None, proxy: nn.Module | None = None,
        **options: Any) -> FitResult:
    """Search an initialization for ``model`` on ``dataloader``; the model is initialized in place.

    Takes every option of :func:`autoinit.search.run_search`, and these for MLflow tracking (on by
    default when MLflow can be imported): one parent run per search, named after the study, and
    one nested child run per trial (see :mod:`autoinit.integrations.mlflow`).

    Args:
        mlflow: ``False`` turns tracking off.
        tracking_uri: where to log; default: MLflow's own (``MLFLOW_TRACKING_URI`` or its default).
        experiment: the experiment's name; default: ``MLFLOW_EXPERIMENT_NAME``, the experiment of
            the active run, or ``"autoinit"``. An active run of the user becomes the parent of
            the search's run; it is not otherwise touched.
        require_tracking: raise :class:`~autoinit.errors.TrackingError` on a tracking error
            instead of warning once and going on without tracking.
        parent_run_id: nest the search's run in this run (a trainer's) and its experiment,
            rather than in the active run.
        proxy: a smaller copy of the model (the same architecture, narrower and shallower):
            the search runs on it, tracked as above, and its chosen scheme is transferred to
            ``model`` by group (:mod:`autoinit.proxy`); ``result.proxy`` says what mapped and
            ``result.cost`` is in the model's step time.

    The parent run's id, the tracking URI (without any password) and the experiment are in
    ``result.run`` (:class:`~autoinit.result.TrackedRun`); one line
    says where the run is logged (printed with the progress, else logged at INFO on the
    ``autoinit`` logger), and the summary names the run. Rerunning a finished study on a
    persistent ``storage`` hands back its stored result and logs no new run.

    Example:
        >>> import torch, torch.nn as nn, autoinit
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(512, 8, generator=g); y = (x[:, 0] > 0).long()
        >>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
        ...                                      batch_size=32)
        >>> net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        >>> result = autoinit.fit(net, loader, n_trials=8, probe_steps=8, mlflow=False)
        >>> sorted(result.baselines)[:3]
        ['kaiming_normal', 'lecun_normal', 'lsuv']
    """
    _check_tracking_options(mlflow, tracking_uri, experiment, require_tracking, parent_run_id)
    # lazy modules get their shapes first: the tracking and a proxy's transfer read them
    dataloader = materialize(eager(model), dataloader, probe_loss(
        options.get("loss_fn"), options.get("train_step"), options.get("score")))
    if proxy is not None:
        search = functools.partial(fit, mlflow=mlflow, tracking_uri=tracking_uri,
                                   experiment=experiment, require_tracking=require_tracking,
                                   parent_run_id=parent_run_id)
        result = search_on_proxy(model, proxy, dataloader, search=search, **options)
        if result.run is not None and result.proxy is not None:
            _log_transferred(result.run.run_id, result.scheme, result.proxy, tracking_uri,
                             require_tracking)
        return result
    if not mlflow or not _tracking_possible(require_tracking):
        return run_search(model, dataloader, **options)
    from autoinit.integrations.mlflow import SearchTracker, default_study_name

    bound = _bound_options(model, dataloader, options)
    # the parent run is named after the study, so the study is named first
    options = {**options, "study_name": bound["study_name"] or default_study_name(model)}
    bound["study_name"] = options["study_name"]
    earlier = _earlier_run(bound, tracking_uri)
    if earlier is not None:  # a finished study: its stored result comes back, nothing is logged
        result = run_search(model, dataloader, **options)
        line = (f"MLflow run {earlier['run_id']} in {earlier['where']} (logged by the run that "
                "finished this study)")
        return replace(result, run=TrackedRun(earlier["run_id"], earlier["tracking_uri"],
                                              earlier["experiment_id"], line))
    tracker = SearchTracker.start(model, bound, tracking_uri=tracking_uri, experiment=experiment,
                                  require=require_tracking, parent_run_id=parent_run_id)
    if tracker is None:
        return run_search(model, dataloader, **options)
    where = _where(tracker)
    _say(options.get("progress"), f"MLflow: logging run {tracker.run_id} to {where}")
    options["callbacks"] = [*options.get("callbacks", ()), tracker.callback]
    try:
        result = run_search(model, dataloader, **options)
    except BaseException as exc:
        tracker.fail(exc)
        raise
    with compute_threads(result.threads.threads):  # the plots train nothing, but their
        tracker.finish(result, model)  # passes run on the search's threads and flush
    result = replace(result, run=TrackedRun(tracker.run_id, _uri(tracker), tracker.experiment_id,
                                            f"MLflow run {tracker.run_id} in {where}"))
    if bound["storage"] is not None and not result.interrupted:
        with contextlib.suppress(Exception):  # a rerun finds the run; losing that costs a run
            result.study.set_user_attr(_RUN_ATTR, {"run_id": tracker.run_id,
                                                   "experiment_id": tracker.experiment_id,
                                                   "where": where, "tracking_uri": _uri(tracker)})
    return result


def _log_transferred(run: str, scheme: InitScheme, report: ProxyReport, tracking_uri: str | None,
                     require: bool) -> None:
    """The run of a proxy's search gets the model's scheme as its ``autoinit/scheme.json`` (what
    ``load_scheme(run_id)`` reads), the proxy's as ``autoinit/proxy_scheme.json``, and a tag
    ``autoinit.proxy`` saying what mapped; a tracking error warns (raises with ``require``)."""
    from mlflow import MlflowClient

    from autoinit.integrations.mlflow import SCHEME_ARTIFACT

    try:
        client = MlflowClient(tracking_uri)
        client.log_text(run, report.proxy_scheme.to_json(), "autoinit/proxy_scheme.json")
        client.log_text(run, scheme.to_json(), SCHEME_ARTIFACT)
        client.set_tag(run, "autoinit.proxy", report.describe()[:5000])
    except Exception as exc:  # noqa: BLE001 - tracking never breaks a finished search
        message = f"the transferred scheme was not logged to MLflow run {run}: {exc}"
        if require:
            raise TrackingError(message) from exc
        warnings.warn(message, TrackingWarning, stacklevel=3)


def _earlier_run(bound: dict[str, Any], tracking_uri: str | None) -> dict[str, Any] | None:
    """The MLflow run of an earlier search of this study when the study is finished and its
    selection round is stored (a rerun then logs nothing new), else ``None``."""
    import mlflow
    import optuna

    from autoinit.probe import ProbeConfig
    from autoinit.rungs import rung_steps
    from autoinit.selection import Selection, is_stored
    from autoinit.storage import open_storage
    from autoinit.study import DONE, stored_rounds

    if bound["storage"] is None or bound["n_trials"] is None and bound["train_steps"] is None:
        return None
    try:
        # with train_steps the search follows its budget's plan (and stops with its budget)
        budget = search_budget(**bound)
        steps, n_trials, selection = (bound["probe_steps"], bound["n_trials"], bound["selection"]) \
            if budget is None else (budget.probe_steps, budget.n_trials, budget.selection)
        selection = selection or Selection()
        ends = rung_steps(steps, bound["rungs"])
        config = ProbeConfig(steps=ends[-1], lr=bound["lr"], seed=bound["seed"],
                             objective=bound["objective"],
                             rungs=ends if bound["rungs"] > 1 else ())
        opened = open_storage(bound["storage"])
        # a search that lengthened its probes ended in its last stored round
        name, longer = stored_rounds([s.study_name for s in opened.get_all_studies()],
                                     bound["study_name"])[-1]
        if longer is not None:
            config = replace(config, steps=longer, rungs=())
        study = optuna.load_study(study_name=name, storage=opened)
        run = study.user_attrs.get(_RUN_ATTR)
        finished = len(study.get_trials(deepcopy=False, states=DONE))
        here = redact(tracking_uri or mlflow.get_tracking_uri())
    except Exception:  # noqa: BLE001 - no such study, or bad options: the search says so
        return None
    if not run or run.get("tracking_uri") != here:
        return None
    if not selection.seeds:  # no selection round to store: the named candidates are the search
        return run if n_trials is not None and finished >= n_trials else None
    # a budget may stop the trials before n_trials; its stored round says it finished
    full = budget is not None or n_trials is not None and finished >= n_trials
    return run if full and is_stored(study, selection, config) else None


def _where(tracker: Any) -> str:
    """``experiment 'name' at <uri> (artifacts in <location>)``, as far as MLflow tells."""
    try:
        exp = tracker.client.get_experiment(tracker.experiment_id)
        name, artifacts = exp.name, exp.artifact_location
    except Exception:  # noqa: BLE001 - only a description
        name, artifacts = tracker.experiment_id, None
    text = f"experiment {name!r} at {_uri(tracker)}"
    return text + (f" (artifacts in {artifacts})" if artifacts else "")


def _uri(tracker: Any) -> str:
    return redact(tracker.tracking_uri)


def _say(progress: Any, line: str) -> None:
    """A line for the user: printed where the search shows progress, else logged (INFO)."""
    from autoinit.progress import SearchProgress, progress_wanted

    if isinstance(progress, SearchProgress):
        progress.note(line)
    elif progress_wanted(progress):
        print(line, flush=True)
    else:
        logging.getLogger("autoinit").info(line)


def _check_tracking_options(mlflow: object, tracking_uri: object, experiment: object,
                            require_tracking: object, parent_run_id: object = None) -> None:
    for name, value in (("mlflow", mlflow), ("require_tracking", require_tracking)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
    for name, value in (("tracking_uri", tracking_uri), ("experiment", experiment),
                        ("parent_run_id", parent_run_id)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{name} must be a non-empty string or None, got {value!r}")
    if require_tracking and not mlflow:
        raise ConfigError("require_tracking=True asks for tracking but mlflow=False turns it off")


def _tracking_possible(required: bool) -> bool:
    from autoinit.integrations import mlflow_available

    if mlflow_available():
        return True
    if required:
        raise ConfigError("require_tracking=True needs MLflow, which cannot be imported here "
                          "(pip install mlflow)")
    return False


def _bound_options(model: nn.Module, dataloader: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``run_search``'s options with defaults filled in; an unknown name fails here (the same
    ``TypeError`` as without tracking), before any run is created."""
    bound = inspect.signature(run_search).bind(model, dataloader, **options)
    bound.apply_defaults()
    return dict(bound.arguments)


def load_scheme(ref: str | Path, *, tracking_uri: str | None = None) -> InitScheme:
    """An :class:`InitScheme` from a local JSON file, an MLflow run id or an artifact URI.

    ``ref`` is a path (a folder is searched for ``autoinit/scheme.json`` or ``scheme.json``), a
    run id or ``runs:/<run id>`` (reads the run's ``autoinit/scheme.json``), ``runs:/<id>/<path>``
    or any other MLflow artifact URI. ``tracking_uri`` defaults to MLflow's own.

    Example:
        >>> import tempfile, pathlib, torch.nn as nn
        >>> from autoinit.plan import uniform_scheme
        >>> s = uniform_scheme(nn.Sequential(nn.Linear(4, 2)), "orthogonal")
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "scheme.json"
        >>> _ = s.to_json(path)
        >>> load_scheme(path) == s
        True
    """
    path = Path(ref)
    text = str(ref).strip()
    if isinstance(ref, Path) or path.exists() or not (RUN_ID.fullmatch(text) or _URI.match(text)):
        if path.is_dir():
            path = next((p for p in (path / "autoinit" / "scheme.json", path / "scheme.json")
                         if p.is_file()), path / "scheme.json")
        return InitScheme.from_json(path)
    from autoinit.integrations import mlflow_available

    if not mlflow_available():
        raise ConfigError(f"loading a scheme from MLflow ({text!r}) needs MLflow, which cannot be "
                          "imported here (pip install mlflow)")
    from autoinit.integrations.mlflow import load_scheme_ref

    return load_scheme_ref(text, tracking_uri=tracking_uri)
