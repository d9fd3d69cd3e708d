"""docs/ecosystem.md stays true: every Python example in it runs as written (offline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoinit.integrations.testing import mlflow_globals_kept, sqlite_store

DOC = Path(__file__).resolve().parents[1] / "docs" / "ecosystem.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
NEEDS = ("transformers", "transformers", "transformers", "lightning", "optuna_dashboard", "torch")


@pytest.fixture(autouse=True)
def _mlflow_globals():
    with mlflow_globals_kept():
        yield


def test_every_integration_has_an_example():
    assert len(BLOCKS) == len(NEEDS)


@pytest.mark.parametrize(("index", "library"), list(enumerate(NEEDS)))
def test_example_runs(index, library, tmp_path, monkeypatch):
    pytest.importorskip(library)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", sqlite_store(tmp_path / "mlflow.db"))
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "docs"})  # noqa: S102
