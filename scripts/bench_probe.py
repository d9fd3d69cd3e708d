"""Probe throughput against a hand-written training loop on the same model and batches.

Runs both in one process, alternating, ``--repeats`` times, and reports the median steps per
second of each and their ratio (target: probe >= 0.95x the bare loop). The probe's figure
includes its held-out evaluations and divergence checks.

    python scripts/bench_probe.py                   # 32x256 ReLU MLP, batch 128, CPU
    python scripts/bench_probe.py --device cuda --bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.plan import ModelPlan
from autoinit.probe import ProbeConfig, ProbeData, run_probe


def mlp(depth: int, width: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(40, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def bare_loop(model: nn.Module, batches: list, steps: int, lr: float, device: str, bf16: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16)
    sync(device)
    start = time.perf_counter()
    for step in range(steps):
        x, y = batches[step % len(batches)]
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    sync(device)
    return steps / (time.perf_counter() - start)


def probe(model: nn.Module, data: ProbeData, config: ProbeConfig) -> float:
    sync(config.device)
    start = time.perf_counter()
    result = run_probe(model, data, config)
    sync(config.device)
    return result.steps / (time.perf_counter() - start)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 40, generator=g).to(args.device),
                torch.randint(0, 10, (args.batch,), generator=g).to(args.device)) for _ in range(20)]
    val = batches[:4]
    model = mlp(args.depth, args.width).to(args.device)
    scheme = ModelPlan.of(model).uniform("kaiming_normal")
    config = ProbeConfig(steps=args.steps, eval_every=max(1, args.steps // 4), device=args.device,
                         bf16=args.bf16, explode_factor=1e9)
    data = ProbeData(batches, val)
    bare_rates, probe_rates = [], []
    bare_loop(apply_scheme(model, scheme), batches, 10, 1e-3, args.device, args.bf16)  # warm-up
    for _ in range(args.repeats):
        bare_rates.append(bare_loop(apply_scheme(model, scheme), batches, args.steps, 1e-3,
                                    args.device, args.bf16))
        probe_rates.append(probe(apply_scheme(model, scheme), data, config))
    ratios = [p / b for p, b in zip(probe_rates, bare_rates, strict=True)]
    report = {
        "model": f"{args.depth}x{args.width} ReLU MLP", "batch": args.batch, "steps": args.steps,
        "device": args.device, "bf16": args.bf16, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "bare_steps_per_s_median": statistics.median(bare_rates),
        "probe_steps_per_s_median": statistics.median(probe_rates),
        "ratio_median": statistics.median(ratios), "ratios": ratios,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
