"""The search-cost table of docs/search_cost.md: ``autoinit_budget`` against ``autoinit`` and the
best fixed init, on the seeds where ``autoinit_budget`` ran, from benchmark run files.

Per task: R (the search's cost in training-step equivalents over the task's training steps,
median and range over seeds), the test metric (median and bootstrap 95 % interval, the same
2,000 resamples as ``scripts/benchmark.py``), tie/win/loss by the intervals, and the steps to the
target with the search included (the target: the best fixed init's median final validation loss
on those seeds; for the issue-11 tasks, the "trains" threshold where no fixed init reaches it).

Run:
    python scripts/search_cost.py /work/bench_out/budget/runs > table.md
"""

from __future__ import annotations

import copy
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import SECTIONED, _versus, robustness_summary, summarize  # noqa: E402

BUDGET, AUTO = "autoinit_budget", "autoinit"


def same_seeds(result: dict) -> dict:
    """``result`` restricted to the seeds where ``autoinit_budget`` ran."""
    out = copy.deepcopy(result)
    out["seeds"] = {s: r for s, r in result["seeds"].items() if BUDGET in r["methods"]}
    return out


def r_range(result: dict, method: str) -> str:
    values = [r["methods"][method]["init_tse"] / result["steps"] for r in result["seeds"].values()
              if r["methods"].get(method, {}).get("applies")]
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def cell(row: dict | None, digits: int) -> str:
    if not row or not row.get("applies"):
        return "—"
    m, lo, hi = row["metric"]
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def ttt(row: dict | None) -> str:
    if not row or not row.get("applies"):
        return "—"
    m, lo, hi = row["time_to_target_tse"]
    return f"{m:.0f} [{lo:.0f}, {hi:.0f}]" + (f" ({row['censored']} censored)"
                                              if row.get("censored") else "")


def paired(result: dict, other: str, lower: bool) -> str:
    """On how many seeds ``autoinit_budget``'s test metric is at least as good as ``other``'s."""
    key = "test_loss" if lower else "test_acc"
    pairs = [(r["methods"][BUDGET].get(key), r["methods"][other].get(key))
             for r in result["seeds"].values()
             if r["methods"].get(BUDGET, {}).get("applies")
             and r["methods"].get(other, {}).get("applies")]
    pairs = [(b, o) for b, o in pairs if b is not None and o is not None]
    if not pairs:
        return "—"
    return f"{sum((b <= o) if lower else (b >= o) for b, o in pairs)}/{len(pairs)}"


def chosen(result: dict) -> str:
    return ", ".join(r["methods"][BUDGET].get("chosen", "?") for r in result["seeds"].values())


def rows(runs: Path) -> list[str]:
    head = ("| task | seeds | training steps | R budget median [range] | R autoinit median [range] "
            "| metric | autoinit_budget | autoinit | best fixed init | budget vs autoinit | budget "
            "vs best fixed | seeds budget >= autoinit / >= best fixed | steps to target incl. "
            "search: budget / autoinit / best fixed | chosen by budget (per seed) |")
    out = [head, "|" + " --- |" * (head.count("|") - 1)]
    for path in sorted(runs.glob("*.json")):
        result = same_seeds(json.loads(path.read_text()))
        if not result["seeds"]:
            continue
        summ = summarize(result)
        if result["task"] in SECTIONED:
            robustness_summary(result, summ)
        lower = summ["lower_is_better"]
        digits = 4 if lower else 1
        methods, best = summ["methods"], summ["best_fixed"]
        b, a, f = methods.get(BUDGET), methods.get(AUTO), methods.get(best)
        out.append(
            f"| {result['task']} | {len(result['seeds'])} | {result['steps']} | "
            f"{r_range(result, BUDGET)} | {r_range(result, AUTO)} | {result['metric']} | "
            f"{cell(b, digits)} | {cell(a, digits)} | {best}: {cell(f, digits)} | "
            f"{_versus(b, a, lower)} | {_versus(b, f, lower)} | {paired(result, AUTO, lower)} / "
            f"{paired(result, best, lower)} | {ttt(b)} / {ttt(a)} / {ttt(f)} | "
            f"{chosen(result)} |")
    return out


def overhead_rows(runs: Path) -> list[str]:
    """Per task, medians over seeds: the budget, the training steps the search counted (probes,
    screening passes, selection round), its cost in the training's unit, and the difference: the
    overhead (evaluations, LSUV calibration, timing, setup, Optuna, the probe loop's own cost per
    step against the plain training loop's)."""
    out = ["| task | budget (steps) | steps counted | cost (TSE) | overhead (TSE) | overhead / cost "
           "| code |", "|" + " --- |" * 7]
    for path in sorted(runs.glob("*.json")):
        result = json.loads(path.read_text())
        recs = [r["methods"][BUDGET] for r in result["seeds"].values()
                if r["methods"].get(BUDGET, {}).get("applies")]
        if not recs:
            continue
        counted = [sum(r["search_cost"][k] for k in ("probe_steps", "screening_passes",
                                                      "selection_steps")) for r in recs]
        tse = [r["init_tse"] for r in recs]
        over = [t - c for t, c in zip(tse, counted, strict=True)]
        code = ", ".join(sorted({r.get("budget_code", "?") for r in recs}))
        out.append(f"| {result['task']} | {recs[0]['budget']['budget_steps']} | "
                   f"{statistics.median(counted):.0f} | {statistics.median(tse):.0f} | "
                   f"{statistics.median(over):.0f} | "
                   f"{statistics.median(o / t for o, t in zip(over, tse, strict=True)):.2f} | "
                   f"{code} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows(Path(sys.argv[1]))))
    print()
    print("\n".join(overhead_rows(Path(sys.argv[1]))))
