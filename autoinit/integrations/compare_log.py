"""``autoinit compare`` in MLflow: a parent run with the table and the scheme, one child run per
method with its held-out curve per seed.

Example:
    >>> import tempfile
    >>> from autoinit.compare import CompareRun
    >>> from autoinit.plan import uniform_scheme
    >>> import torch.nn as nn
    >>> scheme = uniform_scheme(nn.Linear(2, 2), "orthogonal")
    >>> runs = [CompareRun("chosen", 1, 0.2, None, [(10, 0.2)], 1.0, None)]
    >>> uri = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
    >>> run_id = log_compare(uri, "demo", "compare demo", {"steps": 10}, runs, "table", scheme)
    >>> len(run_id)
    32
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from autoinit.compare import CompareRun
from autoinit.integrations.mlflow import experiment_id
from autoinit.scheme import InitScheme

__all__ = ["log_compare"]

_METRICS_PER_REQUEST = 900


def log_compare(tracking_uri: str | None, experiment: str, run_name: str,
                params: Mapping[str, Any], runs: Sequence[CompareRun], table: str,
                scheme: InitScheme, split: str = "val") -> str:
    """Log the trainings of one ``compare``; returns the parent run's id (errors propagate)."""
    import mlflow

    uri = tracking_uri or mlflow.get_tracking_uri()
    client = MlflowClient(uri)
    exp_id = experiment_id(client, uri, experiment)
    parent = client.create_run(exp_id, run_name=run_name,
                               tags={"autoinit.kind": "compare"}).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(parent, params=[Param(k, str(v)[:500]) for k, v in params.items()])
    by: dict[str, list[CompareRun]] = {}
    for r in runs:
        by.setdefault(r.method, []).append(r)
    summary = []
    for method, rs in by.items():
        child = client.create_run(exp_id, run_name=method, tags={
            "mlflow.parentRunId": parent, "autoinit.kind": "compare"}).info.run_id
        metrics = [Metric(f"{split}_loss.seed{r.seed}", v, now, step)
                   for r in rs for step, v in r.curve]
        med = statistics.median(r.loss for r in rs)
        if math.isfinite(med):
            metrics.append(Metric(f"final_{split}_loss_median", med, now, 0))
            key = "chosen" if method.startswith("chosen") else method
            summary.append(Metric(f"{key}.{split}_loss_median", med, now, 0))
        accs = [r.accuracy for r in rs if r.accuracy is not None]
        if accs:
            metrics.append(Metric(f"final_{split}_acc_median", statistics.median(accs), now, 0))
        for i in range(0, max(1, len(metrics)), _METRICS_PER_REQUEST):
            client.log_batch(child, metrics=metrics[i:i + _METRICS_PER_REQUEST],
                             params=[Param("method", method)] if i == 0 else [])
        client.set_terminated(child)
    client.log_batch(parent, metrics=summary)
    client.log_text(parent, table, "compare.txt")
    client.log_text(parent, scheme.to_json(), "scheme.json")
    client.set_terminated(parent)
    return parent
