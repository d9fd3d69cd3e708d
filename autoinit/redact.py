"""Secrets kept out of messages, MLflow params and tags: one :func:`redact` for every URL autoinit
shows (storages, tracking servers, errors that quote them).

Example:
    >>> redact("postgresql://bob:s3cret@db:5432/optuna?sslmode=require&password=x")
    'postgresql://bob:***@db:5432/optuna?sslmode=require&password=***'
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?=@)")
_SECRET_QUERY = re.compile(r"(?i)([?&][^=&\s]*(?:pass|secret|token|key)[^=&\s]*=)[^&\s]*")


def redact(text: object) -> str:
    """``text`` with the password of every URL in it, and query values named like a secret
    (``password``, ``token``, ``api_key``...), replaced by ``***``; the user name stays, so the
    message still says who connected."""
    return _SECRET_QUERY.sub(r"\1***", _PASSWORD.sub(r"\g<head>***", str(text)))
