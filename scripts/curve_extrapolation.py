"""Would extrapolating a probe's curve rank inits more like the full training than its last value?

Replays, on the validation curves that the benchmark stored for every full training
(``docs/runs/<task>.json``: the held-out loss at every ``steps/30``), what a probe of ``f·T``
steps would have seen (the curve's prefix, for ``f`` in 0.1, 0.2, 1/3 of the ``T``-step
training), and ranks the task's fixed inits and competitors (searches, controls and the pre-LN
architecture change left out) five ways:

- ``raw``: the last held-out loss of the prefix (what a probe scores today);
- ``mean3``: the mean of its last three evaluations;
- ``loglin``: a line in log-step through the prefix's second half, read at step ``T``;
- ``loglin2k``: the same line read at step ``2·f·T`` (a nearer horizon);
- ``power``: a line in log-loss against log-step (a power law), read at ``T``.

Each ranking is compared with the ranking of the full trainings' test metric: the Spearman rho,
the mean rank of the pick among the candidates (0: the best) and the task-seeds where the pick is
the best. The GAN is left out (its score is not the held-out loss).

    python scripts/curve_extrapolation.py docs/runs
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

FRACTIONS = (0.1, 0.2, 1 / 3)
RULES = ("raw", "mean3", "loglin2k", "loglin", "power")
NOT_CANDIDATES = ("autoinit", "preln_reference", "default_")  # prefixes: searches, controls


def scores(curve: list, k: float, steps: int) -> dict[str, float] | None:
    """Each rule's score of the curve's prefix up to step ``k`` (lower is better)."""
    points = [(s, v) for s, v, *_ in curve if s <= k and v is not None and math.isfinite(v)]
    if len(points) < 3:
        return None
    s, v = np.array(points, dtype=float).T
    out = {"raw": v[-1], "mean3": v[-3:].mean()}
    half = s >= k / 2
    if half.sum() < 3:
        return out | {"loglin": v[-1], "loglin2k": v[-1], "power": v[-1]}
    slope, level = np.polyfit(np.log(s[half]), v[half], 1)
    p_slope, p_level = np.polyfit(np.log(s[half]), np.log(np.maximum(v[half], 1e-9)), 1)
    return out | {"loglin": level + slope * math.log(steps),
                  "loglin2k": level + slope * math.log(min(steps, 2 * k)),
                  "power": math.exp(p_level + p_slope * math.log(steps))}


def task_rows(run: dict) -> dict[tuple[float, str], list[tuple[float, int]]]:
    """Per (fraction, rule): (rho, rank of the pick) for each seed of one task."""
    steps, accuracy = run["steps"], "acc" in run["metric"]
    rows: dict[tuple[float, str], list[tuple[float, int]]] = {}
    for record in run["seeds"].values():
        runs = {m: r for m, r in record["methods"].items()
                if not m.startswith(NOT_CANDIDATES) and r.get("curve") and r.get("test_loss") is not None}
        if len(runs) < 3:
            continue
        names = sorted(runs)
        final = np.array([-runs[m]["test_acc"] if accuracy else runs[m]["test_loss"] for m in names])
        for fraction in FRACTIONS:
            per = [scores(runs[m]["curve"], fraction * steps, steps) for m in names]
            if any(p is None for p in per):
                continue
            for rule in RULES:
                x = np.array([p[rule] if math.isfinite(p[rule]) else math.inf for p in per])
                x[~np.isfinite(x)] = np.nanmax(np.where(np.isfinite(x), x, np.nan)) + 1
                pick = int(np.argmin(x))
                rows.setdefault((fraction, rule), []).append(
                    (float(spearmanr(x, final).statistic), int((final < final[pick]).sum())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="a folder of benchmark run files (docs/runs)")
    args = parser.parse_args()
    tasks = {}
    for path in sorted(args.runs.glob("*.json")):
        run = json.loads(path.read_text())
        if run["task"] != "dcgan_digits":
            tasks[run["task"]] = task_rows(run)
    for fraction in FRACTIONS:
        print(f"\nprobe of {fraction:.2f} of the training: rho / mean rank of the pick / best found")
        print(f"| task | {' | '.join(RULES)} |\n|---|{'---|' * len(RULES)}")
        total: dict[str, list[tuple[float, int]]] = {r: [] for r in RULES}
        means: dict[str, list[float]] = {r: [] for r in RULES}
        for task, rows in tasks.items():
            cells = []
            for rule in RULES:
                got = rows.get((fraction, rule), [])
                rho = float(np.nanmean([g[0] for g in got])) if got else math.nan
                means[rule].append(rho)
                total[rule] += got
                cells.append(f"{rho:.2f} / {np.mean([g[1] for g in got]):.1f} / "
                             f"{sum(g[1] == 0 for g in got)}/{len(got)}" if got else "-")
            print(f"| {task} | {' | '.join(cells)} |")
        cells = [f"{np.nanmean(means[r]):.2f} / {np.mean([g[1] for g in total[r]]):.2f} / "
                 f"{sum(g[1] == 0 for g in total[r])}/{len(total[r])}" for r in RULES]
        print(f"| **all tasks** | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
