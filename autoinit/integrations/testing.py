"""A throwaway local ``mlflow server`` for tests, demos and screenshots.

SQLite backend and proxied artifacts in a folder of your choice, bound to 127.0.0.1 on a free port.
Started as its own process group and stopped by that group's id only.

Example:
    >>> import tempfile
    >>> with LocalMlflowServer(tempfile.mkdtemp()) as server:  # doctest: +SKIP
    ...     print(server.url)
    http://127.0.0.1:...
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from autoinit.testing import free_port

if TYPE_CHECKING:
    import pytest

__all__ = ["LocalMlflowServer", "free_port", "mlflow_globals_kept", "shared_server", "sqlite_store"]


@contextlib.contextmanager
def mlflow_globals_kept() -> Iterator[None]:
    """Put MLflow's process-wide state back as it was: the tracking URI, the active experiment,
    their environment variables and the active run. Trainers' MLflow loggers (Hugging Face
    ``MLflowCallback``, Lightning's ``MLFlowLogger``) set them for the whole process."""
    import mlflow
    import mlflow.tracking.fluent as fluent
    from mlflow.tracking._tracking_service import utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    env = {name: os.environ.get(name) for name in names}
    uri, experiment, active = utils._tracking_uri, fluent._active_experiment_id, mlflow.active_run()
    try:
        yield
    finally:
        while mlflow.active_run() is not None and mlflow.active_run() is not active:
            mlflow.end_run()
        mlflow.set_tracking_uri(uri)
        fluent._active_experiment_id = experiment
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sqlite_store(path: str | Path) -> str:
    """``sqlite:///<path>``, a fresh MLflow store: a copy of one migrated once per process.

    MLflow runs its whole chain of schema migrations on a new database (seconds); copying a
    migrated empty one is instant.
    """
    path = Path(path)
    if not path.exists():
        template = _TEMPLATE.get("path")
        if template is None:
            template = Path(tempfile.mkdtemp(prefix="autoinit-mlflow-template-")) / "mlflow.db"
            atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            store = SqlAlchemyStore(f"sqlite:///{template}", str(template.parent / "mlruns"))
            store.engine.dispose()
            _TEMPLATE["path"] = template
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(template) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
            dst.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                        ((path.parent / "mlruns" / "0").as_uri(),))  # the copy's own folder
    return f"sqlite:///{path}"


_TEMPLATE: dict[str, Path] = {}


class LocalMlflowServer:
    """``mlflow server`` on 127.0.0.1 with ``folder/mlflow.db`` and ``folder/artifacts``.

    Several servers may share a folder one after the other (the database is then already
    migrated, which makes the second start faster).
    """

    def __init__(self, folder: str | Path, port: int | None = None, start_timeout: float = 120.0,
                 backend_store_uri: str | None = None) -> None:
        self.folder = Path(folder)
        self.backend_store_uri = backend_store_uri  # default: a SQLite file in ``folder``
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalMlflowServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri",
               self.backend_store_uri or sqlite_store(self.folder / "mlflow.db"),
               "--serve-artifacts", "--artifacts-destination", str(self.folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true",  # no outside calls
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job-runner processes
        env.pop("MLFLOW_TRACKING_URI", None)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.folder, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {self.process.returncode}; "
                                   f"log:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer on {self.url} within "
                           f"{self.start_timeout:.0f} s; log:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 10 s)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5  # workers of the group that outlive its leader
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()



def shared_server(config: pytest.Config, folder: str | Path) -> LocalMlflowServer:
    """One server per pytest session (``config`` is ``request.config``), stopped at its end.

    Test modules share it. A test may stop it (to test failures); the next caller then gets a
    fresh one on the first server's folder, so the runs logged so far stay there.
    """
    import pytest

    key = _STASH.setdefault("key", pytest.StashKey[LocalMlflowServer]())
    server = config.stash.get(key, None)
    if server is None or server.process is None or server.process.poll() is not None:
        server = LocalMlflowServer(server.folder if server is not None else folder).start()
        config.stash[key] = server
        config.add_cleanup(server.stop)
    return server


_STASH: dict = {}
