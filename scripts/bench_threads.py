"""The README's main job with autoinit's defaults against the same job on one torch thread.

Runs ``autoinit search studies/deep_relu_mlp.toml`` (``--job search``) or ``autoinit compare
studies/deep_relu_mlp.toml --scheme <orthogonal> --steps 100 --seeds 2`` (``--job compare``) as
a user would (every default: SQLite storage and MLflow in the working folder, here a fresh
temporary one per run), alternating between the plain environment (autoinit picks the threads;
torch alone would take every core) and ``OMP_NUM_THREADS=1``, and reports the median wall time of
each, their ratio (target: defaults <= 1.0x one thread on a busy machine, within the noise), the
thread line autoinit printed, the load average around every run, and the longest time the piped
output stayed silent (target: <= 30 s).

    python scripts/bench_threads.py                      # 3 runs each
    python scripts/bench_threads.py --repeats 5 --out docs/bench_threads.json
    python scripts/bench_threads.py --job compare --repeats 4 --out docs/bench_threads_compare.json
    python scripts/bench_threads.py --n-trials 10 --no-mlflow   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "deep_relu_mlp.toml"


def orthogonal_scheme(folder: Path) -> Path:
    """The study's model under one orthogonal rule, as a scheme file for ``compare``."""
    sys.path.insert(0, str(ROOT))
    from autoinit.config import build_model, load_study
    from autoinit.plan import uniform_scheme

    path = folder / "orthogonal.json"
    path.write_text(uniform_scheme(build_model(load_study(STUDY)), "orthogonal").to_json())
    return path


def one_run(one_thread: bool, extra: list[str], job: str = "search") -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    with tempfile.TemporaryDirectory(prefix="autoinit-bench-threads-") as folder:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        errors = Path(folder) / "stderr.txt"
        with errors.open("w") as err_file:
            proc = subprocess.Popen([sys.executable, "-m", "autoinit", job, str(STUDY),
                                     *extra], cwd=folder, env=env, stdout=subprocess.PIPE,
                                    stderr=err_file, text=True)
            stamps, lines = [], []
            for line in proc.stdout:  # a pipe, as in CI: when does each line arrive?
                stamps.append(time.perf_counter() - start)
                lines.append(line)
            code = proc.wait()
        wall = time.perf_counter() - start
        err = errors.read_text()
    if code != 0:
        raise SystemExit(f"search failed ({code}): {err[-2000:]}")
    out = "".join(lines)
    threads = re.search(r"^threads: .*$", out, re.M)
    cost = re.search(r"^cost: .*$", out, re.M)
    gaps = [b - a for a, b in zip([0.0, *stamps], [*stamps, wall], strict=True)]
    return {"setting": "OMP_NUM_THREADS=1" if one_thread else "defaults", "wall_s": wall,
            "load_before": load, "load_after": os.getloadavg()[0],
            "longest_silence_s": max(gaps), "threads_line": threads.group(0) if threads else None,
            "cost_line": cost.group(0) if cost else None}


def paired_ratios(runs: list[dict]) -> list[float]:
    """Defaults over one thread, per pair of runs made back to back (the load drifts less
    within a pair than across the whole benchmark).

    >>> paired_ratios([{"setting": "defaults", "wall_s": 2.0},
    ...                {"setting": "OMP_NUM_THREADS=1", "wall_s": 4.0}])
    [0.5]
    """
    ratios = []
    for a, b in zip(runs[::2], runs[1::2], strict=True):
        walls = {a["setting"]: a["wall_s"], b["setting"]: b["wall_s"]}
        ratios.append(walls["defaults"] / walls["OMP_NUM_THREADS=1"])
    return ratios


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """95 % bootstrap interval of the median (numpy's generator, seed 0).

    >>> median_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    import numpy as np

    rng = np.random.default_rng(0)
    draws = rng.choice(np.asarray(values), size=(resamples, len(values)))
    low, high = np.quantile(np.median(draws, axis=1), [0.025, 0.975])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", choices=("search", "compare"), default="search")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--n-trials", type=int, help="passed to the search (default: the study's)")
    p.add_argument("--no-mlflow", action="store_true", help="passed to the search")
    p.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    extra = (["--n-trials", str(args.n_trials)] if args.n_trials else []) + (
        ["--no-mlflow"] if args.no_mlflow else [])
    holder = tempfile.TemporaryDirectory(prefix="autoinit-bench-threads-scheme-")
    if args.job == "compare":
        extra = ["--scheme", str(orthogonal_scheme(Path(holder.name))), "--steps", "100",
                 "--seeds", "2"] + (["--no-mlflow"] if args.no_mlflow else [])
    runs = []
    for i in range(args.repeats):
        for one_thread in ((False, True) if i % 2 == 0 else (True, False)):
            runs.append(one_run(one_thread, extra, args.job))
            r = runs[-1]
            print(f"{r['setting']:<18} {r['wall_s']:7.1f} s  load {r['load_before']:.1f} -> "
                  f"{r['load_after']:.1f}  longest silence {r['longest_silence_s']:.1f} s  "
                  f"{r['threads_line']}", flush=True)
    median = {s: statistics.median(r["wall_s"] for r in runs if r["setting"] == s)
              for s in ("defaults", "OMP_NUM_THREADS=1")}
    ratio = median["defaults"] / median["OMP_NUM_THREADS=1"]
    paired = paired_ratios(runs)
    low, high = median_interval(paired)
    print(f"median wall: defaults {median['defaults']:.1f} s, OMP_NUM_THREADS=1 "
          f"{median['OMP_NUM_THREADS=1']:.1f} s; ratio {ratio:.2f} (target <= 1.0)")
    print(f"paired ratios (each pair run back to back): median {statistics.median(paired):.3f} "
          f"[{low:.3f}, {high:.3f}] (95 % bootstrap), defaults slower in "
          f"{sum(r > 1 for r in paired)} of {len(paired)} pairs")
    if args.out:
        args.out.write_text(json.dumps({
            "command": f"python scripts/bench_threads.py {' '.join(argv or sys.argv[1:])}".strip(),
            "job": args.job, "study": "studies/deep_relu_mlp.toml", "extra_flags": extra, "runs": runs,
            "median_wall_s": median, "ratio": ratio, "paired_ratios": paired,
            "paired_ratio_median": statistics.median(paired), "paired_ratio_interval": [low, high],
            "cpu_count": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
