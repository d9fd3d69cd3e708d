"""Population probes against sequential probes: candidate-steps per second, side by side.

Part 1 (``mlp``): a 20-layer ReLU MLP (batch 128) at each ``--widths`` and ``--sizes``: K
candidates trained as sequential probes (:func:`autoinit.probe.run_probe`, one after another)
and as one population (:func:`autoinit.population.run_population`), alternating, ``--repeats``
times; the figure is the median of K x steps / seconds for each and their ratio (target:
>= 1.5x at K = 8 on a width <= 64 MLP on CPU).

Part 2 (``tasks``): on every benchmark task (:mod:`autoinit.tasks`, built as
``scripts/benchmark.py`` builds them), the automatic choice a search makes
(:func:`autoinit.population.choose_population`, for the default selection round), then the
selection round's probes (its candidates x 2 seeds) timed with the chosen size against one at a
time, alternating (target: the choice is never slower than sequential: ratio >= 1 within the
noise). Where the choice is "off" both are the same code path and the ratio is 1 by
construction: after a measurement, one round of populations is timed anyway and shown beside
it (was "off" right?); where the model cannot be stacked, nothing more is run.

    python scripts/bench_population.py --json docs/bench_population.json
    python scripts/bench_population.py --parts mlp --widths 32 --sizes 8 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_probe import mlp  # noqa: E402
from benchmark import TaskData, build  # noqa: E402

from autoinit.batches import make_loss  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.population import run_population  # noqa: E402
from autoinit.population_choice import choose_population  # noqa: E402
from autoinit.probe import ProbeConfig, ProbeData, bare_step, run_probe  # noqa: E402
from autoinit.selection import Selection  # noqa: E402
from autoinit.tasks import get_task, list_tasks  # noqa: E402
from autoinit.threads import compute_threads  # noqa: E402


def members(model: nn.Module, k: int) -> list[nn.Module]:
    """``k`` copies of ``model``, each with its weights scaled a little differently."""
    out = []
    for i in range(k):
        member = copy.deepcopy(model)
        with torch.no_grad():
            for p in member.parameters():
                p.mul_(1.0 + 0.02 * i)
        out.append(member)
    return out


def side_by_side(model: nn.Module, data: ProbeData, configs: list[ProbeConfig], size: int,
                 repeats: int, warm_up: bool = True) -> dict:
    """Median candidate-steps/s of sequential probes and of populations of ``size`` (with
    ``warm_up``, a first round is run and dropped)."""
    k, steps = len(configs), configs[0].steps
    seq, pop, runs = [], [], []
    for _ in range(repeats + warm_up):
        group = members(model, k)
        start = time.perf_counter()
        for member, config in zip(group, configs, strict=True):
            run_probe(member, data, config)
        seq.append(time.perf_counter() - start)
        group = members(model, k)
        start = time.perf_counter()
        runs.append(run_population(group, data, configs, size=size))
        pop.append(time.perf_counter() - start)
    seq, pop = seq[warm_up:], pop[warm_up:]
    seq_rate = k * steps / statistics.median(seq)
    pop_rate = k * steps / statistics.median(pop)
    return {"sequential_cand_steps_s": seq_rate, "population_cand_steps_s": pop_rate,
            "ratio": pop_rate / seq_rate, "fallback": runs[0].fallback,
            "sequential_s": seq, "population_s": pop}


def part_mlp(args: argparse.Namespace) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(128, 40, generator=g), torch.randint(0, 10, (128,), generator=g))
               for _ in range(10)]
    data = ProbeData(batches, batches[:2])
    out = []
    for width in args.widths:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = mlp(20, width)
        for k in args.sizes:
            config = ProbeConfig(steps=args.steps, eval_every=args.steps)
            row = {"width": width, "depth": 20, "K": k, "steps": args.steps,
                   **side_by_side(model, data, [config] * k, k, args.repeats)}
            print(f"mlp 20x{width} K={k}: sequential {row['sequential_cand_steps_s']:.0f}, "
                  f"population {row['population_cand_steps_s']:.0f} candidate-steps/s "
                  f"= {row['ratio']:.2f}x", flush=True)
            out.append(row)
    return out


def part_tasks(args: argparse.Namespace) -> list[dict]:
    out = []
    selection = Selection()
    for name in args.tasks:
        task = get_task(name)
        data_ = TaskData(task, 0)
        model = build(task, 0)
        batches = data_.batches(args.task_steps)
        loss = None if data_.loop is not None else make_loss(None)
        data = ProbeData(batches, [data_.val], loss, data_.loop)
        config = ProbeConfig(steps=args.task_steps, eval_every=args.task_steps // 2, lr=data_.lr)
        per_seed = selection.members(ModelPlan.of(model).model_init)
        start = time.perf_counter()
        choice = choose_population(copy.deepcopy(model), data, config, None,
                                   per_seed * selection.seeds, per_seed,
                                   bare_step(copy.deepcopy(model), data, config))
        choose_s = time.perf_counter() - start
        configs = [replace(config, seed=1 + i % selection.seeds)
                   for i in range(per_seed * selection.seeds)]
        row = {"task": name, "choice": choice.describe(), "size": choice.size,
               "choice_ratio": choice.ratio, "choice_seconds": choose_s,
               "members": len(configs), "steps": args.task_steps}
        if choice.size == 1 and choice.reason != "measured":  # cannot stack: sequential itself
            row.update(chosen_vs_sequential=1.0, population_ratio_at_size=None)
            print(f"{name}: {row['choice']}", flush=True)
            out.append(row)
            continue
        on = choice.size > 1  # off: one round of what a population would have given
        size = choice.size if on else len(configs)
        measured = side_by_side(model, data, configs, size, args.task_repeats if on else 1, on)
        row.update(population_ratio_at_size=measured["ratio"], measured_size=size,
                   sequential_s=measured["sequential_s"], population_s=measured["population_s"],
                   chosen_vs_sequential=measured["ratio"] if choice.size > 1 else 1.0)
        print(f"{name}: {row['choice']}; chosen/sequential {row['chosen_vs_sequential']:.2f}x "
              f"(a population of {size}: {measured['ratio']:.2f}x)", flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="mlp,tasks")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--steps", type=int, default=20, help="probe steps in part 1")
    parser.add_argument("--task-steps", type=int, default=24,
                        help="probe steps in part 2 (evaluated at half and at the end)")
    parser.add_argument("--tasks", nargs="+", default=list_tasks())
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (after a warm-up)")
    parser.add_argument("--task-repeats", type=int, default=2, help="timed rounds in part 2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()
    record = {"command": "python " + " ".join(sys.argv), "threads": args.threads,
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "uptime_before": _uptime(), "loadavg_before": load_before,
              "device": "cpu (no GPU was lent: the GPU figures do not exist)"}
    with compute_threads(args.threads):
        parts = args.parts.split(",")
        if "mlp" in parts:
            record["mlp"] = part_mlp(args)
        if "tasks" in parts:
            record["tasks"] = part_tasks(args)
    record["uptime_after"] = _uptime()
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


if __name__ == "__main__":
    main()
