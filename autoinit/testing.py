"""Test and benchmark helpers: a throwaway PostgreSQL server on loopback.

Example (needs PostgreSQL 15 installed and root)::

    with temporary_postgres() as url:
        autoinit.fit(model, loader, storage=url, study_name="team")
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

__all__ = ["PostgresUnavailable", "temporary_postgres"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries, or the ``postgres`` user to run them, are not here."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_postgres(password: str = "s3cret-pw", database: str = "autoinit") -> Iterator[str]:
    """Start PostgreSQL on a free 127.0.0.1 port with password auth; yield the database URL.

    The server runs as the ``postgres`` user from a temporary data folder, removed afterwards.
    """
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        raise PostgresUnavailable("PostgreSQL 15 is not installed here (apt-get install postgresql-15)")
    root = Path(tempfile.mkdtemp(prefix="autoinit-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(password + "\n")
    os.chmod(root, 0o777)
    shutil.chown(pwfile, "postgres")

    def as_postgres(*cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True,
                       cwd=root)

    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
    port = _free_port()
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200", "start")
    try:
        as_postgres(str(PG_BIN / "createdb"), "-h", str(root), "-p", str(port), database)
        yield f"postgresql://postgres:{password}@127.0.0.1:{port}/{database}"
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)
