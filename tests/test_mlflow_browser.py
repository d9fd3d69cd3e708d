"""The parent run in MLflow's own UI, in headless Chromium: the address autoinit prints lands on
the search's runs, and the best score and the scheme artifact are on the run's page. Skipped,
with the reason, only where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoinit
from autoinit.integrations.testing import shared_server

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).exists()), None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not found (apt-get install "
                                "chromium); the MLflow UI cannot be checked in a browser here")


@pytest.fixture(scope="module")
def searched(request, tmp_path_factory):
    server = shared_server(request.config, tmp_path_factory.mktemp("mlflow-server"))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(384, 8, generator=g)
    loader = DataLoader(TensorDataset(x, (x[:, 1] > 0).long()), batch_size=32)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    result = autoinit.fit(model, loader, n_trials=6, probe_steps=8, tracking_uri=server.url,
                          experiment="browser", require_tracking=True, progress=False)
    from mlflow import MlflowClient

    run = MlflowClient(server.url).get_run(result.extra["mlflow_run_id"])
    return server.url, run, result


def test_the_printed_address_lands_on_the_searchs_runs(searched, tmp_path):
    """MLflow 3 opens a bare experiment address on an empty GenAI traces overview; the address
    autoinit prints must show the runs of the search on the first page."""
    from autoinit.integrations.ui import ui_lines

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, run, result = searched
    lines = ui_lines(result.extra["mlflow_tracking_uri"], result.extra["mlflow_experiment_id"])
    address = lines[0].removeprefix("open the UI: ")
    assert address.startswith(url)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(address)
            page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=90_000)
            body = page.inner_text("body")
            assert "matching runs" in body and "Run Name" in body
            assert "No data available" not in body  # not the traces overview
            page.screenshot(path=str(tmp_path / "landing.png"))
        finally:
            browser.close()
    assert (tmp_path / "landing.png").stat().st_size > 10_000


def test_parent_run_page_shows_best_score_and_scheme_artifact(searched, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    url, run, result = searched
    page_url = f"{url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(page_url)
            page.get_by_text("best_score", exact=True).first.wait_for(timeout=90_000)
            assert run.info.run_name in page.inner_text("body")
            shown = repr(run.data.metrics["best_score"])[:8]  # the UI prints the full float
            page.get_by_text(shown).first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "parent_run.png"))

            page.goto(f"{page_url}/artifacts")
            page.get_by_text("autoinit", exact=True).first.click(timeout=60_000)
            page.get_by_text("scheme.json", exact=True).first.click(timeout=30_000)
            page.get_by_text('"format_version"').first.wait_for(timeout=30_000)
            assert result.scheme.fingerprint in page.inner_text("body")
            page.screenshot(path=str(tmp_path / "scheme_artifact.png"))
        finally:
            browser.close()
    assert (tmp_path / "parent_run.png").stat().st_size > 10_000
