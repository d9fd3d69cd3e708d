"""Exceptions raised by autoinit: one root, each message states the rule and the value received;
``first_line``, the one line of an exception's message that such a message quotes; and the
``failure`` user attribute in which a trial that did not complete keeps why (:data:`FAILURE`,
:func:`failure_reason`)."""

from __future__ import annotations

__all__ = [
    "FAILURE",
    "AutoinitError",
    "ConfigError",
    "DataError",
    "MissingDependency",
    "PostgresUnavailable",
    "SchemeError",
    "StorageError",
    "StudyFileError",
    "TrackingError",
    "TrackingWarning",
    "failure_reason",
    "first_line",
]

# the user attribute of a trial that failed, was pruned or was cut short: why, in one string
FAILURE = "failure"


class AutoinitError(Exception):
    """Root of every error autoinit raises on purpose."""


class ConfigError(AutoinitError, ValueError):
    """An argument, option or input has a value autoinit cannot use.

    Example:
        >>> raise ConfigError("n_trials must be a positive integer, got -3")
        Traceback (most recent call last):
        ...
        autoinit.errors.ConfigError: n_trials must be a positive integer, got -3
    """


class DataError(ConfigError):
    """The data cannot be used: a loader that is not iterable or yields nothing, a batch of an
    unknown format or with NaN. The command line names the data factory it came from."""


class SchemeError(AutoinitError, ValueError):
    """A scheme file is malformed, or a scheme does not match the model it is applied to."""


class StorageError(AutoinitError, RuntimeError):
    """The study's storage failed and it is not the user's input: a database still unreachable
    after retries, a disk that is full. The study keeps every finished trial; rerunning the same
    command once the storage is back resumes it.

    Example:
        >>> raise StorageError("storage 'sqlite:///s.db' cannot be written: database or disk is full")
        Traceback (most recent call last):
        ...
        autoinit.errors.StorageError: storage 'sqlite:///s.db' cannot be written: database or disk is full
    """


class MissingDependency(AutoinitError, ImportError):
    """An optional library an integration needs is not installed; the message names the extra.

    Example:
        >>> raise MissingDependency("lightning is not installed; "
        ...                         "pip install 'torch-autoinit[lightning]'")
        Traceback (most recent call last):
        ...
        autoinit.errors.MissingDependency: lightning is not installed; pip install 'torch-autoinit[lightning]'
    """


class StudyFileError(ConfigError):
    """A study file (or a command-line flag that overrides it) has a value autoinit cannot use."""


class TrackingError(AutoinitError):
    """Tracking failed while ``require_tracking=True`` asked to fail rather than warn."""


class TrackingWarning(UserWarning):
    """Tracking failed; the search went on without it (one warning per search)."""


class PostgresUnavailable(AutoinitError, RuntimeError):
    """PostgreSQL's server binaries, or the ``postgres`` user to run them, are not here
    (:mod:`autoinit.testing`)."""


def first_line(exc: BaseException, empty: str = "") -> str:
    """The first line of ``exc``'s message, stripped, for a one-line error; ``empty`` where it
    has no message.

    Example:
        >>> first_line(RuntimeError("shape mismatch\\n  at layer 3")), first_line(KeyError())
        ('shape mismatch', '')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else empty


def failure_reason(exc: BaseException) -> str:
    """What a trial's :data:`FAILURE` attribute records of the exception that ended it: its type
    and message, at most 500 characters.

    Example:
        >>> failure_reason(RuntimeError("loss is nan at step 12"))
        'RuntimeError: loss is nan at step 12'
    """
    return f"{type(exc).__name__}: {exc}"[:500]
