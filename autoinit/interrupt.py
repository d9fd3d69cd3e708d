"""Ctrl-C during a search: the first one stops it at a safe point, a second one at once.

A SIGINT that lands inside a storage call (a database commit, a journal write) can leave a
trial half-recorded or a connection broken. While :func:`deferred_interrupt` is active, the
first SIGINT only sets a flag; the probe checks it between training steps with
:func:`check_interrupt` and raises ``KeyboardInterrupt`` there, where no storage call is under
way, and the search stops before its next trial. A second SIGINT raises at once.

Example:
    >>> with deferred_interrupt() as pending:
    ...     pending.requested
    False
    >>> check_interrupt()  # nothing pending: returns
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from autoinit.errors import FAILURE

__all__ = ["INTERRUPTED", "Pending", "check_interrupt", "deferred_interrupt", "interrupted",
           "request_interrupt"]

# the FAILURE user attribute (autoinit.errors) of a trial Ctrl-C cut: Optuna records it as
# failed, and the next run queues it again (autoinit.study.enqueue_pending)
INTERRUPTED = "interrupted (Ctrl-C)"

_requested = threading.Event()


class Pending:
    """Whether a Ctrl-C arrived while :func:`deferred_interrupt` was active."""

    @property
    def requested(self) -> bool:
        return _requested.is_set()


def request_interrupt() -> None:
    """Act as a first Ctrl-C: the next :func:`check_interrupt` raises (a worker process told by
    its parent, which alone received the SIGINT)."""
    _requested.set()


def interrupted(user_attrs: dict) -> bool:
    """Whether a trial with these user attributes was cut by Ctrl-C (not failed on its own)."""
    return user_attrs.get(FAILURE) == INTERRUPTED


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C is pending (call it where stopping is safe)."""
    if _requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Pending]:
    """Defer the first SIGINT to the next :func:`check_interrupt` (main thread only; elsewhere,
    and for the second SIGINT, Python's usual ``KeyboardInterrupt``)."""
    if threading.current_thread() is not threading.main_thread():
        yield Pending()
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if _requested.is_set():
            raise KeyboardInterrupt
        _requested.set()

    _requested.clear()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield Pending()
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()
