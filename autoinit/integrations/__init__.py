"""Integrations at the edge of autoinit: MLflow tracking (:mod:`autoinit.integrations.mlflow`) and
its plots (:mod:`autoinit.integrations.plots`), trainer callbacks for PyTorch Lightning
(:mod:`autoinit.integrations.lightning`) and the Hugging Face ``Trainer``
(:mod:`autoinit.integrations.hf`), and optuna-dashboard (:mod:`autoinit.integrations.dashboard`).
Those three need an optional extra each; without it, importing them is a one-line
:class:`~autoinit.errors.MissingDependency` naming the extra.

Nothing in the search core imports this package, and importing it does not import MLflow or
matplotlib: :func:`autoinit.fit` loads the submodules only when tracking is on.

Example:
    >>> from autoinit.integrations import mlflow_available
    >>> isinstance(mlflow_available(), bool)
    True
"""

from __future__ import annotations

import importlib.util
import re

from autoinit.errors import TrackingError, TrackingWarning

__all__ = ["RUN_ID", "TrackingError", "TrackingWarning", "mlflow_available"]

RUN_ID = re.compile(r"[0-9a-f]{32}")  # an MLflow run id


def mlflow_available() -> bool:
    """Whether MLflow can be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False
