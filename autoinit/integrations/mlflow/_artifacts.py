"""Loading a scheme back from an MLflow run or artifact URI."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from autoinit.errors import SchemeError, first_line
from autoinit.integrations import RUN_ID
from autoinit.integrations.mlflow._client import SCHEME_ARTIFACT, _quick_http
from autoinit.redact import redact
from autoinit.scheme import InitScheme

# ---------------------------------------------------------------- loading a scheme back


def load_scheme_ref(ref: str, tracking_uri: str | None = None) -> InitScheme:
    """The scheme behind a run id, a ``runs:/<id>[/path]`` URI or another MLflow artifact URI.

    A bare run id or ``runs:/<id>`` reads ``autoinit/scheme.json`` of that run.
    """
    import mlflow

    text = str(ref).strip()
    if RUN_ID.fullmatch(text):
        text = f"runs:/{text}"
    if re.fullmatch(r"runs:/[^/]+/?", text):
        text = f"{text.rstrip('/')}/{SCHEME_ARTIFACT}"
    _check_store_exists(text, tracking_uri)
    with tempfile.TemporaryDirectory(prefix="autoinit-scheme-") as tmp:
        try:
            with _quick_http(quiet=True):
                local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text, dst_path=tmp,
                                                                 tracking_uri=tracking_uri))
        except Exception as exc:  # noqa: BLE001 - reported as a scheme that cannot be read
            raise SchemeError(f"cannot read a scheme from MLflow artifact {redact(text)!r}"
                              f"{_where(text, tracking_uri)}: {type(exc).__name__}: "
                              f"{redact(first_line(exc))}") from None
        if local.is_dir():
            local = next((p for p in (local / SCHEME_ARTIFACT, local / "scheme.json") if p.is_file()),
                         local)
        return InitScheme.from_json(local)


def _check_store_exists(uri: str, tracking_uri: str | None) -> None:
    """A run looked up in a local SQLite store that does not exist: say so rather than let MLflow
    create an empty database (``autoinit show <run id>`` in the wrong folder)."""
    if not uri.startswith(("runs:/", "models:/")):
        return
    import mlflow

    from autoinit.storage import missing_file

    path = missing_file(tracking_uri or mlflow.get_tracking_uri())
    if path is not None:
        raise SchemeError(f"cannot read a scheme from MLflow artifact {redact(uri)!r}"
                          f"{_where(uri, tracking_uri)}: there is no file {path!r}")


def _where(uri: str, tracking_uri: str | None) -> str:
    """Where a ``runs:/`` or ``models:/`` URI was looked up: the tracking URI, and how to give
    another when it was not given."""
    if not uri.startswith(("runs:/", "models:/")):
        return ""  # another artifact URI names its own store
    if tracking_uri:
        return f" in tracking URI {redact(tracking_uri)!r}"
    import mlflow

    source = ("MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI")
              else "MLflow's default")
    return (f" in tracking URI {redact(mlflow.get_tracking_uri())!r} ({source}; give the run's "
            "with --tracking-uri URI, tracking_uri= in Python, or MLFLOW_TRACKING_URI)")
