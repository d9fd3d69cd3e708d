"""Optuna storages from URLs: heartbeats for many machines, patience with a database that
restarts, writes refused for good reported as one line naming the storage, passwords hidden.

``sqlite:///file.db``, ``postgresql://user:pass@host/db`` and ``mysql://...`` open an
``RDBStorage`` with heartbeats: a worker that dies (even by SIGKILL) stops beating, its running
trial is marked failed after the grace period and queued again
(``RetryHeartbeatStaleTrialCallback``),
so a study asked for N trials still ends with N. ``journal:///path/to/file.log`` (or a path
ending in ``.log``) opens a journal file shared by local processes, with heartbeats too.

Faults, and what is done about them (docs/reliability.md has the whole matrix; which errors
are transient and the retry loop are in :mod:`autoinit.storage_faults`, the heartbeats in
:mod:`autoinit.heartbeats`):

* Workers started together on an empty database: on PostgreSQL the tables are made under an
  advisory lock, one worker after the other; on every backend a creation race that still
  happens (SQLite's "table already exists") is retried, and the study itself is created once
  (its name is unique; the others load it).
* The database goes away mid-search (a restart, a failover, the network): every storage call is
  retried with backoff on a fresh connection for up to ``AUTOINIT_STORAGE_PATIENCE`` seconds
  (default 60), then :class:`~autoinit.errors.StorageError`. A transient fault is never
  reported as bad input. Connections are checked before use (``pool_pre_ping``), which doubles
  the round trips of tiny calls; ``AUTOINIT_PRE_PING=0`` turns the check off.
* A write refused for good (a full disk, a read-only file): :class:`~autoinit.errors.StorageError`
  naming the storage; a journal file is cut back to its last whole record, so it stays readable.

Example:
    >>> redact("postgresql://alice:s3cret@db.local:5432/studies")
    'postgresql://alice:***@db.local:5432/studies'
    >>> fault_kind(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(
    ...     "connection to server at 127.0.0.1 failed: Connection refused")))
    'transient'
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend

from autoinit.errors import ConfigError, StorageError
from autoinit.heartbeats import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    HeartbeatJournalStorage,
    heartbeat_options,
    running_without_heartbeat,
)
from autoinit.redact import redact
from autoinit.storage_faults import (
    FULL_DISK,
    PATIENCE,
    driver_error,
    fault_kind,
    patiently,
    redacted_first_line,
)

__all__ = ["GRACE_PERIOD", "HEARTBEAT_INTERVAL", "PATIENCE", "HeartbeatJournalStorage",
           "PatientRDBStorage", "fault_kind", "local_file", "missing_file", "open_storage", "patiently",
           "rdb_storage", "redact"]

T = TypeVar("T")

_SCHEMA_LOCK = 0x6175746F696E6974  # "autoinit": the PostgreSQL advisory lock around table creation
_DRIVER_HINT = {
    "postgresql": 'pip install "torch-autoinit[postgres]", which brings psycopg 3',
    "mysql": "pip install pymysql and write the URL as mysql+pymysql://...",
}


# ------------------------------------------------------------------- relational databases

_inside = threading.local()  # one retry loop per call: methods that call methods retry once


def _patient(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def call(self: RDBStorage, *args: Any, **kwargs: Any) -> T:
        if getattr(_inside, "call", False):
            return method(self, *args, **kwargs)
        _inside.call = True
        try:
            return patiently(lambda: method(self, *args, **kwargs), self.url,
                             reset=self.scoped_session.remove)
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            if fault_kind(exc) is None:
                raise
            raise StorageError(f"storage {redact(self.url)!r} cannot be written or read: "
                               f"{redacted_first_line(driver_error(exc))}; the study keeps its finished "
                               "trials: rerun the same command to resume") from None
        finally:
            _inside.call = False
    return call


class PatientRDBStorage(RDBStorage):
    """An ``RDBStorage`` whose every call waits out a database that restarts (see
    :func:`patiently`) and reports a lasting fault as one :class:`StorageError` line.

    Retrying a whole call is safe: a call is one transaction, rolled back when the connection
    drops, and the pool replaces dead connections (``pool_pre_ping``). A heartbeat that fails
    for good is dropped quietly; the trial's own thread reports the fault.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            _serialize_sqlite(self.engine)

    def __setstate__(self, state: dict[str, Any]) -> None:  # unpickled: a new engine
        super().__setstate__(state)
        if self.engine.dialect.name == "sqlite":
            _serialize_sqlite(self.engine)

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(StorageError):
            _patient(RDBStorage.record_heartbeat)(self, trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's stale trials (a heartbeat older than the grace period), and RUNNING trials
        that have recorded no heartbeat for longer than the grace period.

        A live trial records its first heartbeat as it starts; one without any died between its
        creation and that heartbeat (the database went away in between). Optuna's rule passes
        such a trial over, so it stayed RUNNING and a worker waiting for the study's last
        trials waited forever. The time is this process's own clock (the trials' start times
        come from other machines' clocks).
        """
        stale = _patient(RDBStorage._get_stale_trial_ids)(self, study_id)
        grace = self.grace_period if self.grace_period is not None else 2 * self.heartbeat_interval
        now, seen = time.monotonic(), self.__dict__.setdefault("_seen_without_heartbeat", {})
        for trial_id in _patient(running_without_heartbeat)(self, study_id):
            if now - seen.setdefault(trial_id, now) > grace:
                stale.append(trial_id)
        return stale



def _serialize_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock at its start (``BEGIN IMMEDIATE``;
    others wait for it, up to the busy timeout).

    Python's sqlite3 driver starts a transaction only at the first write, so a read and the
    write that depends on it are not atomic: two workers could both take the same queued trial
    (Optuna reads "waiting", then writes "running"), which 8 workers started at once did.
    """
    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before these hooks are not reused


# Every call that reaches the database, the private ones Optuna's cache layer uses included.
for _name in ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
              "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
              "get_study_user_attrs", "get_study_system_attrs", "get_trial_user_attrs",
              "get_trial_system_attrs", "get_all_studies", "create_new_trial", "_create_new_trial",
              "set_trial_param", "_set_trial_param", "get_trial_param", "set_trial_state_values",
              "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
              "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials",
              "_get_trials", "get_best_trial", "_get_best_trial_id"):
    setattr(PatientRDBStorage, _name, _patient(getattr(RDBStorage, _name)))


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """On PostgreSQL, hold an advisory lock while the tables are made: workers started together
    then create them one after the other instead of racing. Released with its connection."""
    if not url.startswith("postgresql"):
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            try:
                yield
            finally:
                with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"),
                                 {"key": _SCHEMA_LOCK})
    finally:
        engine.dispose()



