"""Optuna's own tools on autoinit's studies: optuna-dashboard's API and trials_dataframe."""

from __future__ import annotations

import json
from wsgiref.util import setup_testing_defaults

import optuna
import pytest
from torch import nn

import autoinit

pytest.importorskip("optuna_dashboard")
from autoinit.integrations.dashboard import dashboard_app  # noqa: E402


@pytest.fixture(scope="module")
def study_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'study.db'}"
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=32)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    autoinit.fit(net, loader, n_trials=8, probe_steps=6, storage=url, study_name="digits",
                 mlflow=False)
    return url


def get(app, path: str):
    environ: dict = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    status = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    return status[0], body


def test_dashboard_lists_the_study_and_each_trials_scheme_by_group_names(study_url):
    app = dashboard_app(study_url)
    status, body = get(app, "/api/studies")
    assert status.startswith("200")
    (summary,) = json.loads(body)["study_summaries"]
    assert summary["study_name"] == "digits"
    status, body = get(app, f"/api/studies/{summary['study_id']}")
    detail = json.loads(body)
    names = {p["name"] for p in detail["union_search_space"]}
    assert {"input.linear.family", "input.linear.scale", "head.linear.family"} <= names
    first = {p["name"]: p["param_external_value"] for p in detail["trials"][0]["params"]}
    assert first["input.linear.family"] == "pytorch_default"  # the first baseline
    assert get(app, "/dashboard")[0].startswith("200")  # the page itself is served


def test_trials_dataframe_gives_the_scheme_per_trial(study_url):
    frame = optuna.load_study(study_name="digits", storage=study_url).trials_dataframe()
    assert len(frame) >= 8
    assert {"params_input.linear.family", "params_head.linear.scale",
            "user_attrs_baseline"} <= set(frame.columns)
    baselines = frame.dropna(subset=["user_attrs_baseline"])
    row = baselines[baselines["user_attrs_baseline"] == "orthogonal"].iloc[0]
    assert row["params_input.linear.family"] == "orthogonal"
