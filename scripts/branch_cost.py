"""Wall time of a 450-step probe with and without the rungs' cooldown branches (50, 150).

Three interleaved repeats of each on one task's seed-0 model with kaiming_normal, the medians'
ratio (the branches add ``round(0.15 * 50) + round(0.15 * 150) = 30`` steps, two copies of model
and optimizer state and two held-out evaluations).

Usage:
    OMP_NUM_THREADS=1 python scripts/branch_cost.py vgg_cnn,deep_relu_mlp
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rank_agreement import initialized, probe_data  # noqa: E402

from autoinit.probe import ProbeConfig, run_probe  # noqa: E402
from autoinit.tasks import get_task  # noqa: E402

PLAIN = ProbeConfig(steps=450, eval_every=450, cooldown=0.15, seed=0)
RUNGS = ProbeConfig(steps=450, eval_every=450, cooldown=0.15, seed=0, rungs=(50, 150, 450))


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    for name in argv[0].split(","):
        task = get_task(name)
        data = probe_data(task, 0, 450)
        times: dict[str, list[float]] = {"plain": [], "rungs": []}
        for _ in range(3):
            for key, config in (("plain", PLAIN), ("rungs", RUNGS)):
                model = initialized(task, 0, "kaiming_normal", 8)
                start = time.perf_counter()
                result = run_probe(model, data, config)
                times[key].append(time.perf_counter() - start)
        ratio = statistics.median(times["rungs"]) / statistics.median(times["plain"])
        print(f"{name}: plain {[round(t, 2) for t in times['plain']]} s, rungs "
              f"{[round(t, 2) for t in times['rungs']]} s, ratio of medians {ratio:.3f}, "
              f"branch steps {result.branch_steps}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
