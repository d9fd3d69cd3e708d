"""Test and benchmark helpers: a throwaway PostgreSQL server on loopback, which a test may stop
and start again on the same port (a database restart in the middle of a search).

Example (needs PostgreSQL 15 installed and root)::

    with temporary_postgres() as url:
        autoinit.fit(model, loader, storage=url, study_name="team")

    with PostgresServer() as server:      # the same, with the server in hand
        ...
        server.restart()                  # every connection is cut; the URL stays valid
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from autoinit.errors import PostgresUnavailable

__all__ = ["PostgresServer", "PostgresUnavailable", "free_port", "temporary_postgres"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """PostgreSQL on a free 127.0.0.1 port with password auth, run as the ``postgres`` user from
    a temporary data folder (removed by :meth:`close`). :meth:`stop` and :meth:`start` keep the
    data and the port, so :attr:`url` stays valid across a restart."""

    def __init__(self, password: str = "s3cret-pw", database: str = "autoinit") -> None:
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            raise PostgresUnavailable("PostgreSQL 15 is not installed here "
                                      "(apt-get install postgresql-15)")
        self.password, self.database = password, database
        self.root = Path(tempfile.mkdtemp(prefix="autoinit-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False
        pwfile = self.root / "pw"
        pwfile.write_text(password + "\n")
        os.chmod(self.root, 0o777)
        shutil.chown(pwfile, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        self.start()
        self._as_postgres(str(PG_BIN / "createdb"), "-h", str(self.root), "-p", str(self.port),
                          database)

    @property
    def url(self) -> str:
        return (f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{self.database}")

    def start(self) -> None:
        """Start the server (waits until it accepts connections)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.root / "log"), "-o", f"-p {self.port} -k {self.root} "
                          "-c listen_addresses=127.0.0.1 -c max_connections=200", "start")
        self.running = True

    def stop(self) -> None:
        """Stop the server at once (``pg_ctl -m fast``: open connections are cut)."""
        if self.running:
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
            self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True,
                       cwd=self.root)


@contextlib.contextmanager
def temporary_postgres(password: str = "s3cret-pw", database: str = "autoinit") -> Iterator[str]:
    """Start PostgreSQL on a free 127.0.0.1 port with password auth; yield the database URL.

    The server runs as the ``postgres`` user from a temporary data folder, removed afterwards.
    """
    with PostgresServer(password, database) as server:
        yield server.url
