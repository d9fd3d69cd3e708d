"""GPT-2's own initialization against autoinit's choice, in a full training of a small GPT-2.

A GPT-2 built from a config (no download) learns next-character prediction on the generated
grammar of :mod:`autoinit.tasks.text`. For each seed (paired: the same batches in the same order
for both methods), the model is initialized with

- ``gpt2_own``: GPT-2's ``_init_weights`` (autoinit's ``model_default``: N(0, 0.02), residual
  projections scaled by 1/sqrt(2 n_layer), LayerNorm 1/0), and
- ``autoinit``: the scheme :func:`autoinit.search.run_search` chooses on the train/val splits (GPT-2's
  own init is one of its baselines),

then trained with Adam for ``--steps`` steps; the test split is evaluated once at the end. The
search's cost is given in training steps (probe, screening and selection steps) and as R, that
cost over the full training's steps.

Usage:
    python scripts/bench_gpt2.py --seeds 5 --steps 1000 --out docs/gpt2.json
    python scripts/bench_gpt2.py --smoke                     # 1 seed, tiny budgets
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import median_ci  # noqa: E402

from autoinit.apply import apply_scheme  # noqa: E402
from autoinit.plan import ModelPlan  # noqa: E402
from autoinit.search import Selection, run_search  # noqa: E402
from autoinit.tasks.text import ALPHABET, char_data  # noqa: E402

Batch = tuple[torch.Tensor, torch.Tensor]  # (input ids, next ids)


def build(args: argparse.Namespace, seed: int) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(GPT2Config(n_layer=args.layers, n_embd=args.width, n_head=4,
                                          vocab_size=len(ALPHABET), n_positions=args.seq_len,
                                          bos_token_id=0, eos_token_id=0))


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    logits = model(input_ids=x).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def data(args: argparse.Namespace, seed: int) -> tuple[Iterable[Batch], Iterable[Batch], Iterable[Batch]]:
    train, val = char_data(seq_len=args.seq_len, batch_size=32, n_train=args.n_train, n_eval=512,
                           seed=seed)
    _, test = char_data(seq_len=args.seq_len, batch_size=32, n_train=args.n_train, n_eval=512,
                        seed=seed, split="test")
    return train, val, test


def batches(loader: Iterable[Batch], n: int) -> list[Batch]:
    out: list[Batch] = []
    while len(out) < n:
        out.extend(loader)
    return out[:n]


def train(model: nn.Module, stream: list[Batch], val: Iterable[Batch], lr: float) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr)
    curve = []
    start = time.perf_counter()
    for step, batch in enumerate(stream, 1):
        opt.zero_grad(set_to_none=True)
        lm_loss(model, batch).backward()
        opt.step()
        if step % max(1, len(stream) // 10) == 0:
            curve.append((step, evaluate(model, val)))
    return {"curve": curve, "final_val": curve[-1][1], "seconds": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable[Batch]) -> float:
    model.eval()
    value = statistics.fmean(float(lm_loss(model, b)) for b in loader)
    model.train()
    return value


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    train_loader, val, test = data(args, seed)
    stream = batches(train_loader, args.steps)
    base = build(args, seed)
    out = {"seed": seed}
    own = ModelPlan.of(base).uniform("model_default", seed=seed)
    model = apply_scheme(build(args, seed), own)
    out["gpt2_own"] = {**train(model, stream, val, args.lr), "test": evaluate(model, test)}
    start = time.perf_counter()
    searched = build(args, seed)
    result = run_search(searched, train_loader, val_dataloader=val, loss_fn=lm_loss, lr=args.lr,
                        n_trials=args.trials, probe_steps=args.probe_steps, seed=seed,
                        selection=Selection(top=2, seeds=2))
    search_seconds = time.perf_counter() - start
    cost = result.cost
    search_steps = cost.probe_steps + cost.selection_steps
    model = apply_scheme(build(args, seed), result.scheme)
    out["autoinit"] = {**train(model, stream, val, args.lr), "test": evaluate(model, test),
                       "chosen": result.chosen, "reason": result.reason,
                       "search_steps": search_steps, "R": search_steps / args.steps,
                       "search_seconds": search_seconds,
                       "baselines": result.baselines}
    print(f"seed {seed}: gpt2_own test {out['gpt2_own']['test']:.4f}, autoinit test "
          f"{out['autoinit']['test']:.4f} ({result.chosen}; R={search_steps / args.steps:.2f})",
          flush=True)
    return out


def summary(runs: list[dict]) -> dict:
    own = [r["gpt2_own"]["test"] for r in runs]
    auto = [r["autoinit"]["test"] for r in runs]
    return {"gpt2_own_test": median_ci(own), "autoinit_test": median_ci(auto),
            "paired_difference": median_ci([a - o for a, o in zip(auto, own, strict=True)]),
            "autoinit_not_worse": sum(a <= o for a, o in zip(auto, own, strict=True)),
            "R": median_ci([r["autoinit"]["R"] for r in runs]),
            "chosen": [r["autoinit"]["chosen"] for r in runs]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--probe-steps", type=int, default=60)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--n-train", type=int, default=4096)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.seeds, args.steps, args.trials, args.probe_steps = 1, 40, 8, 8
        args.layers, args.width, args.n_train = 2, 32, 512
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    runs = [run_seed(args, seed) for seed in range(args.seeds)]
    report = {"config": vars(args) | {"out": str(args.out)}, "summary": summary(runs), "runs": runs,
              "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                              "cpu": platform.processor() or platform.machine(),
                              "load": os.getloadavg()}}
    print(json.dumps(report["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
