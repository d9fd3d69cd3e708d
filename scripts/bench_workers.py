"""Trials per hour with 1 and 2 local worker processes, and with 2 workers on PostgreSQL.

Same model, data, budget and seeds in every setting; the machine's cores are shared out
(1 worker: all threads; 2 workers: half each). Throughput is measured over the trial
phase (first trial start to last trial end, from the study's own timestamps), so the selection
round and start-up are left out. Also runs the fault injection: 2 workers on PostgreSQL, one
SIGKILLed mid-trial, and counts trials started, killed, retried and completed.

    python scripts/bench_workers.py --n-trials 24 --probe-steps 60 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from autoinit.testing import temporary_postgres

WORKER = str(Path(__file__).resolve().parents[1] / "tests" / "distributed_worker.py")
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def per_hour(study: optuna.Study) -> tuple[float, float]:
    """Finished trials and probe steps per hour over the trial phase. Steps are the fairer rate:
    pruning differs between runs (the samplers see different histories), and a pruned trial is
    short."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.state in DONE]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    hours = (end - start).total_seconds() / 3600
    return len(trials) / hours, sum(t.user_attrs.get("probe_steps", 0) for t in trials) / hours


def run_workers(url: str, name: str, n_trials: int, steps: int, workers: int,
                kill_after: float | None = None) -> optuna.Study:
    threads = str(max(1, (os.cpu_count() or 1) // workers))  # the machine's cores, shared out
    env = {**os.environ, "OMP_NUM_THREADS": threads, "WORKER_THREADS": threads,
           "AUTOINIT_HEARTBEAT_INTERVAL": "1", "AUTOINIT_GRACE_PERIOD": "3"}
    procs = [subprocess.Popen([sys.executable, WORKER, url, name, str(n_trials), str(steps)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(workers)]
    if kill_after is not None:  # once both workers run a trial, and kill_after seconds passed
        time.sleep(kill_after)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _both_running(url, name):
            time.sleep(0.2)
        procs[0].send_signal(signal.SIGKILL)
    for p in procs:
        p.communicate()
    return optuna.load_study(study_name=name, storage=url)


def _both_running(url: str, name: str) -> bool:
    try:
        trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    except KeyError:
        return False
    return sum(t.state == TrialState.RUNNING for t in trials) >= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=24)
    parser.add_argument("--probe-steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    labels = ("1 local worker", "2 local workers", "2 workers on PostgreSQL")
    rates: dict[str, list[float]] = {k: [] for k in labels}
    steps: dict[str, list[float]] = {k: [] for k in labels}
    faults = {}
    with temporary_postgres() as pg:
        for r in range(args.repeats):
            folder = Path(tempfile.mkdtemp(prefix="autoinit-bench-"))
            for label, url, workers in (
                ("1 local worker", f"sqlite:///{folder / 'one.db'}", 1),
                ("2 local workers", f"sqlite:///{folder / 'two.db'}", 2),
                ("2 workers on PostgreSQL", pg, 2),
            ):
                study = run_workers(url, f"bench-{r}", args.n_trials, args.probe_steps, workers)
                trials, probe_steps = per_hour(study)
                rates[label].append(trials)
                steps[label].append(probe_steps)
                print(f"repeat {r}: {label}: {trials:.0f} trials/hour, {probe_steps:.0f} probe "
                      "steps/hour", flush=True)
        study = run_workers(pg, "faults", args.n_trials, args.probe_steps, 2, kill_after=4.0)
        trials = study.get_trials(deepcopy=False)
        faults = {
            "trials_started": len([t for t in trials if t.state != TrialState.WAITING]),
            "killed_then_failed": sum(t.state == TrialState.FAIL for t in trials),
            "retried": sum("failed_trial" in t.system_attrs for t in trials),
            "complete_or_pruned": sum(t.state in DONE for t in trials),
            "asked_for": args.n_trials,
        }
    medians = {k: statistics.median(v) for k, v in rates.items()}
    step_medians = {k: statistics.median(v) for k, v in steps.items()}
    one, one_steps = medians["1 local worker"], step_medians["1 local worker"]
    report = {
        "trials_per_hour_median": medians, "all": rates,
        "probe_steps_per_hour_median": step_medians, "all_steps": steps,
        "speedup_2_local": medians["2 local workers"] / one,
        "speedup_2_postgres": medians["2 workers on PostgreSQL"] / one,
        "step_speedup_2_local": step_medians["2 local workers"] / one_steps,
        "step_speedup_2_postgres": step_medians["2 workers on PostgreSQL"] / one_steps,
        "faults": faults, "n_trials": args.n_trials, "probe_steps": args.probe_steps,
        "torch": torch.__version__, "optuna": optuna.__version__, "cpus": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
