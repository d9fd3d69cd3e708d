"""optuna-dashboard over autoinit's studies: every trial's scheme, by readable parameter names.

autoinit's studies are plain Optuna studies whose parameters are named ``<group>.family``,
``<group>.scale``, ``<group>.bias``, ``<group>.bias_value`` (and ``lr``), with the baselines
marked by the user attribute ``baseline``; so Optuna's own tools read them as they are:
``optuna-dashboard sqlite:///study.db`` on the command line, or :func:`dashboard_app` /
:func:`serve` for any storage URL autoinit accepts (journal files included), and
``optuna.load_study(...).trials_dataframe()`` for a table with one row per trial.

Example:
    >>> from autoinit.integrations.dashboard import serve
    >>> # serve("sqlite:///studies.db", port=8080)  # then open http://127.0.0.1:8080
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import optuna

from autoinit.integrations._optional import require
from autoinit.storage import open_storage

__all__ = ["dashboard_app", "serve"]


def dashboard_app(storage: str | optuna.storages.BaseStorage) -> Callable[..., Iterable[bytes]]:
    """optuna-dashboard's WSGI application over ``storage`` (a URL or an Optuna storage)."""
    dashboard = require("optuna_dashboard", "autoinit.integrations.dashboard")
    return dashboard.wsgi(open_storage(storage))


def serve(storage: str | optuna.storages.BaseStorage, host: str = "127.0.0.1", port: int = 8080
          ) -> None:
    """Serve optuna-dashboard over ``storage`` until interrupted (loopback only by default)."""
    dashboard = require("optuna_dashboard", "autoinit.integrations.dashboard")
    dashboard.run_server(open_storage(storage), host=host, port=port)
