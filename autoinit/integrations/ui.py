"""Where to look at a search in MLflow's UI: the runs view of its experiment.

MLflow 3 opens an experiment in its GenAI views (an empty traces overview) unless the address
asks for the model-training views with ``workflowType=machine_learning``; an experiment tag does
not change that in MLflow 3.17. So autoinit prints the runs view's address, and for a local
store the command that serves it.

Example:
    >>> runs_url("http://127.0.0.1:5000/", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning'
    >>> ui_lines("sqlite:////tmp/mlflow.db", "3")[0]
    'open the UI: mlflow ui --backend-store-uri sqlite:////tmp/mlflow.db'
    >>> error_text(OSError("HTTPConnectionPool(...): Max retries exceeded (Caused by "
    ...                    "NewConnectionError('...: [Errno 111] Connection refused'))"))
    'OSError: connection refused'
"""

from __future__ import annotations

import re

from autoinit.errors import first_line

__all__ = ["LOCAL_UI", "error_text", "runs_url", "ui_lines"]

LOCAL_UI = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default


def runs_url(server: str, experiment_id: str) -> str:
    """The runs view of an experiment on an MLflow server (model-training views)."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def ui_lines(tracking_uri: str, experiment_id: str | None, what: str = "the search's runs"
             ) -> list[str]:
    """What to print so a user lands on ``what`` was logged (default: a search's runs) in the
    runs view of its experiment."""
    if tracking_uri.startswith(("http://", "https://")):
        where = runs_url(tracking_uri, experiment_id) if experiment_id else tracking_uri
        return [f"open the UI: {where}"]
    if tracking_uri.startswith("databricks"):
        return [f"open the UI: the experiment {experiment_id} in your Databricks workspace"]
    lines = [f"open the UI: mlflow ui --backend-store-uri {tracking_uri}"]
    if experiment_id:
        lines.append(f"  then {what}: {runs_url(LOCAL_UI, experiment_id)}")
    return lines


_CAUSES = (("connection refused", r"connection refused"),
           ("host not found", r"name or service not known|nodename nor servname|getaddrinfo"),
           ("timed out", r"timed? ?out"),
           ("cannot connect", r"failed to establish a new connection|max retries exceeded"))


def error_text(exc: BaseException) -> str:
    """A tracking error in a few words: the network cause when there is one, else its whole
    first line (never cut in the middle)."""
    text = str(exc)
    lowered = text.lower()
    for words, pattern in _CAUSES:
        if re.search(pattern, lowered):
            return f"{type(exc).__name__}: {words}"
    first = first_line(exc)
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
