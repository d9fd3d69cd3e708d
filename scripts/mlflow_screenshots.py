"""Screenshots of a search in MLflow's UI, for the docs.

Starts a throwaway ``mlflow server`` (SQLite, artifacts in a temporary folder), runs one small
search that logs to it, then drives headless Chromium (Playwright, the system's ``chromium``) to
save:

* ``docs/mlflow_parent_run.png``: the parent run page (best score, scheme artifact, description);
* ``docs/mlflow_compare_children.png``: the comparison view of the child runs (one per trial);
* ``docs/mlflow_plots.png``: the parent run's probe-curve plot in the artifact viewer.

Usage:
    python scripts/mlflow_screenshots.py [--out docs] [--server http://127.0.0.1:5000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from mlflow import MlflowClient

import autoinit
from autoinit.integrations.testing import LocalMlflowServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mlflow_overhead import mlp, teacher_task  # noqa: E402  (the same small task)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def run_search(url: str) -> tuple[str, str, float]:
    result = autoinit.fit(mlp(depth=8, width=64), teacher_task(), n_trials=20, probe_steps=40, lr=3e-3,
                          tracking_uri=url, experiment="autoinit-demo", require_tracking=True)
    print(result.summary())
    client = MlflowClient(url)
    run = client.get_run(result.run.run_id)
    return run.info.experiment_id, run.info.run_id, result.score


def tidy(page: Page) -> None:
    """The classic model-training view, without the assistant panel."""
    page.evaluate("""() => { for (const [k, v] of Object.entries(localStorage))
        if (k.toLowerCase().includes('assistant')) localStorage.removeItem(k); }""")
    for label in ("Model training",):
        button = page.get_by_text(label, exact=True)
        if button.count():
            button.first.click()
    close = page.locator("[aria-label='Close']")
    if close.count():
        close.first.click()


def screenshots(url: str, exp: str, run_id: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    client = MlflowClient(url)
    kids = client.search_runs([exp], f"tags.mlflow.parentRunId = '{run_id}'",
                              order_by=["metrics.score ASC"])
    ids = [k.info.run_id for k in kids if "autoinit.baseline" not in k.data.tags
           or k.data.tags["autoinit.baseline"] != "lsuv"][:12]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                    headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1250})
        page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}")
        page.get_by_text("best_score").first.wait_for(timeout=60_000)
        tidy(page)  # switching the view opens the runs list: go back to the run
        page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}")
        page.get_by_text("best_score").first.wait_for(timeout=60_000)
        more = page.locator("text=Show more >> visible=true")
        if more.count():
            more.first.click()  # the description's full table
        time.sleep(1.5)
        page.screenshot(path=str(out / "mlflow_parent_run.png"), full_page=False)

        page.goto(f"{url}/#/experiments/{exp}/runs/{run_id}/artifacts/plots/probe_curves.png")
        page.get_by_text("probe_curves.png").first.wait_for(timeout=60_000)
        time.sleep(2)
        page.screenshot(path=str(out / "mlflow_plots.png"))

        page.goto(f"{url}/#/compare-runs?runs={json.dumps(ids)}&experiments={json.dumps([exp])}")
        page.get_by_text("Parallel Coordinates Plot").first.wait_for(timeout=60_000)
        choose_axes(page, ["input.linear.scale", "hidden.linear.family", "hidden.linear.scale",
                           "head.linear.scale"], ["score"])
        time.sleep(2)
        page.screenshot(path=str(out / "mlflow_compare_children.png"))
        browser.close()


def choose_axes(page: Page, params: list[str], metrics: list[str]) -> None:
    """Pick the parallel-coordinates axes (best effort: the UI's defaults stay otherwise)."""
    try:
        page.get_by_text("Clear All", exact=True).first.click()
        boxes = page.locator("input[role='combobox'], .ant-select-selection-search-input")
        for box, names in ((boxes.nth(0), params), (boxes.nth(1), metrics)):
            for name in names:
                box.click()
                box.fill(name)
                page.get_by_title(name, exact=True).first.click(timeout=5_000)
            page.keyboard.press("Escape")
    except Exception as exc:  # noqa: BLE001 - a screenshot with the default axes is still useful
        print(f"could not choose the plot's axes: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    parser.add_argument("--server", help="use this running server instead of starting one")
    parser.add_argument("--run", help="with --server: EXPERIMENT_ID/RUN_ID of a search already logged")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # steadier step timings beside the server on a small machine
    if chromium_path() is None:
        print("chromium not found: apt-get install -y chromium", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.server:
        exp, run_id = args.run.split("/") if args.run else run_search(args.server)[:2]
        screenshots(args.server, exp, run_id, args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="autoinit-shots-") as tmp, \
            LocalMlflowServer(tmp) as server:
        exp, run_id, _ = run_search(server.url)
        screenshots(server.url, exp, run_id, args.out)
    for name in ("mlflow_parent_run.png", "mlflow_compare_children.png", "mlflow_plots.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
