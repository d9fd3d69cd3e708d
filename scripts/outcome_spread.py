"""How much does one training of one scheme vary over weight draws and data orders?

The benchmark trains each method once per seed: one weight draw, one order of the training
batches. On a task whose trainings are unstable (a deep residual net without normalization at a
high learning rate) that single run can sit far from the scheme's typical outcome, and 5 seeds
of it decide "clearly better". This script trains one stored scheme (a method's ``scheme`` in
``docs/runs/<task>.json``, or a scheme file) with the benchmark's own training loop, on one
seed's data, from several weight draws (the scheme's seed) and batch orders (the seed of the
training stream), and prints each run's final validation loss and test metric.

    python scripts/outcome_spread.py docs/runs resnet_nonorm 1 autoinit --draws 1,2,3,4 --orders 1,11
    python scripts/outcome_spread.py docs/runs resnet_nonorm 1 4:autoinit   # seed 4's scheme on seed 1's data
    python scripts/outcome_spread.py docs/runs resnet_nonorm 1 my_scheme.json

The draw equal to the data seed and the order equal to the data seed reproduce the benchmark's
own run of that scheme on that seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark as bench  # noqa: E402

from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.scheme import InitScheme  # noqa: E402


def stored_scheme(runs: Path, task: str, seed: int, source: str) -> InitScheme:
    """A scheme file (``*.json``), or ``[seed:]method``: that method's scheme in the task's runs
    (of ``seed`` unless another is named)."""
    if source.endswith(".json"):
        return InitScheme.from_dict(json.loads(Path(source).read_text()))
    other, _, method = source.rpartition(":")
    record = json.loads((runs / f"{task}.json").read_text())
    rec = record["seeds"][other or str(seed)]["methods"][method]
    if "scheme" not in rec:
        raise SystemExit(f"{task} seed {other or seed} {method}: no scheme stored in its record")
    return InitScheme.from_dict(rec["scheme"])


def spread(task_name: str, seed: int, scheme: InitScheme, draws: list[int], orders: list[int],
           steps: int | None = None) -> list[dict]:
    """One training per (order, draw): the final validation loss and the test report."""
    task = bench.get_task(task_name)
    data = bench.TaskData(task, seed)
    steps = steps or bench.FULL_STEPS[task_name]
    out = []
    for order in orders:
        batches = bench.batch_stream(data.train_tensors, data.batch_size, order, steps)
        for draw in draws:
            model = apply_scheme(bench.build(task, seed), scheme.with_seed(draw))
            res = bench.train(model, batches, data.val, data.lr, max(1, steps // 30), seed, data.loop)
            test = bench.final_report(model, data)
            out.append({"order": order, "draw": draw, "final_val_loss": res["curve"][-1][1],
                        "test_loss": test["loss"], "test_acc": test["acc"]})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", type=Path)
    p.add_argument("task")
    p.add_argument("seed", type=int, help="the seed whose data (splits, model build) is used")
    p.add_argument("scheme", help="a scheme file, or [seed:]method in the task's runs")
    p.add_argument("--draws", default="1,2,3,4", help="the scheme's seeds (weight draws)")
    p.add_argument("--orders", default="1,11", help="seeds of the training batches' order")
    p.add_argument("--steps", type=int, default=None, help="default: the task's training length")
    args = p.parse_args()
    torch.set_num_threads(1)
    scheme = stored_scheme(args.runs, args.task, args.seed, args.scheme)
    rows = spread(args.task, args.seed, scheme, [int(x) for x in args.draws.split(",")],
                  [int(x) for x in args.orders.split(",")], args.steps)
    metric = "test_acc" if rows[0]["test_acc"] is not None else "test_loss"
    for r in rows:
        print(f"order {r['order']} draw {r['draw']}: final validation loss "
              f"{r['final_val_loss']:.4f}, {metric} {r[metric]:.4f}")
    values = [r[metric] for r in rows]
    print(f"{metric}: median {statistics.median(values):.4f}, range [{min(values):.4f}, "
          f"{max(values):.4f}] over {len(values)} runs")


if __name__ == "__main__":
    main()
