"""How the named candidates rank after probes of different lengths: the short-horizon bias that a
budgeted search's short probes meet (docs/search_cost.md).

For each seed and probe length, every named candidate of the task (the baselines and presets a
search queues) is probed once, as a search would, and the held-out losses are printed best first.

Run:
    OMP_NUM_THREADS=1 python scripts/probe_horizon.py deep_tanh_mlp --seeds 0,1 --lengths 10,20,40
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from benchmark import TaskData, build  # noqa: E402

from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.search import Selection, run_search  # noqa: E402
from autoinit.space import SearchSpace  # noqa: E402
from autoinit.study import named_candidates  # noqa: E402
from autoinit.tasks import get_task  # noqa: E402
from autoinit.threads import compute_threads  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("task")
    p.add_argument("--seeds", default="0")
    p.add_argument("--lengths", default="10,20,40")
    args = p.parse_args(argv)
    task = get_task(args.task)
    with compute_threads(1):
        for seed in map(int, args.seeds.split(",")):
            data = TaskData(task, seed, {})
            train, val = data.loaders()
            named = named_candidates(ModelPlan.of(build(task, seed)), SearchSpace(), data.lr)
            for steps in map(int, args.lengths.split(",")):
                result = run_search(build(task, seed), train, val_dataloader=val, lr=data.lr,
                                    seed=seed, device="cpu", progress=False, n_trials=len(named),
                                    probe_steps=steps, eval_every=steps,
                                    selection=Selection(top=0, seeds=0))
                ranked = sorted(result.baselines.items(), key=lambda kv: kv[1])
                print(f"{args.task} seed {seed} {steps:>4} steps: "
                      + " ".join(f"{k} {v:.3f}" for k, v in ranked), flush=True)
    return 0


if __name__ == "__main__":
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # the one-time import, outside
    raise SystemExit(main())
