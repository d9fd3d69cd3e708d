"""Evidence for the search: baselines vs chosen on a deep ReLU MLP and a residual MLP (digits).

For each model: run ``run_search`` at the default budget, print its summary, then train the
chosen scheme and PyTorch's default for ``--steps`` more steps (3 seeds each, same data order)
and print the held-out losses.

    python scripts/search_evidence.py --steps 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import deep_relu_mlp, digits_tensors  # noqa: E402

from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.probe import ProbeConfig, ProbeData, run_probe  # noqa: E402
from autoinit.scheme import InitScheme  # noqa: E402
from autoinit.search import run_search  # noqa: E402


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(x)))


def residual_mlp(blocks: int = 16, width: int = 64, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(64, width), *[Block(width) for _ in range(blocks)],
                             nn.Linear(width, 10))


def loaders() -> tuple[DataLoader, DataLoader]:
    x, y = digits_tensors()
    ds = torch.utils.data.TensorDataset(x[:1200], y[:1200])
    train = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True,
                                        generator=torch.Generator().manual_seed(1))
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[1200:1500], y[1200:1500]),
                                      batch_size=150)
    return train, val


def train_more(model: nn.Module, scheme: InitScheme, train: DataLoader, val: DataLoader,
               steps: int, seed: int) -> float:
    apply_scheme(model, scheme.with_seed(seed))
    batches = [b for _, b in zip(range(steps), iter(train), strict=False)]
    data = ProbeData(batches, list(val))
    return run_probe(model, data, ProbeConfig(steps=steps, eval_every=steps, seed=seed,
                                              explode_factor=1e9)).score


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--n-trials", type=int, default=30)
    args = parser.parse_args()
    train, val = loaders()
    for name, factory in (("deep ReLU MLP, 20 layers", lambda: deep_relu_mlp(depth=20)),
                          ("residual MLP, 16 blocks, no norm", residual_mlp)):
        model = factory()
        start = time.perf_counter()
        result = run_search(model, train, val_dataloader=val, n_trials=args.n_trials)
        print(f"\n## {name} (search {time.perf_counter() - start:.1f} s)\n")
        print(result.summary())
        default = ModelPlan.of(factory()).uniform("pytorch_default")
        for label, scheme in (("chosen", result.scheme), ("pytorch_default", default)):
            losses = [train_more(factory(), scheme, train, val, args.steps, s) for s in range(3)]
            print(f"{label:>16}: held-out loss after {args.steps} steps, 3 seeds: "
                  f"median {statistics.median(losses):.4f}  {[round(v, 4) for v in losses]}")


if __name__ == "__main__":
    main()
