"""Cost of each baseline in train-step equivalents (TSE) on small models, measured in one run.

TSE = the baseline's wall time ÷ the time of one bare Adam training step (forward, backward,
step) of the same model, batch size and threads, timed just before it; the median of
``--repeats`` such ratios. The data
methods run on a plain ReLU MLP, Fixup/SkipInit on a residual MLP of the same width, T-Fixup on
a small post-LN Transformer encoder.

    cd scripts && python -m baselines.cost                     # 16x128 MLPs, batch 128, 1 thread
    cd scripts && python -m baselines.cost --depth 32 --width 256 --threads 2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from baselines import BASELINES


def plain_mlp(depth: int, width: int, d_in: int = 64, classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(d_in, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, classes))


class ResidualMLP(nn.Module):
    def __init__(self, blocks: int, width: int, d_in: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.input = nn.Linear(d_in, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"fc1": nn.Linear(width, width), "fc2": nn.Linear(width, width)})
            for _ in range(blocks))
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x).relu()
        for block in self.blocks:
            h = h + block["fc2"](block["fc1"](h).relu())
        return self.head(h)


class PostLNEncoder(nn.Module):
    def __init__(self, layers: int, d: int = 64, d_in: int = 64, classes: int = 10, tokens: int = 8) -> None:
        super().__init__()
        self.tokens, self.d = tokens, d
        self.embed = nn.Linear(d_in, d * tokens)
        layer = nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x).view(x.shape[0], self.tokens, self.d)
        return self.head(self.encoder(h).mean(1))


def loss_fn(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


def make_batches(n: int, batch: int, d_in: int = 64, classes: int = 10) -> list:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(d_in, classes, generator=g)
    out = []
    for _ in range(n):
        x = torch.randn(batch, d_in, generator=g)
        out.append((x, (x @ w).argmax(1)))
    return out


def step_seconds(build: Callable[[], nn.Module], batches: list, steps: int) -> float:
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(3):  # warm-up
        opt.zero_grad(set_to_none=True)
        loss_fn(model, batches[i % len(batches)]).backward()
        opt.step()
    start = time.perf_counter()
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model, batches[i % len(batches)]).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def seconds(name: str, build: Callable[[], nn.Module], batches: list) -> tuple[float, dict]:
    model = build()
    start = time.perf_counter()
    facts = BASELINES[name](model, batches, loss_fn, seed=0)
    return time.perf_counter() - start, facts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=16, help="MLP layers (residual MLP: depth/2 blocks)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100, help="bare training steps per timing")
    parser.add_argument("--only", nargs="*", default=None, help="baselines to time (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = make_batches(8, args.batch)
    models = {
        "mlp": lambda: plain_mlp(args.depth, args.width),
        "residual_mlp": lambda: ResidualMLP(args.depth // 2, args.width),
        "post_ln_encoder": lambda: PostLNEncoder(4),
    }
    model_of = {name: "mlp" for name in BASELINES}
    model_of.update(fixup="residual_mlp", skipinit="residual_mlp", tfixup="post_ln_encoder")
    names = args.only or list(BASELINES)
    rows, step_ms = [], {}
    for name in names:
        build = models[model_of[name]]
        steps, walls = [], []
        for _ in range(args.repeats):  # alternate, so that load changes hit both alike
            steps.append(step_seconds(build, batches, args.steps))
            wall, facts = seconds(name, build, batches)
            walls.append(wall)
        tse = statistics.median(w / s for w, s in zip(walls, steps, strict=True))
        step_ms[model_of[name]] = round(statistics.median(steps) * 1e3, 3)
        iterations = facts.get("iterations")
        rows.append({"method": name, "model": model_of[name], "applies": facts["applies"],
                     "iterations": iterations, "wall_s": round(statistics.median(walls), 4),
                     "tse": round(tse, 2),
                     "tse_per_iteration": round(tse / iterations, 2) if iterations else None})
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "cpu": platform.processor()
                      or platform.machine(), "depth": args.depth, "width": args.width, "batch": args.batch,
                      "step_ms": step_ms, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
