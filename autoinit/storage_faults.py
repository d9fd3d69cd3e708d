"""Storage faults and patience: which database errors are worth retrying, and the retry loop.

A connection lost or refused, a server restarting, a lock held a while are *transient*: the call
is retried with backoff on a fresh connection for up to ``AUTOINIT_STORAGE_PATIENCE`` seconds
(default 60), then :class:`~autoinit.errors.StorageError`. Wrong credentials, a missing database,
a read-only file or a full disk are *permanent*: retrying does not help.

Example:
    >>> fault_kind(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(
    ...     "connection to server at 127.0.0.1 failed: Connection refused")))
    'transient'
    >>> fault_kind(ValueError("not a storage fault")) is None
    True
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import time
import warnings
from collections.abc import Callable
from typing import TypeVar

import optuna
import sqlalchemy

from autoinit.errors import StorageError
from autoinit.errors import first_line as plain_first_line
from autoinit.redact import redact

__all__ = ["FULL_DISK", "PATIENCE", "driver_error", "fault_kind", "patiently", "redacted_first_line"]

T = TypeVar("T")

# Seconds a storage call keeps retrying a database that does not answer; AUTOINIT_STORAGE_PATIENCE.
PATIENCE = 60.0
# The user's mistakes, and the machine's lasting faults: retrying does not help.
_PERMANENT = re.compile(
    r"password authentication failed|does not exist|no pg_hba\.conf entry|could not translate host"
    r"|unable to open database file|readonly database|read-only|permission denied|access denied"
    r"|unknown database|disk is full|no space left|disk i/o error", re.IGNORECASE)
FULL_DISK = re.compile(r"disk is full|no space left", re.IGNORECASE)
# A connection lost or refused, a server restarting, a lock held a while: worth waiting for.
_TRANSIENT = re.compile(
    r"connection refused|could not connect|server closed the connection|terminating connection"
    r"|connection (?:is |was |has been )?(?:closed|reset|lost)|the database system is"
    r"|too many (?:connections|clients)|timeout|timed out|database is locked|broken pipe"
    r"|lost connection|gone away|consuming input failed|invalid transaction is rolled back",
    re.IGNORECASE)
# Workers creating the same tables at once: the loser sees the winner's tables; retry and load.
_CREATION_RACE = re.compile(r"already exists|duplicate key|unique constraint", re.IGNORECASE)


def driver_error(exc: BaseException) -> BaseException:
    """The database driver's own error behind ``exc`` (Optuna and SQLAlchemy wrap it)."""
    while (inner := getattr(exc, "orig", None) or exc.__cause__) is not None and inner is not exc:
        exc = inner
    return exc


def redacted_first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (:func:`autoinit.errors.first_line`), passwords hidden,
    the exception's type where it has none."""
    return redact(plain_first_line(exc, type(exc).__name__))


def fault_kind(exc: BaseException, opening: bool = False) -> str | None:
    """``"transient"`` (retry), ``"permanent"`` (report) or ``None`` (no storage fault: a study
    not found, a trial already finished). ``opening``: tables being created, where another
    worker's identical tables are a race to retry."""
    if not isinstance(exc, sqlalchemy.exc.SQLAlchemyError | optuna.exceptions.StorageInternalError):
        return None
    cause = driver_error(exc)
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
                    f"(AUTOINIT_STORAGE_PATIENCE={patience:g}): {redacted_first_line(driver_error(exc))}; "
                    "the study keeps its finished trials: rerun the same command to resume"
                ) from None
            if not warned and not opening:
                warned = True
                warnings.warn(f"storage {redact(url)!r} does not answer "
                              f"({redacted_first_line(driver_error(exc))}); retrying for up to "
                              f"{patience:g} s", stacklevel=2)
            time.sleep(min(delay, patience - waited) * random.uniform(0.75, 1.25))
            delay = min(2 * delay, 4.0)
            with contextlib.suppress(Exception):
                reset()

