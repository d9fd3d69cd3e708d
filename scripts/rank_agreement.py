"""How well probes rank the fixed inits the way full trainings do: today's probe against the
annealed, rung-scored probe.

For each task and seed, every fixed init of ``scripts/benchmark.py`` (the 5 baselines, and LSUV
with ``--lsuv``) initializes the benchmark's own model for that seed and is probed exactly as a
search probes it (the task's training and validation loaders, 4 held-out batches, Adam at the
benchmark's learning rate, the seed as the probe seed), twice:

- ``old``: today's probe, a constant rate, its held-out loss at each length in ``--lengths`` but
  the longest;
- ``new``: the learning-rate cooldown (``--cooldown``), scored at each length as a rung (a
  cooled-down branch; the longest cools down in the run itself), as a search with ``rungs``
  scores it.

Both come from one run: a rung's cooldown branch leaves the run itself untouched, so the run's
plain evaluations before its own cooldown are exactly today's probe of that length. With
``--cooldown 0`` the run is today's probe throughout, the longest length included (``old``).

Each ranking is compared with the ranking of the same inits by the full trainings stored in
``docs/runs/<task>.json`` (the final test loss, and the task's test metric): Spearman's rho over
the inits, and whether the probe's best init is the full training's best. Results (every score)
go to ``--out`` as JSON and a Markdown table is printed.

``--lr-factor`` probes at a multiple of the full trainings' learning rate (the task's rate of
``scripts/benchmark.py``), to see whether a faster probe ranks like a longer one.

Usage:
    OMP_NUM_THREADS=1 python scripts/rank_agreement.py --tasks deep_relu_mlp --seeds 0,1 \\
        --out /tmp/rank.json
    python scripts/rank_agreement.py --report /tmp/rank.json      # the table again
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import FIXED, TaskData, build, task_lr  # noqa: E402

from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.batches import fetch_batches, make_loss  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.probe import ProbeConfig, ProbeData, run_probe  # noqa: E402
from autoinit.rungs import spearman  # noqa: E402
from autoinit.tasks import Task, get_task  # noqa: E402

VAL_BATCHES = 4  # a search's default val_batches


def probe_data(task: Task, seed: int, steps: int) -> ProbeData:
    """The batches a search on this task and seed probes on (run_search with val_dataloader)."""
    train, val = task.loaders(split="val", seed=seed)
    opts = task.fit_options()
    return ProbeData(fetch_batches(train, steps, "cpu", "train"),
                     fetch_batches(val, VAL_BATCHES, "cpu", "val"), make_loss(opts.get("loss_fn")))


def initialized(task: Task, seed: int, method: str, lsuv_batches: int) -> torch.nn.Module:
    """The benchmark's model for ``seed`` with ``method``'s init (as its full training had)."""
    model = build(task, seed)
    if method == "lsuv":
        from baselines import BASELINES
        data = TaskData(task, seed)
        BASELINES["lsuv"](model, data.batches(lsuv_batches), make_loss(None), seed=seed,
                          budget=None)
    elif method != "pytorch_default":
        apply_scheme(model, ModelPlan.of(model).uniform(method, seed=seed))
    return model


def probe_scores(task: Task, seed: int, method: str, lengths: list[int], cooldown: float,
                 lsuv_batches: int, lr_factor: float) -> dict:
    steps = max(lengths)
    data = probe_data(task, seed, steps)
    new = run_probe(initialized(task, seed, method, lsuv_batches), data,
                    ProbeConfig(steps=steps, eval_every=math.gcd(*lengths),
                                lr=task_lr(task.name) * lr_factor, seed=seed, cooldown=cooldown,
                                rungs=tuple(sorted(lengths))))
    curve, rungs = dict(new.curve), dict(new.rung_scores)
    return {"old": {str(n): curve.get(n, math.inf) for n in lengths if n < steps or not cooldown},
            "new": {str(n): rungs.get(n, math.inf) for n in lengths},
            "seconds": new.seconds, "branch_steps": new.branch_steps}


def full_ranking(task: str, seed: int, methods: list[str]) -> dict[str, dict[str, float]]:
    run = json.loads((ROOT / "docs" / "runs" / f"{task}.json").read_text())["seeds"][str(seed)]
    out = {}
    for m in methods:
        rec = run["methods"].get(m, {})
        if "test_loss" not in rec:
            continue
        acc = rec.get("test_acc")
        # lower is better for both: the loss, and the metric (minus the accuracy where there is one)
        out[m] = {"loss": rec["test_loss"], "metric": -acc if acc is not None else rec["test_loss"]}
    return out


def agreement(records: dict) -> list[dict]:
    """One row per task, probe and length: mean rho over seeds and top-1 matches."""
    rows = []
    for task, seeds in records.items():
        for kind in ("old", "new"):
            lengths = sorted({int(n) for s in seeds.values() for p in s["probes"].values()
                              for n in p[kind]})
            for n in lengths:
                rho_loss, rho_metric, top1, gap = [], [], 0, []
                for s in seeds.values():
                    methods = sorted(set(s["full"]) & set(s["probes"]))
                    probe = [_finite(s["probes"][m][kind][str(n)]) for m in methods]
                    full = [s["full"][m]["loss"] for m in methods]
                    metric = [s["full"][m]["metric"] for m in methods]
                    rho_loss.append(spearman(probe, full))
                    rho_metric.append(spearman(probe, metric))
                    # tied picks (identical inits, or every probe diverged) must all be best
                    best = min(metric)
                    picks = [i for i, v in enumerate(probe) if v == min(probe)]
                    top1 += all(metric[i] == best for i in picks)
                    gap.append(statistics.fmean(metric[i] for i in picks) - best)
                rows.append({"task": task, "probe": kind, "steps": n, "seeds": len(seeds),
                             "rho_loss": _mean(rho_loss), "rho_metric": _mean(rho_metric),
                             "top1": top1, "gap": statistics.fmean(gap)})
    return rows


def _finite(v: float) -> float:
    return v if math.isfinite(v) else 1e30  # a diverged probe ranks last


def _mean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else math.nan


def overall(records: dict) -> str:
    """Per probe and length: the mean over tasks of the per-task means."""
    rows = agreement(records)
    keys = sorted({(r["probe"], r["steps"]) for r in rows}, key=lambda k: (k[0] != "old", k[1]))
    lines = ["| probe | steps | tasks | mean ρ vs test loss | mean ρ vs test metric | "
             "best init found |", "|---|---|---|---|---|---|"]
    for kind, n in keys:
        rs = [r for r in rows if (r["probe"], r["steps"]) == (kind, n)]
        lines.append(f"| {kind} | {n} | {len(rs)} | {_mean([r['rho_loss'] for r in rs]):.2f} | "
                     f"{_mean([r['rho_metric'] for r in rs]):.2f} | "
                     f"{sum(r['top1'] for r in rs)}/{sum(r['seeds'] for r in rs)} |")
    return "\n".join(lines)


def table(records: dict) -> str:
    lines = ["| task | probe | steps | seeds | mean ρ vs test loss | mean ρ vs test metric | "
             "best init = full training's best | its test metric behind the best |",
             "|---|---|---|---|---|---|---|---|"]
    for r in agreement(records):
        lines.append(f"| {r['task']} | {r['probe']} | {r['steps']} | {r['seeds']} | "
                     f"{r['rho_loss']:.2f} | {r['rho_metric']:.2f} | {r['top1']}/{r['seeds']} | "
                     f"{r['gap']:.3g} |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default="deep_relu_mlp,residual_mlp,vgg_cnn,rnn_adding")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds held in docs/runs")
    p.add_argument("--lengths", default="50,100,150,450", help="probe lengths / rung ends")
    p.add_argument("--cooldown", type=float, default=0.15)
    p.add_argument("--lr-factor", type=float, default=1.0,
                   help="probe at this multiple of the learning rate of the full trainings")
    p.add_argument("--lsuv", action="store_true", help="also probe LSUV (the benchmark's)")
    p.add_argument("--lsuv-batches", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("/tmp/rank_agreement.json"))
    p.add_argument("--report", type=Path, help="print the table of an earlier --out and stop")
    p.add_argument("--resume", action="store_true", help="keep the task/seeds --out holds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report:
        records = json.loads(args.report.read_text())["records"]
        print(table(records) + "\n\n" + overall(records))
        return 0
    torch.set_num_threads(1)
    lengths = [int(n) for n in args.lengths.split(",")]
    methods = list(FIXED) + (["lsuv"] if args.lsuv else [])
    records: dict = json.loads(args.out.read_text())["records"] \
        if args.resume and args.out.exists() else {}
    for name in args.tasks.split(","):
        task = get_task(name)
        for seed in (int(s) for s in args.seeds.split(",")):
            if str(seed) in records.get(name, {}):
                continue
            full = full_ranking(name, seed, methods)
            probes = {m: probe_scores(task, seed, m, lengths, args.cooldown, args.lsuv_batches,
                                      args.lr_factor)
                      for m in full}
            records.setdefault(name, {})[str(seed)] = {"full": full, "probes": probes}
            args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)},
                                            "records": records}, indent=1, default=str))
            print(f"{name} seed {seed}: done", flush=True)
    print(table(records) + "\n\n" + overall(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
