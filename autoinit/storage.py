"""Optuna storages from URLs, with heartbeats for many machines and passwords kept out of sight.

``sqlite:///file.db``, ``postgresql://user:pass@host/db`` and ``mysql://...`` open an
``RDBStorage`` with heartbeats: a worker that dies (even by SIGKILL) stops beating, its running
trial is marked failed after the grace period and queued again
(``RetryHeartbeatStaleTrialCallback``),
so a study asked for N trials still ends with N. ``journal:///path/to/file.log`` (or a path
ending in ``.log``) opens a journal file shared by local processes.

Example:
    >>> redact("postgresql://alice:s3cret@db.local:5432/studies")
    'postgresql://alice:***@db.local:5432/studies'
"""

from __future__ import annotations

import os
import re
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback

from autoinit.errors import ConfigError

__all__ = ["HEARTBEAT_INTERVAL", "open_storage", "redact"]

# Seconds between a worker's heartbeats, and without one before its running trial is failed and
# retried; AUTOINIT_HEARTBEAT_INTERVAL and AUTOINIT_GRACE_PERIOD override them.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
_DRIVER_HINT = {
    "postgresql": 'pip install "torch-autoinit[postgres]", which brings psycopg 3',
    "mysql": "pip install pymysql and write the URL as mysql+pymysql://...",
}
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?=@)")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***", str(text))


def open_storage(storage: str | optuna.storages.BaseStorage | None):
    """An Optuna storage for ``storage`` (``None``: in memory; storage objects pass through)."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise ConfigError(f"storage must be a URL string, got {type(storage).__name__}")
    if storage.startswith("journal://") or storage.endswith(".log"):
        path = storage.removeprefix("journal://")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    if not storage.startswith(("sqlite:", "postgresql", "mysql")):
        raise ConfigError(
            "storage must be sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, mysql://... or "
            f"journal:///FILE.log, got {redact(storage)!r}"
        )
    engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {
        "pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                storage,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=int(os.environ.get("AUTOINIT_HEARTBEAT_INTERVAL",
                                                      HEARTBEAT_INTERVAL)),
                grace_period=int(os.environ.get("AUTOINIT_GRACE_PERIOD", GRACE_PERIOD)),
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
            )
    except Exception as exc:  # noqa: BLE001 - driver and connection errors of every backend
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "import DB access module" in first or isinstance(exc, ImportError):
            first = f"its database driver is not installed ({_DRIVER_HINT.get(storage.split(':')[0], first)})"
        raise ConfigError(f"storage {redact(storage)!r} cannot be opened: {redact(first)}") from None