def rdb_storage(url: str, engine_kwargs: dict[str, Any], lock: bool = True) -> PatientRDBStorage:
    """A :class:`PatientRDBStorage` with heartbeats, opened once (no retry: see
    :func:`patiently`); ``lock``: on PostgreSQL, make the tables under the advisory lock."""
    with _schema_lock(url) if lock else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PatientRDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat_options())


# ------------------------------------------------------------------- journal files

class _JournalFile(JournalFileBackend):
    """A journal file whose failed append (a full disk) is cut back to the last whole record,
    so the study in it stays readable, and reported as :class:`StorageError` naming the file."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        try:
            self._lock.acquire()
        except OSError as exc:
            raise _journal_error(self._file_path, exc) from None
        try:
            size = os.path.getsize(self._file_path)
            try:
                with open(self._file_path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.truncate(self._file_path, size)
                raise _journal_error(self._file_path, exc) from None
        finally:
            self._lock.release()




def _journal_error(path: str, exc: OSError) -> StorageError:
    return StorageError(f"storage journal file {path!r} cannot be written: "
                        f"{exc.strerror or exc}; the study keeps its finished trials: "
                        "rerun the same command to resume")


def _open_journal(path: str) -> HeartbeatJournalStorage:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"storage journal file {path!r} cannot be opened: its folder "
                          f"{folder!r} does not exist")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise ConfigError(f"storage journal file {path!r} cannot be opened: it is read-only")
    try:
        return HeartbeatJournalStorage(_JournalFile(path), **heartbeat_options())
    except OSError as exc:
        raise _journal_error(path, exc) from None


# ------------------------------------------------------------------- opening a storage

def open_storage(storage: str | BaseStorage | None) -> BaseStorage | None:
    """An Optuna storage for ``storage`` (``None``: in memory; storage objects pass through).

    Raises:
        ConfigError: the URL is malformed, its driver is missing, the database refuses the
            credentials or does not exist, the file's folder is missing or read-only.
        StorageError: the database still does not answer after ``AUTOINIT_STORAGE_PATIENCE``
            seconds, or the disk is full.
    """
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise ConfigError(f"storage must be a URL string, got {type(storage).__name__}")
    if storage.startswith("journal://") or storage.endswith(".log"):
        return _open_journal(storage.removeprefix("journal://"))
    if not storage.startswith(("sqlite:", "postgresql", "mysql")):
        raise ConfigError(
            "storage must be sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, mysql://... or "
            f"journal://FILE.log, got {redact(storage)!r}"
        )
    _check_sqlite_file(storage)
    engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {
        "pool_pre_ping": os.environ.get("AUTOINIT_PRE_PING", "1") == "1"}  # 0: half the round trips
    try:
        return patiently(lambda: rdb_storage(storage, engine_kwargs), storage, opening=True)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver and connection errors of every backend
        first = redacted_first_line(driver_error(exc))
        if "import DB access module" in str(exc) or isinstance(exc, ImportError):
            first = f"its database driver is not installed ({_DRIVER_HINT.get(storage.split(':')[0], first)})"
        elif FULL_DISK.search(first):
            raise StorageError(f"storage {redact(storage)!r} cannot be written: {first}") from None
        raise ConfigError(f"storage {redact(storage)!r} cannot be opened: {first}") from None


def local_file(url: str) -> str | None:
    """The file a ``sqlite:///FILE`` or journal URL names; ``None`` for a server or ``:memory:``.

    Example:
        >>> local_file("sqlite:///runs/s.db"), local_file("journal://j.log"), local_file("mysql://h/db")
        ('runs/s.db', 'j.log', None)
    """
    if url.startswith("journal://") or url.endswith(".log"):
        return url.removeprefix("journal://")
    match = re.fullmatch(r"sqlite:///([^?]+)(\?.*)?", url)
    return match.group(1) if match and not match.group(1).startswith(":memory:") else None


def missing_file(url: str) -> str | None:
    """The SQLite or journal file ``url`` names when it does not exist (opening it would create
    it), else ``None``.

    Example:
        >>> missing_file("sqlite:///no/such/dir/s.db"), missing_file("postgresql://h/db")
        ('no/such/dir/s.db', None)
    """
    path = local_file(url)
    return path if path is not None and not os.path.exists(path) else None


def _check_sqlite_file(url: str) -> None:
    """A read-only SQLite file would open, then fail at the first write: say so now."""
    path = local_file(url)
    if path is not None and os.path.exists(path) and (
            not os.access(path, os.W_OK)
            or not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)):
        raise ConfigError(f"storage {redact(url)!r} cannot be opened: {path!r} is read-only")
