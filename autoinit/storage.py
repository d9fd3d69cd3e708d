"""Optuna storages from URLs: heartbeats for many machines, patience with a database that
restarts, writes refused for good reported as one line naming the storage, passwords hidden.

``sqlite:///file.db``, ``postgresql://user:pass@host/db`` and ``mysql://...`` open an
``RDBStorage`` with heartbeats: a worker that dies (even by SIGKILL) stops beating, its running
trial is marked failed after the grace period and queued again
(``RetryHeartbeatStaleTrialCallback``),
so a study asked for N trials still ends with N. ``journal:///path/to/file.log`` (or a path
ending in ``.log``) opens a journal file shared by local processes, with heartbeats too.

Faults, and what is done about them (docs/reliability.md has the whole matrix):

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
import random
import re
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from autoinit.errors import ConfigError, StorageError
from autoinit.redact import redact

__all__ = ["HEARTBEAT_INTERVAL", "PATIENCE", "HeartbeatJournalStorage", "PatientRDBStorage",
           "fault_kind", "open_storage", "patiently", "redact"]

T = TypeVar("T")

# Seconds between a worker's heartbeats, and without one before its running trial is failed and
# retried; AUTOINIT_HEARTBEAT_INTERVAL and AUTOINIT_GRACE_PERIOD override them.
HEARTBEAT_INTERVAL = 10
GRACE_PERIOD = 30
# Seconds a storage call keeps retrying a database that does not answer; AUTOINIT_STORAGE_PATIENCE.
PATIENCE = 60.0
_SCHEMA_LOCK = 0x6175746F696E6974  # "autoinit": the PostgreSQL advisory lock around table creation
_DRIVER_HINT = {
    "postgresql": 'pip install "torch-autoinit[postgres]", which brings psycopg 3',
    "mysql": "pip install pymysql and write the URL as mysql+pymysql://...",
}
# The user's mistakes, and the machine's lasting faults: retrying does not help.
_PERMANENT = re.compile(
    r"password authentication failed|does not exist|no pg_hba\.conf entry|could not translate host"
    r"|unable to open database file|readonly database|read-only|permission denied|access denied"
    r"|unknown database|disk is full|no space left|disk i/o error", re.IGNORECASE)
_FULL = re.compile(r"disk is full|no space left", re.IGNORECASE)
# A connection lost or refused, a server restarting, a lock held a while: worth waiting for.
_TRANSIENT = re.compile(
    r"connection refused|could not connect|server closed the connection|terminating connection"
    r"|connection (?:is |was |has been )?(?:closed|reset|lost)|the database system is"
    r"|too many (?:connections|clients)|timeout|timed out|database is locked|broken pipe"
    r"|lost connection|gone away|consuming input failed|invalid transaction is rolled back",
    re.IGNORECASE)
# Workers creating the same tables at once: the loser sees the winner's tables; retry and load.
_CREATION_RACE = re.compile(r"already exists|duplicate key|unique constraint", re.IGNORECASE)


# ------------------------------------------------------------------- faults and retries

def _driver_error(exc: BaseException) -> BaseException:
    """The database driver's own error behind ``exc`` (Optuna and SQLAlchemy wrap it)."""
    while (inner := getattr(exc, "orig", None) or exc.__cause__) is not None and inner is not exc:
        exc = inner
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def fault_kind(exc: BaseException, opening: bool = False) -> str | None:
    """``"transient"`` (retry), ``"permanent"`` (report) or ``None`` (no storage fault: a study
    not found, a trial already finished). ``opening``: tables being created, where another
    worker's identical tables are a race to retry."""
    if not isinstance(exc, sqlalchemy.exc.SQLAlchemyError | optuna.exceptions.StorageInternalError):
        return None
    cause = _driver_error(exc)
    text, state = str(cause), str(getattr(cause, "sqlstate", None) or "")
    if _PERMANENT.search(text):
        return "permanent"
    if (getattr(exc, "connection_invalidated", False) or _TRANSIENT.search(text)
            or state.startswith(("08", "57P")) or (opening and _CREATION_RACE.search(text))):
        return "transient"
    return "permanent"


def _patience() -> float:
    return float(os.environ.get("AUTOINIT_STORAGE_PATIENCE", PATIENCE))


def patiently(call: Callable[[], T], url: str, opening: bool = False,
              reset: Callable[[], None] = lambda: None) -> T:
    """``call()``, retried with backoff (0.25 s doubling to 4 s, jittered) while it fails with a
    transient storage fault, for up to ``AUTOINIT_STORAGE_PATIENCE`` seconds; then
    :class:`StorageError` with the last cause. Other errors are raised at once. ``reset`` runs
    before each retry (drop a session the fault left unusable)."""
    patience, delay, start, warned = _patience(), 0.25, time.monotonic(), False
    while True:
        try:
            return call()
        except Exception as exc:
            if fault_kind(exc, opening) != "transient":
                raise
            waited = time.monotonic() - start
            if waited >= patience:
                raise StorageError(
                    f"storage {redact(url)!r} still fails after {waited:.0f} s of retries "
                    f"(AUTOINIT_STORAGE_PATIENCE={patience:g}): {_first_line(_driver_error(exc))}; "
                    "the study keeps its finished trials: rerun the same command to resume"
                ) from None
            if not warned and not opening:
                warned = True
                warnings.warn(f"storage {redact(url)!r} does not answer "
                              f"({_first_line(_driver_error(exc))}); retrying for up to "
                              f"{patience:g} s", stacklevel=2)
            time.sleep(min(delay, patience - waited) * random.uniform(0.75, 1.25))
            delay = min(2 * delay, 4.0)
            with contextlib.suppress(Exception):
                reset()


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
                               f"{_first_line(_driver_error(exc))}; the study keeps its finished "
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
        for trial_id in _patient(_running_without_heartbeat)(self, study_id):
            if now - seen.setdefault(trial_id, now) > grace:
                stale.append(trial_id)
        return stale


