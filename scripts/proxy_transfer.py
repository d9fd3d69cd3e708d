"""Issue 12, proxy transfer: the search on a proxy against the search on the full model.

Reads ``<runs>/<task>.json`` written by ``scripts/benchmark.py`` (methods ``autoinit`` and
``autoinit_proxy``, and the fixed inits, on the same seeds) and prints, per task, the proxy's
size, the cost ratio proxy search / full search per seed (both in the full model's step time:
the benchmark's TSE unit is the training step that follows each initializer in the same run)
and the test metric with its bootstrap 95 % interval beside the full search's, the lean full
search's and the best fixed init's.

Usage:
    python scripts/proxy_transfer.py /work/bench_out/proxy/runs
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import LOSS_METRIC, PROXY, median_ci, summarize  # noqa: E402

COMPARED = ("autoinit", "autoinit_lean", "autoinit_proxy")


def task_rows(result: dict) -> list[str]:
    """The task's lines of the report."""
    name, lower = result["task"], result["task"] in LOSS_METRIC
    seeds = {s: r["methods"] for s, r in result["seeds"].items()
             if r["methods"].get("autoinit_proxy", {}).get("applies")}
    summ = summarize(result)["methods"]
    best_fixed = summarize({**result, "seeds": {s: result["seeds"][s] for s in seeds}})["best_fixed"]
    ratios = {(ref, key): {s: m["autoinit_proxy"][key] / m[ref][key] for s, m in seeds.items()
                           if key in m.get(ref, {}) and key in m["autoinit_proxy"]}
              for ref in ("autoinit", "autoinit_lean") for key in ("init_tse", "init_cpu_tse")}
    own = {s: m["autoinit_proxy"]["search_cost"]["tse"] / m["autoinit"]["search_cost"]["tse"]
           for s, m in seeds.items() if m.get("autoinit", {}).get("applies")}
    metric = "test_loss" if lower else "test_acc"
    proxy = next(iter(seeds.values()))["autoinit_proxy"]["proxy"] if seeds else {}
    lines = [f"### {name}", "",
             f"proxy kwargs {PROXY[name]} ({proxy.get('parameters', 0):,} parameters; the model "
             f"{proxy.get('model_parameters', 0):,}, kwargs {result['model_kwargs']}); seeds "
             f"{sorted(seeds, key=int)}", ""]
    for (ref, key), values in ratios.items():
        if values:
            unit = "CPU" if key == "init_cpu_tse" else "wall"
            lines.append(f"cost ratio proxy search / {ref} (full model) in {unit} seconds per "
                         f"training step of the full model: {_spread(values)}")
    if own:
        lines.append(f"cost ratio by the searches' own TSE (their step clocks): {_spread(own)}")
    lines += ["", f"| method | seeds | {'test loss' if lower else 'test accuracy (%)'}, median "
              "[95 % CI] | search cost TSE, median | chosen |", "| --- | --- | --- | --- | --- |"]
    for method in (*COMPARED, best_fixed):
        row = summ.get(method)
        if not row or not row.get("applies"):
            continue
        med, lo, hi = row["metric"]
        chosen = [result["seeds"][s]["methods"][method].get("chosen", "") for s in sorted(
            result["seeds"], key=int) if method in result["seeds"][s]["methods"]]
        label = f"{method} (best fixed init)" if method == best_fixed else method
        lines.append(f"| {label} | {row['n']} | {med:.3f} [{lo:.3f}, {hi:.3f}] | "
                     f"{row['init_tse'][0]:.0f} | {', '.join(c for c in chosen if c) or '-'} |")
    paired = [seeds[s]["autoinit_proxy"][metric] - seeds[s]["autoinit"][metric]
              for s in seeds if seeds[s].get("autoinit", {}).get("applies")]
    if paired:
        ci = median_ci(paired)
        lines += ["", f"paired difference proxy - full on the same seeds ({metric}): median "
                  f"{ci[0]:+.3f} [{ci[1]:+.3f}, {ci[2]:+.3f}]"]
    full = summ["autoinit"]["metric"] if "autoinit" in summ else None
    prox = summ.get("autoinit_proxy", {}).get("metric")
    if full and prox:
        where = "inside" if full[1] <= prox[0] <= full[2] else (
            "better than" if (prox[0] < full[1]) == lower else "WORSE than")
        lines.append(f"proxy median {prox[0]:.3f} is {where} the full search's interval "
                     f"[{full[1]:.3f}, {full[2]:.3f}]")
    return [*lines, ""]


def _spread(ratios: dict[str, float]) -> str:
    mid = statistics.median(ratios.values())
    return (f"median {mid:.3f} (1/{1 / mid:.1f}), range {min(ratios.values()):.3f}-"
            f"{max(ratios.values()):.3f}; per seed "
            + ", ".join(f"{s}: {v:.3f}" for s, v in sorted(ratios.items(), key=lambda kv: int(kv[0]))))


def main(argv: list[str]) -> int:
    runs = Path(argv[0]) if argv else Path("docs/runs")
    for task in PROXY:
        path = runs / f"{task}.json"
        if path.exists():
            print("\n".join(task_rows(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
