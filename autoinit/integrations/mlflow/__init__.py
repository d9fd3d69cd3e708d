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
  ``selection/<name>`` (where a selection round ran), ``best_score``, ``improvement``, ``cost/*``;
  artifacts ``autoinit/scheme.json``, ``autoinit/comparison.{md,json}``, ``autoinit/summary.txt``
  and ``plots/*.png``.
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

from autoinit.integrations.mlflow._artifacts import load_scheme_ref
from autoinit.integrations.mlflow._client import (
    PARAM_VALUE_LIMIT,
    SCHEME_ARTIFACT,
    experiment_id,
    flatten_rules,
)
from autoinit.integrations.mlflow._search_run import SearchTracker, default_study_name
from autoinit.integrations.mlflow._trials import TrialLogger
from autoinit.redact import redact

__all__ = ["PARAM_VALUE_LIMIT", "SCHEME_ARTIFACT", "SearchTracker", "TrialLogger", "default_study_name",
           "experiment_id", "flatten_rules", "load_scheme_ref", "redact"]