def _running_without_heartbeat(storage: RDBStorage, study_id: int) -> list[int]:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        rows = (session.query(models.TrialModel.trial_id)
                .outerjoin(models.TrialHeartbeatModel,
                           models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id,
                        models.TrialModel.state == TrialState.RUNNING,
                        models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                .all())
    return [trial_id for (trial_id,) in rows]


def _serialize_sqlite(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock at its start (``BEGIN IMMEDIATE``;
    others wait for it, up to the busy timeout).

    Python's sqlite3 driver starts a transaction only at the first write, so a read and the
    write that depends on it are not atomic: two workers could both take the same queued trial
    (Optuna reads "waiting", then writes "running"), which 8 workers started at once did.
    """
    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
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
def _schema_lock(url: str):
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


def _heartbeats() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=2)
    return {"heartbeat_interval": int(os.environ.get("AUTOINIT_HEARTBEAT_INTERVAL",
                                                     HEARTBEAT_INTERVAL)),
            "grace_period": int(os.environ.get("AUTOINIT_GRACE_PERIOD", GRACE_PERIOD)),
            "heartbeat_stale_trial_callback": retry}


def _rdb(url: str, engine_kwargs: dict[str, Any], lock: bool = True) -> PatientRDBStorage:
    with _schema_lock(url) if lock else contextlib.nullcontext(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PatientRDBStorage(url, engine_kwargs=engine_kwargs, **_heartbeats())


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


class HeartbeatJournalStorage(optuna.storages.JournalStorage, BaseHeartbeat):
    """A journal storage with heartbeats, as the RDB storages have: a running trial whose
    worker stopped beating (killed) for ``grace_period`` seconds is failed and queued again, so
    workers sharing a journal file also end a study with exactly N trials.

    A beat is a trial system attribute ``[trial_id, unix time]`` (the id, because a retried
    trial inherits its predecessor's attributes); a trial without one is never stale.
    """

    def __init__(self, backend: JournalFileBackend, heartbeat_interval: int, grace_period: int,
                 heartbeat_stale_trial_callback: Callable) -> None:
        super().__init__(backend)
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.heartbeat_stale_trial_callback = heartbeat_stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError, StorageError):
            self.set_trial_system_attr(trial_id, _BEAT, [trial_id, time.time()])

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False,  # noqa: SLF001
                                                          states=(TrialState.RUNNING,))
                if (beat := t.system_attrs.get(_BEAT)) and beat[0] == t._trial_id  # noqa: SLF001
                and now - beat[1] > self.grace_period]

    def get_heartbeat_interval(self) -> int:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable:
        return self.heartbeat_stale_trial_callback


_BEAT = "autoinit:heartbeat"


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
        return HeartbeatJournalStorage(_JournalFile(path), **_heartbeats())
    except OSError as exc:
        raise _journal_error(path, exc) from None


# ------------------------------------------------------------------- opening a storage

def open_storage(storage: str | optuna.storages.BaseStorage | None):
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
            f"journal:///FILE.log, got {redact(storage)!r}"
        )
    _check_sqlite_file(storage)
    engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {
        "pool_pre_ping": os.environ.get("AUTOINIT_PRE_PING", "1") == "1"}  # 0: half the round trips
    try:
        return patiently(lambda: _rdb(storage, engine_kwargs), storage, opening=True)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver and connection errors of every backend
        first = _first_line(_driver_error(exc))
        if "import DB access module" in str(exc) or isinstance(exc, ImportError):
            first = f"its database driver is not installed ({_DRIVER_HINT.get(storage.split(':')[0], first)})"
        elif _FULL.search(first):
            raise StorageError(f"storage {redact(storage)!r} cannot be written: {first}") from None
        raise ConfigError(f"storage {redact(storage)!r} cannot be opened: {first}") from None


def _check_sqlite_file(url: str) -> None:
    """A read-only SQLite file would open, then fail at the first write: say so now."""
    match = re.fullmatch(r"sqlite:///([^?]+)(\?.*)?", url)
    if match and not match.group(1).startswith(":memory:") and os.path.exists(match.group(1)):
        path = match.group(1)
        if not os.access(path, os.W_OK) or not os.access(os.path.dirname(os.path.abspath(path)),
                                                         os.W_OK):
            raise ConfigError(f"storage {redact(url)!r} cannot be opened: {path!r} is read-only")
