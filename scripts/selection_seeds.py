"""Does the selection round's further seeds change what a search hands back, and for the better?

For each task and seed: autoinit's default search with the benchmark's settings (1 thread); the
choice its selection round made (``after``) and the one the round's first
``Selection().seeds`` re-runs make alone (``before``: the round without further seeds,
reconstructed from the same re-runs, so both see the same trials and probes). Where the two
differ, both schemes are trained with the benchmark's own loop (:func:`outcome_spread.spread`)
on that seed's data and batch order, from the seed's own weight draw (the benchmark's run) and
from further draws. One JSON record per task and seed; ``--report`` prints them as a table.

    python scripts/selection_seeds.py --tasks deep_relu_mlp,residual_mlp --seeds 0,1,2 --out /tmp/sel
    python scripts/selection_seeds.py --out /tmp/sel --report

``before`` is exact except where the round left out a challenger whose probe learned nothing: the
reconstruction cannot re-run it, and it is counted as not chosen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402
from outcome_spread import spread  # noqa: E402

from autoinit.result import Candidate  # noqa: E402
from autoinit.search import run_search  # noqa: E402
from autoinit.selection import Selection, choose  # noqa: E402


def first_seeds_choice(candidates: list[Candidate], selection: Selection) -> tuple[str, str]:
    """The name the round would have chosen from its first ``selection.seeds`` re-runs, and why.

    Example:
        >>> from autoinit.plan import uniform_scheme
        >>> import torch.nn as nn
        >>> s = uniform_scheme(nn.Linear(2, 2), "orthogonal")
        >>> cands = [Candidate("lsuv", 0, 1.0, [1.0, 0.6, 1.2, 1.2], s),
        ...          Candidate("search #3", 3, 0.9, [0.7, 0.7, 0.7, 0.72], s)]
        >>> first_seeds_choice(cands, Selection())[0]
        'lsuv'
    """
    first = [Candidate(c.name, c.trial_number, c.search_score, c.scores[:selection.seeds], c.scheme)
             for c in candidates]
    chosen, reason = choose(first, True, selection)
    return chosen.name, reason


def one(task_name: str, seed: int, draws: int) -> dict:
    task = bench.get_task(task_name)
    data = bench.TaskData(task, seed)
    train_loader, val_loader = data.loaders()
    start = time.perf_counter()
    result = run_search(bench.build(task, seed), train_loader, val_dataloader=val_loader,
                        lr=data.lr, seed=seed, device="cpu", threads=1, progress=False,
                        **task.fit_options())
    before, why_before = first_seeds_choice(result.candidates, Selection())
    rec = {"task": task_name, "seed": seed, "search_seconds": time.perf_counter() - start,
           "after": result.chosen, "reason": result.reason, "before": before,
           "reason_before": why_before, "selection_steps": result.cost.selection_steps,
           "R": result.cost.ratio(bench.FULL_STEPS[task_name]),
           "finalists": [[c.name, c.search_score, c.scores] for c in result.candidates]}
    if before != result.chosen:
        schemes = {c.name: c.scheme for c in result.candidates}
        rec["trained"] = {name: spread(task_name, seed, schemes[name],
                                       [seed + 101 * k for k in range(draws)], [seed])
                          for name in (before, result.chosen)}
    return rec


def report(out: Path) -> None:
    print("| task | seed | before → after | selection steps | final val loss before / after "
          "(draws) | test metric before / after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in sorted(out.glob("*.json")):
        rec = json.loads(path.read_text())
        runs = rec.get("trained")
        vals = metric = "same choice"
        if runs:
            b, a = runs[rec["before"]], runs[rec["after"]]
            vals = "; ".join(f"{x['final_val_loss']:.4f} / {y['final_val_loss']:.4f}"
                             for x, y in zip(b, a, strict=True))
            key = "test_acc" if b[0].get("test_acc") is not None else "test_loss"
            metric = "; ".join(f"{x[key]:.4g} / {y[key]:.4g}"
                               for x, y in zip(b, a, strict=True)) + f" ({key})"
        print(f"| {rec['task']} | {rec['seed']} | {rec['before']} → {rec['after']} | "
              f"{rec['selection_steps']} | {vals} | {metric} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="deep_relu_mlp")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--draws", type=int, default=3, help="weight draws per trained choice")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--report", action="store_true", help="print the records in --out and stop")
    args = p.parse_args()
    if args.report:
        report(args.out)
        return
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for task_name in args.tasks.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            path = args.out / f"{task_name}_{seed}.json"
            if path.exists():  # a rerun resumes
                continue
            rec = one(task_name, seed, args.draws)
            path.write_text(json.dumps(rec, indent=1, default=str))
            print(f"{task_name} {seed}: {rec['before']} -> {rec['after']} "
                  f"({rec['search_seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
