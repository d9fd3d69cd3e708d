"""A missing optional library is a one-line error naming the extra, not an ImportError trace."""

from __future__ import annotations

import importlib
import sys

import pytest

from autoinit.errors import MissingDependency


@pytest.mark.parametrize(("library", "module", "extra"), [
    ("lightning", "autoinit.integrations.lightning", "lightning"),
    ("transformers", "autoinit.integrations.hf", "hf"),
])
def test_importing_an_integration_without_its_library_names_the_extra(monkeypatch, library,
                                                                      module, extra):
    monkeypatch.setitem(sys.modules, library, None)  # "import library" now fails
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingDependency) as info:
        importlib.import_module(module)
    message = str(info.value)
    assert "\n" not in message
    assert f"pip install 'torch-autoinit[{extra}]'" in message and library in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, ImportError)  # `except ImportError` guards still work


def test_dashboard_without_optuna_dashboard_names_the_extra(monkeypatch, tmp_path):
    from autoinit.integrations.dashboard import dashboard_app

    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    with pytest.raises(MissingDependency, match=r"torch-autoinit\[dashboard\]"):
        dashboard_app(f"sqlite:///{tmp_path / 'study.db'}")


def test_plain_models_need_no_optional_library(monkeypatch):
    import torch.nn as nn

    from autoinit import describe_model

    monkeypatch.setitem(sys.modules, "transformers", None)
    layers = describe_model(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    assert [lay.role for lay in layers if lay.param_type == "weight"] == ["input", "head"]
