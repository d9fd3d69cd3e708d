"""Tracking errors turned into one warning per search, also across worker processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autoinit.errors import TrackingError, TrackingWarning
from autoinit.redact import redact

# ---------------------------------------------------------------- one warning per search


@dataclass
class _Alarm:
    """Turns tracking errors into one warning per search, also across worker processes.

    In the process that made it, the first error is a warning at once. A worker process (a copy
    made by pickling) writes its first error to a file in ``folder``; :meth:`collect` warns with
    it afterwards in the main process if nothing was warned yet.
    """

    study_name: str
    require: bool = False
    folder: str = field(default_factory=lambda: os.path.join(
        tempfile.gettempdir(), f"autoinit-mlflow-errors-{uuid.uuid4().hex}"))  # made on first use
    owner: int = field(default_factory=os.getpid)
    warned: bool = False

    def report(self, exc: BaseException, doing: str) -> None:
        from autoinit.integrations.ui import error_text

        then = ("; stopping, because tracking is required (require_tracking=True, or a "
                "--tracking-uri given on the command line)" if self.require else
                "; the search goes on without it")
        message = (f"MLflow tracking failed while {doing} ({redact(error_text(exc))}){then}; the "
                   f"trials stay in the Optuna study {self.study_name!r}")
        if self.require:
            raise TrackingError(message) from exc
        if os.getpid() != self.owner:
            path = Path(self.folder) / f"{os.getpid()}.txt"
            with contextlib.suppress(OSError):
                if not path.exists():
                    path.parent.mkdir(exist_ok=True)
                    path.write_text(message)
            return
        if not self.warned:
            self.warned = True
            warnings.warn(message, TrackingWarning, stacklevel=2)

    def collect(self) -> None:
        """Warn with a worker's first error (if none was warned yet) and remove the folder."""
        with contextlib.suppress(OSError):
            for path in sorted(Path(self.folder).glob("*.txt")):
                if not self.warned:
                    self.warned = True
                    warnings.warn(path.read_text(), TrackingWarning, stacklevel=2)
            shutil.rmtree(self.folder, ignore_errors=True)
