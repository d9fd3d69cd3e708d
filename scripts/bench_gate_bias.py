"""Gate-bias rules on the adding problem: does chrono or a gate constant train faster?

Trains a one-layer LSTM and a GRU (read out from the last step) on the adding problem of
``--seq-len`` steps from each bias rule, with PyTorch's default weights everywhere, for
``--steps`` Adam steps, ``--seeds`` paired seeds (same data order and weights per seed; only
the gate biases differ). The rules: ``default`` (the module's own U(±1/√H) biases), the
``forget_gate`` constant (LSTM) / ``update_gate`` constant (GRU), and ``chrono`` with
``T_max = seq-len``; a rule's offset goes on ``bias_ih``, ``bias_hh`` is zero. Prints, per cell
and rule, the median held-out MSE at a few steps and the median steps until it falls below
``--target`` (a net that has not learned sits at 1/6 ≈ 0.167), plus the per-seed figures.

    OMP_NUM_THREADS=1 python scripts/bench_gate_bias.py                # T=100, 400 steps, 3 seeds
    OMP_NUM_THREADS=1 python scripts/bench_gate_bias.py --seq-len 200 --steps 800
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from autoinit.apply import apply_scheme
from autoinit.plan import ModelPlan
from autoinit.tasks.adding import adding_data

RULES = {"lstm": ("default", "forget_gate", "chrono"), "gru": ("default", "update_gate", "chrono")}


class LastStep(nn.Module):
    """``nn.LSTM`` or ``nn.GRU`` over the sequence, a linear read-out of the last step."""

    def __init__(self, cell: str, hidden: int) -> None:
        super().__init__()
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


def initialized(cell: str, hidden: int, rule: str, value: float, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LastStep(cell, hidden)
    plan = ModelPlan.of(model)
    rules = {}
    for group in plan.grouping.groups:
        if rule == "default" or group.startswith("head"):
            rules[group] = plan.rule(group, "pytorch_default", bias="default")
        elif group.startswith("rnn_ih"):
            rules[group] = plan.rule(group, "pytorch_default", bias=rule, bias_value=value)
        else:
            rules[group] = plan.rule(group, "pytorch_default", bias="zeros")
    return apply_scheme(model, plan.scheme(rules, seed))


def train(model: nn.Module, args: argparse.Namespace, seed: int) -> list[tuple[int, float]]:
    train_loader, val_loader = adding_data(seq_len=args.seq_len, batch_size=args.batch_size,
                                           n_train=args.n_train, n_eval=512, seed=seed)
    x_val, y_val = next(iter(val_loader))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    curve, step = [], 0
    while step < args.steps:
        for x, y in train_loader:
            opt.zero_grad(set_to_none=True)
            F.mse_loss(model(x), y).backward()
            opt.step()
            step += 1
            if step % args.every == 0:
                with torch.no_grad():
                    curve.append((step, F.mse_loss(model(x_val), y_val).item()))
            if step == args.steps:
                break
    return curve


def steps_to(curve: list[tuple[int, float]], target: float) -> float:
    return next((s for s, loss in curve if loss < target), float("inf"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=4096)
    parser.add_argument("--gate-value", type=float, default=1.0, help="forget/update constant")
    parser.add_argument("--target", type=float, default=0.05)
    parser.add_argument("--cells", default="lstm,gru")
    args = parser.parse_args()
    torch.set_num_threads(1)
    records = []
    for cell in args.cells.split(","):
        for rule in RULES[cell]:
            value = float(args.seq_len) if rule == "chrono" else args.gate_value
            curves = [train(initialized(cell, args.hidden, rule, value, seed), args, seed)
                      for seed in range(args.seeds)]
            records.append({"cell": cell, "rule": rule, "value": value, "curves": curves})
            stride = max(1, len(curves[0]) // 4)
            marks = {s: statistics.median(c[i][1] for c in curves)
                     for i, (s, _) in enumerate(curves[0]) if (i + 1) % stride == 0}
            reach = [steps_to(c, args.target) for c in curves]
            print(f"{cell:4} {rule:11} median val MSE " +
                  " ".join(f"@{s}:{v:.4f}" for s, v in marks.items()) +
                  f" | steps to MSE<{args.target}: median {statistics.median(reach)} per seed "
                  f"{reach} | final per seed {[round(c[-1][1], 4) for c in curves]}", flush=True)
    print(json.dumps({"args": vars(args), "records": records}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
