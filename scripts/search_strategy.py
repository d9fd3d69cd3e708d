"""Compare stage-2 samplers: how much each improves on the best named candidate's probe score.

Every search runs the same named candidates (baselines and presets) and then ``--extra`` stage-2
trials with one strategy: ``flat`` (multivariate TPE over the whole space, the search before
stages), ``local`` (perturbations of the best trial), ``tpe`` or ``gp`` (fitted on the trials
that share the best candidate's choices, see :mod:`autoinit.refine`). Probes are deterministic
for a given scheme and seed, so the best named score is the same for every strategy of a seed.

    OMP_NUM_THREADS=1 python scripts/search_strategy.py --tasks residual_mlp post_ln_transformer \
        --seeds 0 1 2 --extra 12 --probe-steps 60 --out docs/search_strategy.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable

import optuna
import torch

import autoinit.study
from autoinit.optuna_setup import make_sampler
from autoinit.search import run_search
from autoinit.selection import Selection
from autoinit.study import named_candidates
from autoinit.tasks import get_task

STRATEGIES = ("flat", "local", "tpe", "gp")


def _sampler_factory(strategy: str) -> Callable[[int, bool], optuna.samplers.BaseSampler]:
    if strategy == "flat":
        return lambda seed, parallel: optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=5)
    return functools.partial(make_sampler, stage2=strategy)


def run_one(task_name: str, strategy: str, seed: int, extra: int, probe_steps: int) -> dict:
    task = get_task(task_name)
    torch.manual_seed(seed)
    model = task.build_model()
    train, val = task.loaders()
    autoinit.study.make_sampler = _sampler_factory(strategy)
    from autoinit.plan import ModelPlan
    from autoinit.space import SearchSpace
    named = len(named_candidates(ModelPlan.of(model, task.fit_options().get("groups", "role")),
                                 SearchSpace(), 1e-3))
    start = time.perf_counter()
    result = run_search(model, train, val_dataloader=val, n_trials=named + extra,
                        probe_steps=probe_steps, seed=seed, progress=False,
                        selection=Selection(top=1, seeds=1), **task.fit_options())
    trials = result.study.get_trials(deepcopy=False)
    values = [t.value for t in trials if t.value is not None and t.state.name == "COMPLETE"]
    best_named = min(t.value for t in trials if t.user_attrs.get("baseline")
                     and t.state.name == "COMPLETE")
    stage2 = [t.value for t in trials if not t.user_attrs.get("baseline")
              and t.state.name == "COMPLETE"]
    return {"task": task_name, "strategy": strategy, "seed": seed, "named": named,
            "best_named": best_named, "best_stage2": min(stage2, default=None),
            "best": min(values), "stage2_better": sum(v < best_named for v in stage2),
            "stage2_done": len(stage2), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["residual_mlp", "post_ln_transformer"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--extra", type=int, default=12, help="stage-2 trials after the named ones")
    parser.add_argument("--probe-steps", type=int, default=60)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in args.tasks:
        for seed in args.seeds:
            for strategy in args.strategies:
                rows.append(run_one(task, strategy, seed, args.extra, args.probe_steps))
                print(json.dumps(rows[-1]), flush=True)
    for task in args.tasks:
        for strategy in args.strategies:
            mine = [r for r in rows if r["task"] == task and r["strategy"] == strategy]
            gain = [(r["best_named"] - r["best"]) / abs(r["best_named"]) for r in mine]
            print(f"{task:22s} {strategy:6s} median gain over best named "
                  f"{100 * statistics.median(gain):6.2f} %  better trials "
                  f"{sum(r['stage2_better'] for r in mine)}/{sum(r['stage2_done'] for r in mine)}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
