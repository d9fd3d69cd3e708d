"""The wall-time cost of MLflow tracking: the same small search with tracking on and off.

Each setting runs once to warm up (imports, the store's first use) and then ``--repeats`` times,
interleaved; the medians are compared. Tracking goes to a SQLite store in a temporary folder, or
with ``--server`` to a local ``mlflow server`` over HTTP.

Usage:
    python scripts/bench_mlflow_overhead.py [--repeats 3] [--server] [--trials 30] [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoinit


def teacher_task(seed: int = 0, n: int = 2048, dim: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w1, w2 = torch.randn(dim, 64, generator=g), torch.randn(64, 4, generator=g)
    y = (torch.tanh(x @ w1 / dim**0.5) @ w2).argmax(1)
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True,
                      generator=torch.Generator().manual_seed(seed + 1))


def mlp(depth: int = 6, width: int = 128, seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Linear(32, width), nn.Tanh()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.Tanh()]
        return nn.Sequential(*layers, nn.Linear(width, 4))


def one_search(args: argparse.Namespace, tracking: dict) -> float:
    start = time.perf_counter()
    autoinit.fit(mlp(), teacher_task(), n_trials=args.trials, probe_steps=args.steps, **tracking)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--server", action="store_true", help="log over HTTP to a local server")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # steadier timings on a shared machine
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # stdout is the report
    with tempfile.TemporaryDirectory(prefix="autoinit-bench-") as tmp:
        server = None
        if args.server:
            from autoinit.integrations.testing import LocalMlflowServer

            server = LocalMlflowServer(Path(tmp) / "server").start()
            uri = server.url
        else:
            from mlflow import MlflowClient

            uri = f"sqlite:///{tmp}/mlflow.db"
            MlflowClient(uri).create_experiment("bench", artifact_location=Path(tmp).as_uri())
        on = {"tracking_uri": uri, "experiment": "bench", "require_tracking": True}
        off = {"mlflow": False}
        try:
            cold = {"on": one_search(args, on), "off": one_search(args, off)}
            times: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(args.repeats):
                times["off"].append(one_search(args, off))
                times["on"].append(one_search(args, on))
        finally:
            if server is not None:
                server.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    extra = med["on"] - med["off"]
    report = {
        "backend": "mlflow server (HTTP)" if args.server else "sqlite",
        "search": f"{args.trials} trials x {args.steps} probe steps, 6-layer width-128 tanh MLP",
        "seconds": times, "cold_first_call": cold, "median_on": med["on"], "median_off": med["off"],
        "overhead_seconds": extra, "overhead_vs_untracked": extra / med["off"],
        "share_of_tracked_wall_time": extra / med["on"],
    }
    print(json.dumps(report, indent=2))
    print(f"\nMLflow tracking ({report['backend']}): median {med['on']:.2f} s on vs {med['off']:.2f} s "
          f"off -> {extra:+.2f} s = {100 * extra / med['off']:+.1f}% of the untracked search "
          f"({100 * extra / med['on']:.1f}% of the tracked wall time)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
